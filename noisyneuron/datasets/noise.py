"""Noise, silence and room material for the "noise" and "silence" classes (and for augmentation).

Every generator draws all its randomness from the ``np.random.Generator`` it is given and
returns float64 mono audio, shape ``(frames,)``, at ``sample_rate`` Hz, ``frames =
round(seconds * sample_rate)``. Levels are RMS in dBFS, where 0 dBFS is an RMS of 1.0 (so a
full-scale sine has an RMS of -3.01 dBFS). Spectral slopes are of *power* per Hz:

- white: flat;
- pink: -3.01 dB per octave (power ~ 1/f);
- brown: -6.02 dB per octave (power ~ 1/f^2).

Generators with many knobs take them explicitly (so a caller can record them); :func:`random_noise`
draws the knobs for one kind and returns them with the audio, ready for a clip's metadata.
Filtering is done in the frequency domain (one FFT over the whole signal), so there is no scipy
dependency and no per-sample Python loop.

Machinery (:func:`machinery_noise`): the tonal and rhythmic machines that general-purpose taggers
mistake for music: combustion engines and generators (a firing-rate pulse train and its
harmonics), pumps (periodic strokes over a motor tone), drones (several rotors' blade-pass
harmonics beating against each other, turbine whine) and clatter (a repeating pattern of
metallic hits from a conveyor, a press or a sewing machine).

Real material: :func:`ambience_files` lists the allowed ambience samples (``sonic-pi-samples``
``ambi_*`` and ``vinyl_*``, ``sound-theme-freedesktop`` effects) and :func:`ambience_excerpt`
decodes one (cached per process), resamples it and cuts or loops it to length.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

__all__ = [
    "NOISE_KINDS",
    "SILENCE_KINDS",
    "rms_dbfs",
    "set_rms_dbfs",
    "white_noise",
    "coloured_noise",
    "pink_noise",
    "brown_noise",
    "mains_hum",
    "fan_noise",
    "rain_noise",
    "MACHINERY_KINDS",
    "machinery_noise",
    "babble",
    "formant_speech",
    "noise_floor",
    "digital_silence",
    "room_impulse_response",
    "apply_reverb",
    "random_noise",
    "random_silence",
    "ambience_files",
    "load_audio_mono",
    "ambience_excerpt",
]

#: Synthetic noise kinds :func:`random_noise` knows.
NOISE_KINDS = ("white", "pink", "brown", "hum", "fan", "rain", "babble", "engine", "generator", "pump", "drone", "clatter")
#: Tonal / rhythmic machinery kinds of :func:`machinery_noise` (a subset of :data:`NOISE_KINDS`).
MACHINERY_KINDS = ("engine", "generator", "pump", "drone", "clatter")
#: Silence kinds :func:`random_silence` knows.
SILENCE_KINDS = ("zero", "white-floor", "pink-floor")

_EPS = 1e-20


def _frames(seconds: float, sample_rate: int) -> int:
    return max(0, int(round(float(seconds) * sample_rate)))


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level of ``x`` in dBFS (RMS 1.0 = 0 dBFS); ``-inf`` for digital silence."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return -math.inf
    ms = float(np.mean(x * x))
    return 10.0 * math.log10(ms) if ms > 0 else -math.inf


def set_rms_dbfs(x: np.ndarray, level_dbfs: float) -> np.ndarray:
    """``x`` scaled to an RMS of ``level_dbfs`` dBFS (a silent ``x`` is returned unchanged)."""
    x = np.asarray(x, dtype=np.float64)
    current = rms_dbfs(x)
    if not math.isfinite(current):
        return x.copy()
    return x * 10.0 ** ((level_dbfs - current) / 20.0)


def _shape_spectrum(x: np.ndarray, sample_rate: int, gain_of_hz) -> np.ndarray:
    """Filter ``x`` by a zero-phase amplitude response ``gain_of_hz(freqs)`` (one FFT, circular)."""
    n = len(x)
    if n == 0:
        return x.copy()
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    spec *= gain_of_hz(freqs)
    return np.fft.irfft(spec, n)


# ----- coloured noise -------------------------------------------------------------------------
def white_noise(rng: np.random.Generator, seconds: float, sample_rate: int, level_dbfs: float = -20.0) -> np.ndarray:
    """Gaussian white noise (flat power spectrum) at an RMS of ``level_dbfs`` dBFS."""
    return set_rms_dbfs(rng.standard_normal(_frames(seconds, sample_rate)), level_dbfs)


def coloured_noise(
    rng: np.random.Generator,
    seconds: float,
    sample_rate: int,
    exponent: float,
    level_dbfs: float = -20.0,
    low_hz: float = 10.0,
) -> np.ndarray:
    """Noise whose power spectral density falls as ``1 / f**exponent``, RMS ``level_dbfs`` dBFS.

    ``exponent`` 0 is white, 1 pink (-3.01 dB/octave), 2 brown (-6.02 dB/octave). Below
    ``low_hz`` (Hz) the density is held flat, so DC and sub-audio drift do not dominate.
    """
    x = rng.standard_normal(_frames(seconds, sample_rate))
    if exponent == 0:
        return set_rms_dbfs(x, level_dbfs)
    y = _shape_spectrum(x, sample_rate, lambda f: np.maximum(f, low_hz) ** (-exponent / 2.0))
    return set_rms_dbfs(y, level_dbfs)


def pink_noise(rng: np.random.Generator, seconds: float, sample_rate: int, level_dbfs: float = -20.0) -> np.ndarray:
    """Pink noise: power spectral density ~ 1/f (-3.01 dB per octave), RMS ``level_dbfs`` dBFS."""
    return coloured_noise(rng, seconds, sample_rate, 1.0, level_dbfs)


def brown_noise(rng: np.random.Generator, seconds: float, sample_rate: int, level_dbfs: float = -20.0) -> np.ndarray:
    """Brown (red) noise: power spectral density ~ 1/f^2 (-6.02 dB per octave), RMS ``level_dbfs`` dBFS."""
    return coloured_noise(rng, seconds, sample_rate, 2.0, level_dbfs)


def _slow_random(rng: np.random.Generator, n: int, sample_rate: int, max_hz: float) -> np.ndarray:
    """A smooth random curve of ``n`` samples, unit RMS, with no energy above ``max_hz`` Hz."""
    if n == 0:
        return np.zeros(0)
    x = rng.standard_normal(n)
    y = _shape_spectrum(x, sample_rate, lambda f: (f <= max_hz).astype(np.float64))
    s = float(np.std(y))
    return y / s if s > 0 else y


# ----- hum, fan, rain ---------------------------------------------------------------------------
def mains_hum(
    rng: np.random.Generator,
    seconds: float,
    sample_rate: int,
    mains_hz: float = 50.0,
    harmonic_amplitudes: list[float] | None = None,
    drift: float = 0.002,
    level_dbfs: float = -30.0,
) -> np.ndarray:
    """Mains hum: ``mains_hz`` (Hz, 50 or 60) and its harmonics, RMS ``level_dbfs`` dBFS.

    Args:
        harmonic_amplitudes: linear amplitude of harmonic 1, 2, 3... (defaults: random, falling,
            odd harmonics stronger, as from a transformer or a rectifier buzz).
        drift: peak relative frequency wander (0.002 = +-0.2 %), slow (below 0.5 Hz), shared by
            all harmonics as in a real grid.

    Harmonics above 0.45 ``sample_rate`` are left out. Phases are random.
    """
    n = _frames(seconds, sample_rate)
    if harmonic_amplitudes is None:
        k = np.arange(1, 13)
        harmonic_amplitudes = list(rng.uniform(0.2, 1.0, k.size) * k ** -rng.uniform(0.4, 1.4) * np.where(k % 2 == 1, 1.0, rng.uniform(0.2, 0.8)))
    wander = 1.0 + drift * np.clip(_slow_random(rng, n, sample_rate, 0.5) / 2.5, -1.0, 1.0)
    phase = 2.0 * np.pi * mains_hz * np.cumsum(wander) / sample_rate
    y = np.zeros(n)
    for h, amp in enumerate(harmonic_amplitudes, start=1):
        if h * mains_hz * (1 + drift) >= 0.45 * sample_rate or amp == 0:
            continue
        y += amp * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
    return set_rms_dbfs(y, level_dbfs)


def fan_noise(
    rng: np.random.Generator,
    seconds: float,
    sample_rate: int,
    cutoff_hz: float = 800.0,
    blade_hz: float = 120.0,
    tone_db: float = -12.0,
    mod_hz: float = 0.2,
    mod_depth: float = 0.1,
    level_dbfs: float = -30.0,
) -> np.ndarray:
    """Fan / HVAC noise: low-passed broadband noise plus blade-pass tones, slowly modulated.

    Args:
        cutoff_hz: corner of the 2nd-order low-pass on the broadband part, Hz.
        blade_hz: blade-pass frequency (rotation rate x blades), Hz; its harmonics 2 and 3 are
            added at -6 and -12 dB.
        tone_db: level of the blade-pass tones relative to the broadband part, dB.
        mod_hz: rate of the slow amplitude modulation (airflow), Hz.
        mod_depth: its depth, 0..1 (0.1 = +-10 %).
        level_dbfs: RMS of the result, dBFS.
    """
    n = _frames(seconds, sample_rate)
    if n == 0:
        return np.zeros(0)
    x = rng.standard_normal(n)
    broad = _shape_spectrum(x, sample_rate, lambda f: 1.0 / (1.0 + (f / cutoff_hz) ** 2) * np.sqrt(np.maximum(f, 20.0) / 20.0) ** -0.3)
    broad = set_rms_dbfs(broad, 0.0)
    wobble = 1.0 + 0.003 * _slow_random(rng, n, sample_rate, 1.0)
    phase = 2.0 * np.pi * blade_hz * np.cumsum(wobble) / sample_rate
    tones = np.zeros(n)
    for h, rel_db in ((1, 0.0), (2, -6.0), (3, -12.0)):
        if h * blade_hz < 0.45 * sample_rate:
            tones += 10 ** (rel_db / 20.0) * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
    tones = set_rms_dbfs(tones, tone_db)
    t = np.arange(n) / sample_rate
    envelope = 1.0 + mod_depth * (0.7 * np.sin(2 * np.pi * mod_hz * t + rng.uniform(0, 2 * np.pi)) + 0.3 * np.clip(_slow_random(rng, n, sample_rate, 2 * mod_hz + 0.05), -2, 2) / 2)
    return set_rms_dbfs((broad + tones) * envelope, level_dbfs)


def rain_noise(
    rng: np.random.Generator,
    seconds: float,
    sample_rate: int,
    drops_per_second: float = 200.0,
    bed_db: float = -10.0,
    drop_decay_ms: float = 4.0,
    level_dbfs: float = -30.0,
) -> np.ndarray:
    """Rain-like noise: random droplet clicks (Poisson arrivals) over a soft noise bed.

    Args:
        drops_per_second: mean droplet rate, 1/s (light rain ~50, heavy ~2000).
        bed_db: level of the soft (low-passed pink) bed relative to the droplets, dB.
        drop_decay_ms: mean time constant of a droplet's decay, ms; each droplet is a short
            noise burst or a "plink" (a damped sine chirping up from 1-4 kHz), log-uniform in level.
        level_dbfs: RMS of the result, dBFS.
    """
    n = _frames(seconds, sample_rate)
    if n == 0:
        return np.zeros(0)
    count = int(rng.poisson(drops_per_second * n / sample_rate))
    pos = rng.integers(0, n, count)
    amp = 10 ** (rng.uniform(-30, 0, count) / 20.0) * rng.choice([-1.0, 1.0], count)
    drops = np.zeros(n)
    # four kernel families, droplets assigned at random, each family convolved in one FFT
    klen = int(0.05 * sample_rate)
    t = np.arange(klen) / sample_rate
    group = rng.integers(0, 4, count)
    for g in range(4):
        train = np.zeros(n)
        np.add.at(train, pos[group == g], amp[group == g])
        decay = drop_decay_ms * 1e-3 * rng.uniform(0.5, 2.0)
        if g < 2:  # noise burst
            kernel = rng.standard_normal(klen) * np.exp(-t / decay)
        else:  # plink: damped rising chirp
            f0 = rng.uniform(1000, min(4000, 0.4 * sample_rate))
            kernel = np.sin(2 * np.pi * f0 * (t + 20.0 * t * t)) * np.exp(-t / decay)
        kernel /= np.sqrt(np.sum(kernel**2)) + _EPS
        size = n + klen
        drops += np.fft.irfft(np.fft.rfft(train, size) * np.fft.rfft(kernel, size), size)[:n]
    bed = _shape_spectrum(rng.standard_normal(n), sample_rate, lambda f: np.maximum(f, 20.0) ** -0.5 / (1.0 + (f / 3000.0) ** 2))
    if rms_dbfs(drops) == -math.inf:
        return set_rms_dbfs(bed, level_dbfs)
    bed = set_rms_dbfs(bed, rms_dbfs(drops) + bed_db)
    return set_rms_dbfs(drops + bed, level_dbfs)


# ----- machinery: tonal and rhythmic ----------------------------------------------------------
def _convolve(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Linear convolution of ``x`` with ``kernel`` by FFT, truncated to ``len(x)``."""
    n = len(x)
    size = n + len(kernel)
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(kernel, size), size)[:n]


