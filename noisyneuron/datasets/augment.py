"""Mixing and augmentation for training mixtures: gains, panning, EQ, reverb, varispeed, loudness.

Every function takes its randomness from a ``np.random.Generator`` (or explicit settings) and
returns new float64 arrays; stereo is shape (frames, 2). Effects are applied per stem, so each
stem keeps its own reverb tail and the mixture stays the exact sum of the stems.
"""

from __future__ import annotations

import numpy as np

from noisyneuron.audio.resampling import fit_length  # the ground floor's, kept in __all__ for the builders

__all__ = [
    "db_to_gain",
    "rms_db",
    "pan_mono",
    "random_eq",
    "apply_eq",
    "synthetic_ir",
    "convolve",
    "add_reverb",
    "varispeed",
    "fit_length",
]


def db_to_gain(db: float) -> float:
    """Amplitude factor of ``db`` decibels."""
    return float(10.0 ** (db / 20.0))


def rms_db(audio: np.ndarray, gate_db: float = -60.0) -> float:
    """RMS level in dBFS over the 100 ms windows louder than ``gate_db`` (-inf if all are quieter).

    A simple gated loudness: silent stretches between phrases do not pull the level down.
    """
    x = np.asarray(audio, dtype=np.float64)
    x = x.reshape(len(x), -1).mean(axis=1) if x.ndim > 1 else x
    win = 4410
    n = len(x) // win
    if n == 0:
        ms = np.array([np.mean(x**2)]) if len(x) else np.array([0.0])
    else:
        ms = np.mean(x[: n * win].reshape(n, win) ** 2, axis=1)
    ms = ms[ms > 10.0 ** (gate_db / 10.0)]
    if len(ms) == 0:
        return float("-inf")
    return float(10.0 * np.log10(np.mean(ms)))


def pan_mono(mono: np.ndarray, pan: float) -> np.ndarray:
    """Constant-power pan of a mono signal: ``pan`` -1 (left) .. 0 (centre, -3 dB each) .. +1 (right)."""
    theta = (np.clip(pan, -1.0, 1.0) + 1.0) * np.pi / 4.0
    mono = np.asarray(mono, dtype=np.float64)
    return np.stack([mono * np.cos(theta), mono * np.sin(theta)], axis=1) * np.sqrt(2.0)


def random_eq(rng: np.random.Generator, max_db: float = 6.0, bands: int = 6) -> list[tuple[float, float]]:
    """A random smooth EQ curve: ``bands`` (frequency Hz, gain dB) points, 40 Hz .. 16 kHz, log spaced."""
    freqs = np.geomspace(40.0, 16000.0, bands)
    gains = rng.uniform(-max_db, max_db, bands)
    return [(float(f), float(g)) for f, g in zip(freqs, gains)]


def apply_eq(audio: np.ndarray, curve: list[tuple[float, float]], sample_rate: float) -> np.ndarray:
    """Zero-phase EQ: gains interpolated in dB over log frequency, applied in one FFT per channel."""
    x = np.asarray(audio, dtype=np.float64)
    n = len(x)
    if n == 0 or not curve:
        return x.copy()
    spec = np.fft.rfft(x, axis=0)
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    pts_f = np.log([c[0] for c in curve])
    pts_g = np.array([c[1] for c in curve])
    g_db = np.interp(np.log(np.maximum(f, 1.0)), pts_f, pts_g)
    gain = 10.0 ** (g_db / 20.0)
    spec *= gain[:, None] if x.ndim > 1 else gain
    return np.fft.irfft(spec, n=n, axis=0)


def synthetic_ir(rng: np.random.Generator, sample_rate: float, rt60: float, predelay: float = 0.01, channels: int = 2) -> np.ndarray:
    """A room impulse response, shape (frames, channels): sparse early reflections, then
    decorrelated exponentially decaying noise reaching -60 dB after ``rt60`` seconds, darker as it
    decays. ``predelay`` in seconds. Unit energy per channel; no direct sound (the dry signal is
    mixed separately)."""
    n = int((predelay + rt60 * 1.1) * sample_rate)
    t = np.arange(n) / sample_rate
    ir = np.zeros((n, channels))
    start = int(predelay * sample_rate)
    decay = np.exp(-6.91 * np.maximum(t - predelay, 0.0) / rt60)
    for ch in range(channels):
        noise = rng.standard_normal(n)
        # darker tail: a one-pole low-pass blend that grows with time
        spec = np.fft.rfft(noise)
        fr = np.fft.rfftfreq(n, 1.0 / sample_rate)
        spec *= 1.0 / np.sqrt(1.0 + (fr / 6000.0) ** 2)
        noise = np.fft.irfft(spec, n=n)
        ir[:, ch] = noise * decay
        ir[:start, ch] = 0.0
        for _ in range(6):  # early reflections
            k = start + int(rng.uniform(0.0, 0.04) * sample_rate)
            if k < n:
                ir[k, ch] += rng.uniform(0.3, 0.8) * rng.choice([-1.0, 1.0]) * 8.0
    ir /= np.sqrt(np.sum(ir**2, axis=0, keepdims=True)) + 1e-12
    return ir


def convolve(audio: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """Convolve each channel of ``audio`` (frames, C) with the matching IR channel; output keeps
    the input's length (the tail past the end is dropped)."""
    x = np.asarray(audio, dtype=np.float64)
    n = len(x)
    if n == 0:
        return x.copy()
    size = 1 << int(np.ceil(np.log2(n + len(ir) - 1)))
    out = np.fft.irfft(np.fft.rfft(x, size, axis=0) * np.fft.rfft(ir, size, axis=0), size, axis=0)
    return out[:n]


def add_reverb(audio: np.ndarray, rng: np.random.Generator, sample_rate: float, wet_db: float, rt60: float) -> tuple[np.ndarray, dict]:
    """Dry ``audio`` (frames, 2) plus a synthetic room at ``wet_db`` relative level; returns the
    result and the settings used (rt60 seconds, wet dB, pre-delay seconds)."""
    predelay = float(rng.uniform(0.005, 0.04))
    ir = synthetic_ir(rng, sample_rate, rt60, predelay, channels=audio.shape[1])
    wet = convolve(audio, ir)
    dry_rms = np.sqrt(np.mean(np.asarray(audio, dtype=np.float64) ** 2)) + 1e-12
    wet_rms = np.sqrt(np.mean(wet**2)) + 1e-12
    out = audio + wet * (dry_rms / wet_rms) * db_to_gain(wet_db)
    return out, {"rt60_s": round(rt60, 3), "wet_db": round(wet_db, 2), "predelay_s": round(predelay, 4)}


def varispeed(audio: np.ndarray, semitones: float, sample_rate: int) -> np.ndarray:
    """Shift pitch and tempo together (tape speed) by ``semitones``: +12 plays twice as fast.

    Uses soxr's high-quality resampler; the result is shorter (up) or longer (down).
    """
    import soxr

    if abs(semitones) < 1e-6:
        return np.asarray(audio, dtype=np.float64).copy()
    ratio = 2.0 ** (semitones / 12.0)
    out_rate = sample_rate / ratio
    return soxr.resample(np.asarray(audio, dtype=np.float64), sample_rate * 1.0, out_rate, quality="HQ")