def _pulse_times(rng: np.random.Generator, n: int, sample_rate: int, rate_hz: np.ndarray, jitter: float) -> np.ndarray:
    """Sample positions of events at the instantaneous rate ``rate_hz`` (per sample, Hz), each
    moved by up to ``jitter`` (a fraction of its period, Gaussian sd)."""
    phase = np.cumsum(rate_hz) / sample_rate
    k = np.flatnonzero(np.diff(np.floor(phase), prepend=np.floor(phase[0]) if n else 0.0) > 0)
    if len(k) == 0:
        return k
    period = sample_rate / np.maximum(rate_hz[k], 1e-3)
    moved = k + rng.normal(0.0, jitter, len(k)) * period
    return np.clip(np.round(moved), 0, n - 1).astype(np.int64)


def _damped_sines(sample_rate: int, freqs, decays, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A kernel: a sum of decaying sines (``freqs`` Hz, ``decays`` seconds), random phases, unit energy."""
    m = max(2, int(seconds * sample_rate))
    t = np.arange(m) / sample_rate
    k = np.zeros(m)
    for f, d in zip(freqs, decays):
        if f < 0.45 * sample_rate:
            k += np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) * np.exp(-t / d)
    return k / (np.sqrt(np.sum(k * k)) + _EPS)


def machinery_noise(kind: str, rng: np.random.Generator, seconds: float, sample_rate: int, level_dbfs: float = -30.0) -> tuple[np.ndarray, dict]:
    """Machinery noise of ``kind`` (:data:`MACHINERY_KINDS`), settings drawn from ``rng``: (audio, settings).

    - ``engine``: a combustion engine: firing pulses at 15-120 Hz (idle to cruising; the rate
      wanders slowly by up to 8 %), a per-cylinder level pattern that repeats every 2-8 firings
      (sub-harmonics), each firing a damped exhaust resonance (60-400 Hz) plus a noise burst,
      a gear whine at a multiple of the rotation rate, and a hiss bed;
    - ``generator``: an engine at a governed, nearly constant speed (firing 25-60 Hz, +-0.3 %)
      plus the alternator's 50 or 60 Hz hum with harmonics;
    - ``pump``: strokes at 0.7-6 Hz (piston or diaphragm), each a low thump (35-120 Hz) and a
      valve click, flow hiss pulsing with the strokes, over a steady motor tone (rotation
      harmonics, 20-100 Hz);
    - ``drone``: 2-6 rotors with blade-pass frequencies 70-320 Hz within a few per cent of each
      other (they beat), 8-20 harmonics each, wandering speeds, broadband turbulence and
      sometimes a turbine whine (1-5 kHz);
    - ``clatter``: a cycle of 0.12-1.2 s repeating a pattern of 1-4 metallic hits (2-4 inharmonic
      damped partials at 300-6000 Hz, 8-80 ms decay, a click) with 1-5 % timing jitter,
      over a motor bed.

    RMS ``level_dbfs`` dBFS; ``settings`` holds the knobs drawn (JSON-serialisable).
    """
    n = _frames(seconds, sample_rate)
    s: dict = {"kind": kind, "level_dbfs": round(float(level_dbfs), 3)}
    if n == 0:
        return np.zeros(0), s
    t = np.arange(n) / sample_rate
    if kind in ("engine", "generator"):
        governed = kind == "generator"
        fire = float(rng.uniform(25.0, 60.0) if governed else np.exp(rng.uniform(np.log(15.0), np.log(120.0))))
        wander = float(rng.uniform(0.001, 0.003) if governed else rng.uniform(0.01, 0.08))
        cylinders = int(rng.choice([2, 3, 4, 6, 8]))
        rate = fire * (1.0 + wander * np.clip(_slow_random(rng, n, sample_rate, 0.7) / 2.5, -1.0, 1.0))
        pos = _pulse_times(rng, n, sample_rate, rate, float(rng.uniform(0.0, 0.03)))
        pattern = rng.uniform(0.5, 1.0, cylinders)
        amps = pattern[np.arange(len(pos)) % cylinders] * rng.uniform(0.85, 1.15, len(pos))
        train = np.zeros(n)
        np.add.at(train, pos, amps)
        res = float(rng.uniform(60.0, 400.0))
        body = _damped_sines(sample_rate, [res, res * rng.uniform(1.6, 2.9)], [rng.uniform(0.004, 0.02), rng.uniform(0.002, 0.01)], 0.08, rng)
        m = len(body)
        burst = rng.standard_normal(m) * np.exp(-np.arange(m) / (sample_rate * rng.uniform(0.001, 0.006)))
        burst /= np.sqrt(np.sum(burst**2)) + _EPS
        y = _convolve(train, body + float(rng.uniform(0.1, 0.6)) * burst)
        rotation = rate * 2.0 / cylinders  # four-stroke: each cylinder fires every other turn
        whine_mult = int(rng.integers(8, 40))
        whine = np.sin(2 * np.pi * np.cumsum(rotation * whine_mult) / sample_rate)
        y = set_rms_dbfs(y, 0.0) + 10 ** (rng.uniform(-35, -12) / 20.0) * whine * np.sqrt(2)
        y = y + white_noise(rng, seconds, sample_rate, float(rng.uniform(-40, -20)))
        s.update(firing_hz=round(fire, 2), wander=round(wander, 4), cylinders=cylinders, resonance_hz=round(res, 1), whine_multiple=whine_mult)
        if governed:
            mains = float(rng.choice([50.0, 60.0]))
            h = int(rng.integers(3, 9))
            k = np.arange(1, h + 1)
            hum_amps = list(rng.uniform(0.2, 1.0, h) * k ** -rng.uniform(0.3, 1.2))
            hum_db = float(rng.uniform(-15, 0))
            y = y + mains_hum(rng, seconds, sample_rate, mains, hum_amps, 0.001, hum_db)
            s.update(mains_hz=mains, hum_db=round(hum_db, 2))
    elif kind == "pump":
        strokes = float(rng.uniform(0.7, 6.0))
        pos = _pulse_times(rng, n, sample_rate, np.full(n, strokes), float(rng.uniform(0.0, 0.03)))
        train = np.zeros(n)
        np.add.at(train, pos, rng.uniform(0.8, 1.2, len(pos)))
        thump_hz = float(rng.uniform(35.0, 120.0))
        thump = _damped_sines(sample_rate, [thump_hz, 2.1 * thump_hz], [rng.uniform(0.02, 0.08), 0.01], 0.3, rng)
        click_f = rng.uniform(1500, 6000, 2)
        click = _damped_sines(sample_rate, click_f, [0.004, 0.003], 0.03, rng)
        delay = int(rng.uniform(0.05, 0.4) / strokes * sample_rate)
        clicks = np.roll(train, delay)
        y = set_rms_dbfs(_convolve(train, thump), 0.0) + 10 ** (rng.uniform(-20, -5) / 20) * set_rms_dbfs(_convolve(clicks, click), 0.0)
        env = 0.5 + 0.5 * np.cos(2 * np.pi * strokes * t + rng.uniform(0, 2 * np.pi)) ** 2
        flow = _shape_spectrum(rng.standard_normal(n), sample_rate, lambda f: 1.0 / (1.0 + (f / 2500.0) ** 2))
        y = y + 10 ** (rng.uniform(-20, -3) / 20) * set_rms_dbfs(flow, 0.0) * env
        motor_hz = float(rng.uniform(20.0, 100.0))
        motor = sum((0.7**h) * np.sin(2 * np.pi * h * motor_hz * t + rng.uniform(0, 2 * np.pi)) for h in range(1, 7))
        y = y + 10 ** (rng.uniform(-20, -3) / 20) * set_rms_dbfs(motor, 0.0)
        s.update(strokes_hz=round(strokes, 3), thump_hz=round(thump_hz, 1), motor_hz=round(motor_hz, 2))
    elif kind == "drone":
        rotors = int(rng.integers(2, 7))
        bpf = float(rng.uniform(70.0, 320.0))
        harmonics = int(rng.integers(8, 21))
        roll = float(rng.uniform(0.4, 1.2))
        y = np.zeros(n)
        shared = _slow_random(rng, n, sample_rate, 0.5)
        for _ in range(rotors):
            f = bpf * (1.0 + rng.uniform(-0.04, 0.04)) * (1.0 + 0.02 * np.clip(shared / 2.5, -1, 1) + 0.01 * np.clip(_slow_random(rng, n, sample_rate, 1.0) / 2.5, -1, 1))
            phase = 2 * np.pi * np.cumsum(f) / sample_rate
            for h in range(1, harmonics + 1):
                if h * bpf * 1.1 < 0.45 * sample_rate:
                    y += h**-roll * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
        turb = _shape_spectrum(rng.standard_normal(n), sample_rate, lambda f: 1.0 / (1.0 + (f / rng.uniform(500, 3000)) ** 2))
        y = set_rms_dbfs(y, 0.0) + 10 ** (rng.uniform(-20, 0) / 20) * set_rms_dbfs(turb, 0.0)
        s.update(rotors=rotors, blade_pass_hz=round(bpf, 2), harmonics=harmonics)
        if rng.random() < 0.4:
            whine_hz = float(rng.uniform(1000.0, min(5000.0, 0.4 * sample_rate)))
            y = y + 10 ** (rng.uniform(-25, -8) / 20) * np.sqrt(2) * np.sin(2 * np.pi * whine_hz * t * (1 + 0.003 * np.clip(shared / 2.5, -1, 1)))
            s["whine_hz"] = round(whine_hz, 1)
    elif kind == "clatter":
        cycle = float(rng.uniform(0.12, 1.2))
        hits = int(rng.integers(1, 5))
        offsets = np.sort(rng.uniform(0.0, 1.0, hits))
        offsets[0] = 0.0
        jitter = float(rng.uniform(0.01, 0.05))
        y = np.zeros(n)
        for h in range(hits):
            starts = np.arange(offsets[h] * cycle, seconds, cycle)
            starts = starts + rng.normal(0.0, jitter * cycle, len(starts))
            pos = np.clip(np.round(starts * sample_rate), 0, n - 1).astype(np.int64)
            train = np.zeros(n)
            np.add.at(train, pos, rng.uniform(0.6, 1.0) * rng.uniform(0.85, 1.15, len(pos)))
            partials = int(rng.integers(2, 5))
            freqs = np.exp(rng.uniform(np.log(300.0), np.log(6000.0), partials))
            kernel = _damped_sines(sample_rate, freqs, rng.uniform(0.008, 0.08, partials), 0.3, rng)
            kernel[: int(0.002 * sample_rate)] += rng.standard_normal(int(0.002 * sample_rate)) * 0.3
            y += _convolve(train, kernel)
        bed = _shape_spectrum(rng.standard_normal(n), sample_rate, lambda f: 1.0 / (1.0 + (f / 800.0) ** 2))
        y = set_rms_dbfs(y, 0.0) + 10 ** (rng.uniform(-30, -8) / 20) * set_rms_dbfs(bed, 0.0)
        s.update(cycle_s=round(cycle, 4), hits=hits, jitter=round(jitter, 4))
    else:
        raise ValueError(f"unknown machinery kind {kind!r}; known: {', '.join(MACHINERY_KINDS)}")
    return set_rms_dbfs(y, level_dbfs), s


# ----- speech-like material -------------------------------------------------------------------
def babble(
    rng: np.random.Generator,
    seconds: float,
    sample_rate: int,
    snippets: list[np.ndarray],
    talkers: int = 6,
    level_dbfs: float = -30.0,
) -> np.ndarray:
    """Crowd babble: ``talkers`` (4-10) overlapping voices made from speech ``snippets``.

    Each talker is a chain of snippets (mono float at ``sample_rate``; taken round-robin from a
    random start, each with a random 0-0.3 s pause) cut to length from a random offset; talkers
    are summed at equal RMS +-3 dB. Raises ``ValueError`` without snippets (see
    :func:`formant_speech` for a synthetic fallback).
    """
    n = _frames(seconds, sample_rate)
    snippets = [np.asarray(s, dtype=np.float64) for s in snippets if len(s) > 0]
    if not snippets:
        raise ValueError("babble needs at least one speech snippet")
    out = np.zeros(n)
    for _ in range(int(talkers)):
        parts: list[np.ndarray] = []
        total = 0
        i = int(rng.integers(len(snippets)))
        while total < 2 * n + sample_rate:
            s = snippets[i % len(snippets)]
            pause = np.zeros(int(rng.uniform(0.0, 0.3) * sample_rate))
            parts += [s, pause]
            total += len(s) + len(pause)
            i += 1
        stream = np.concatenate(parts)
        start = int(rng.integers(0, max(1, len(stream) - n)))
        voice = stream[start : start + n]
        if rms_dbfs(voice) > -math.inf:
            out += set_rms_dbfs(voice, rng.uniform(-3.0, 3.0))
    return set_rms_dbfs(out, level_dbfs)


# vowel formants (F1, F2, F3) in Hz, bandwidths grow with frequency
_VOWELS = np.array([
    [730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480],
    [660, 1720, 2410], [570, 840, 2410], [440, 1020, 2240], [640, 1190, 2390],
    [490, 1350, 1690], [390, 1990, 2550],
], dtype=np.float64)


def formant_speech(
    rng: np.random.Generator,
    seconds: float,
    sample_rate: int,
    f0_hz: float | None = None,
    syllable_rate_hz: float = 4.0,
    level_dbfs: float = -25.0,
) -> np.ndarray:
    """Synthetic speech-like sound: formant-filtered voiced syllables at a syllable rate, with pauses.

    No words, but the cues speech detectors use: a glottal pulse train (``f0_hz``, Hz, random
    100-240 Hz by default) with a falling intonation per phrase and per-syllable accents,
    vowel formants (F1-F3) changing from syllable to syllable, a noise burst (consonant) at
    most onsets, syllables at about ``syllable_rate_hz`` (Hz) grouped into words and phrases
    with 0.1-0.5 s pauses. RMS ``level_dbfs`` dBFS. Used by the test fixture and as the babble
    fallback when no TTS engine is installed.
    """
    n = _frames(seconds, sample_rate)
    out = np.zeros(n)
    if n == 0:
        return out
    base_f0 = float(f0_hz) if f0_hz else float(rng.uniform(100.0, 240.0))
    pos = int(rng.uniform(0.0, 0.15) * sample_rate)
    phrase_pos = 0
    phrase_len = int(rng.integers(4, 12))
    while pos < n:
        dur = rng.uniform(0.6, 1.4) / syllable_rate_hz
        m = int(dur * sample_rate)
        t = np.arange(m) / sample_rate
        # intonation: declination over the phrase, an accent on some syllables
        decl = 1.0 - 0.15 * phrase_pos / max(1, phrase_len)
        accent = rng.uniform(1.05, 1.25) if rng.random() < 0.3 else 1.0
        f0 = base_f0 * decl * accent * (1.0 + rng.uniform(-0.08, 0.08) * t / dur)
        phase = np.cumsum(f0) / sample_rate
        pulses = np.diff(np.floor(phase), prepend=np.floor(phase[0])) > 0
        source = pulses.astype(np.float64) + 0.02 * rng.standard_normal(m)
        # formant filter in the frequency domain, vowel gliding in from a neighbour
        v = _VOWELS[rng.integers(len(_VOWELS))] * rng.uniform(0.9, 1.15)
        size = 1 << int(math.ceil(math.log2(m + 256)))
        freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
        resp = np.zeros_like(freqs)
        for k, fk in enumerate(v):
            bw = 60.0 + 0.06 * fk
            resp += (0.8**k) / np.sqrt(1.0 + ((freqs - fk) / (bw / 2)) ** 2)
        resp *= 1.0 / (1.0 + (freqs / 4000.0) ** 2)
        voiced = np.fft.irfft(np.fft.rfft(source, size) * resp, size)[:m]
        env = np.sin(np.pi * np.clip(t / dur, 0, 1)) ** 0.7
        syl = voiced * env
        if rng.random() < 0.7:  # consonant burst at the onset
            b = int(rng.uniform(0.02, 0.07) * sample_rate)
            burst = _shape_spectrum(rng.standard_normal(b), sample_rate, lambda f: (f > rng.uniform(1500, 4000)).astype(float))
            burst *= np.exp(-np.arange(b) / (0.3 * b)) * rng.uniform(0.1, 0.4) * np.max(np.abs(syl) + _EPS)
            syl = np.concatenate([burst, syl])
        end = min(n, pos + len(syl))
        out[pos:end] += syl[: end - pos]
        pos += len(syl) + int(rng.uniform(0.02, 0.07) * sample_rate)  # closure before the next syllable
        phrase_pos += 1
        if phrase_pos >= phrase_len:  # phrase pause
            pos += int(rng.uniform(0.25, 0.5) * sample_rate)
            phrase_pos = 0
            phrase_len = int(rng.integers(4, 12))
        elif rng.random() < 0.3:  # word gap
            pos += int(rng.uniform(0.05, 0.15) * sample_rate)
    return set_rms_dbfs(out, level_dbfs)


# ----- silence ------------------------------------------------------------------------------
def noise_floor(rng: np.random.Generator, seconds: float, sample_rate: int, level_dbfs: float = -75.0, colour: str = "white") -> np.ndarray:
    """A low noise floor ("silence" with a recording chain's hiss): white or pink, RMS ``level_dbfs``.

    The silence class uses -90..-60 dBFS. Written as 24-bit FLAC these survive (24-bit
    quantisation noise is near -141 dBFS).
    """
    if colour == "white":
        return white_noise(rng, seconds, sample_rate, level_dbfs)
    if colour == "pink":
        return pink_noise(rng, seconds, sample_rate, level_dbfs)
    raise ValueError(f"colour must be white or pink, got {colour!r}")


def digital_silence(seconds: float, sample_rate: int) -> np.ndarray:
    """Digital zero, ``round(seconds * sample_rate)`` samples."""
    return np.zeros(_frames(seconds, sample_rate))


# ----- rooms --------------------------------------------------------------------------------
def room_impulse_response(rng: np.random.Generator, sample_rate: int, rt60: float = 0.4, pre_delay_ms: float = 5.0) -> np.ndarray:
    """A synthetic room impulse response: a direct path, then exponentially decaying noise.

    ``rt60``: seconds for the reverberant tail to fall 60 dB; its high frequencies decay
    faster (a first-order darkening). Unit energy.
    """
    m = max(2, int(rt60 * 1.2 * sample_rate))
    t = np.arange(m) / sample_rate
    tail = rng.standard_normal(m) * 10 ** (-3.0 * t / rt60)
    tail = _shape_spectrum(tail, sample_rate, lambda f: 1.0 / np.sqrt(1.0 + (f / 5000.0) ** 2))
    d = int(pre_delay_ms * 1e-3 * sample_rate)
    tail[:d] = 0.0
    ir = tail / (np.sqrt(np.sum(tail**2)) + _EPS) * rng.uniform(0.3, 0.8)
    ir[0] = 1.0
    return ir / np.sqrt(np.sum(ir**2))


def apply_reverb(x: np.ndarray, ir: np.ndarray, wet: float = 0.3) -> np.ndarray:
    """``x`` convolved with ``ir`` (FFT, truncated to ``len(x)``), mixed ``wet`` (0..1) with dry, RMS kept."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return x.copy()
    size = len(x) + len(ir)
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[: len(x)]
    mix = (1.0 - wet) * x + wet * y
    level = rms_dbfs(x)
    return set_rms_dbfs(mix, level) if math.isfinite(level) else mix


# ----- random draws for a clip ----------------------------------------------------------------
def random_noise(
    kind: str,
    rng: np.random.Generator,
    seconds: float,
    sample_rate: int,
    level_dbfs: float,
    snippets: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, dict]:
    """One noise of ``kind`` (see :data:`NOISE_KINDS`) with random settings; returns (audio, settings).

    ``settings`` holds every knob drawn (JSON-serialisable), for a clip's metadata. ``babble``
    uses ``snippets`` (speech at ``sample_rate``); without any it falls back to
    :func:`formant_speech` voices and says so in ``settings["fallback"]``.
    """
    s: dict = {"kind": kind, "level_dbfs": round(float(level_dbfs), 3)}
    if kind == "white":
        y = white_noise(rng, seconds, sample_rate, level_dbfs)
    elif kind in ("pink", "brown"):
        s["low_hz"] = 10.0
        y = coloured_noise(rng, seconds, sample_rate, 1.0 if kind == "pink" else 2.0, level_dbfs)
    elif kind == "hum":
        s["mains_hz"] = float(rng.choice([50.0, 60.0]))
        h = int(rng.integers(3, 13))
        k = np.arange(1, h + 1)
        amps = rng.uniform(0.2, 1.0, h) * k ** -rng.uniform(0.3, 1.5) * np.where(k % 2 == 1, 1.0, rng.uniform(0.1, 0.9))
        s["harmonic_amplitudes"] = [round(float(a), 4) for a in amps]
        s["drift"] = round(float(rng.uniform(0.0005, 0.004)), 5)
        y = mains_hum(rng, seconds, sample_rate, s["mains_hz"], s["harmonic_amplitudes"], s["drift"], level_dbfs)
        if rng.random() < 0.5:  # hum rarely comes alone: a little hiss under it
            s["hiss_db"] = round(float(rng.uniform(-40, -15)), 2)
            y = set_rms_dbfs(y + white_noise(rng, seconds, sample_rate, level_dbfs + s["hiss_db"]), level_dbfs)
    elif kind == "fan":
        s.update(
            cutoff_hz=round(float(np.exp(rng.uniform(np.log(200), np.log(3000)))), 1),
            blade_hz=round(float(rng.uniform(40, 400)), 2),
            tone_db=round(float(rng.uniform(-30, -3)), 2),
            mod_hz=round(float(rng.uniform(0.05, 0.6)), 3),
            mod_depth=round(float(rng.uniform(0.02, 0.3)), 3),
        )
        y = fan_noise(rng, seconds, sample_rate, s["cutoff_hz"], s["blade_hz"], s["tone_db"], s["mod_hz"], s["mod_depth"], level_dbfs)
    elif kind == "rain":
        s.update(
            drops_per_second=round(float(np.exp(rng.uniform(np.log(30), np.log(3000)))), 1),
            bed_db=round(float(rng.uniform(-20, 5)), 2),
            drop_decay_ms=round(float(rng.uniform(1.0, 10.0)), 2),
        )
        y = rain_noise(rng, seconds, sample_rate, s["drops_per_second"], s["bed_db"], s["drop_decay_ms"], level_dbfs)
    elif kind == "babble":
        s["talkers"] = int(rng.integers(4, 11))
        if not snippets:
            s["fallback"] = "formant-synthesised voices (no TTS snippets given)"
            snippets = [formant_speech(rng, 3.0, sample_rate) for _ in range(s["talkers"])]
        y = babble(rng, seconds, sample_rate, snippets, s["talkers"], level_dbfs)
    elif kind in MACHINERY_KINDS:
        y, s = machinery_noise(kind, rng, seconds, sample_rate, level_dbfs)
    else:
        raise ValueError(f"unknown noise kind {kind!r}; known: {', '.join(NOISE_KINDS)}")
    return y, s


def random_silence(kind: str, rng: np.random.Generator, seconds: float, sample_rate: int) -> tuple[np.ndarray, dict]:
    """One silence of ``kind`` (see :data:`SILENCE_KINDS`): digital zero, or a floor at -90..-60 dBFS."""
    if kind == "zero":
        return digital_silence(seconds, sample_rate), {"kind": kind}
    if kind in ("white-floor", "pink-floor"):
        level = float(rng.uniform(-90.0, -60.0))
        return noise_floor(rng, seconds, sample_rate, level, kind.split("-")[0]), {"kind": kind, "level_dbfs": round(level, 3)}
    raise ValueError(f"unknown silence kind {kind!r}; known: {', '.join(SILENCE_KINDS)}")


# ----- real ambience material ------------------------------------------------------------------
SONIC_PI_SAMPLES = Path("/usr/share/sonic-pi/samples")
FREEDESKTOP_SOUNDS = Path("/usr/share/sounds/freedesktop/stereo")
# musical or spoken samples that must not be labelled noise
_NOT_NOISE = ("ambi_piano", "ambi_choir", "audio-channel-")


def ambience_files() -> dict[str, list[Path]]:
    """The installed ambience material, by Debian package, sorted.

    ``sonic-pi-samples``: ``ambi_*`` and ``vinyl_*`` (without ``ambi_piano`` and ``ambi_choir``,
    which are music); ``sound-theme-freedesktop``: its effects (without the spoken
    ``audio-channel-*``). Empty lists when the packages are not installed.
    """
    out: dict[str, list[Path]] = {"sonic-pi-samples": [], "sound-theme-freedesktop": []}
    if SONIC_PI_SAMPLES.is_dir():
        out["sonic-pi-samples"] = sorted(p for p in SONIC_PI_SAMPLES.glob("*.flac") if p.name.startswith(("ambi_", "vinyl_")) and not p.name.startswith(_NOT_NOISE))
    if FREEDESKTOP_SOUNDS.is_dir():
        out["sound-theme-freedesktop"] = sorted(p for p in FREEDESKTOP_SOUNDS.glob("*.oga") if not p.name.startswith(_NOT_NOISE))
    return out


_DECODED: dict[tuple[str, int], np.ndarray] = {}
_DECODED_MAX_SAMPLES = 16000 * 60 * 30  # per-process cache bound: 30 min at 16 kHz


def load_audio_mono(path: str | Path, sample_rate: int) -> np.ndarray:
    """A whole (short) audio file decoded with soundfile, mixed to mono, resampled with soxr.

    float64 ``(frames,)`` at ``sample_rate`` Hz; cached per process (the cache forgets
    everything when it passes 30 min of audio). For long music use seeks instead.
    """
    key = (str(path), int(sample_rate))
    hit = _DECODED.get(key)
    if hit is not None:
        return hit
    audio, sr = sf.read(str(path), dtype="float64", always_2d=True)
    mono = audio.mean(axis=1)
    if sr != sample_rate and len(mono):
        mono = soxr.resample(mono, sr, sample_rate, quality="HQ")
    mono = np.ascontiguousarray(mono, dtype=np.float64)
    if sum(len(v) for v in _DECODED.values()) + len(mono) > _DECODED_MAX_SAMPLES:
        _DECODED.clear()
    _DECODED[key] = mono
    return mono


def ambience_excerpt(rng: np.random.Generator, path: str | Path, seconds: float, sample_rate: int, crossfade: float = 0.05) -> tuple[np.ndarray, dict]:
    """``seconds`` of the ambience file ``path`` from a random offset, looped with crossfades if short.

    Returns (audio, settings) with the offset (s) and whether it looped. Level is the file's own.
    """
    x = load_audio_mono(path, sample_rate)
    n = _frames(seconds, sample_rate)
    if len(x) == 0:
        return np.zeros(n), {"offset": 0.0, "looped": False}
    if len(x) >= n:
        start = int(rng.integers(0, len(x) - n + 1))
        return x[start : start + n].copy(), {"offset": round(start / sample_rate, 4), "looped": False}
    fade = min(int(crossfade * sample_rate), len(x) // 4)
    ramp = np.linspace(0.0, 1.0, fade) if fade > 0 else np.zeros(0)
    start = int(rng.integers(0, max(1, len(x) - fade)))  # at least a crossfade's worth left
    out = x[start:].copy()
    while len(out) < n:
        nxt = x.copy()
        if fade > 0:
            nxt[:fade] = nxt[:fade] * ramp + out[-fade:] * ramp[::-1]
            out = np.concatenate([out[:-fade], nxt])
        else:
            out = np.concatenate([out, nxt])
    return out[:n], {"offset": round(start / sample_rate, 4), "looped": True}
