"""Record production for the separation data: vocals produced and mixes mastered the way records are.

A separator trained on dry voices over quiet mixes meets compressed, saturated, reverberant,
doubled voices over a loud master on every real song. This module makes that material with a
kept effects library (Spotify's ``pedalboard``: EQ, compression, saturation, chorus, delay,
reverb, pitch shift, MP3) and keeps the one rule every track obeys: **the stems sum to the
mixture exactly**.

- :func:`produce_vocal`: a mono voice in, a stereo vocal stem out: high-pass, EQ, compression,
  sometimes saturation, doubles (detuned, delayed, panned), harmonies or a small choir (pitch
  shifted copies), chorus, delay, plate/hall reverb; mostly near the centre, sometimes not.
  Everything it adds is part of the vocal stem, as on a multitrack.
- :func:`master`: the master bus as one gain curve over time (glue compression on the mix's
  level, then a look-ahead peak limiter after a make-up gain to an integrated loudness of
  -14..-8 LUFS), applied to every stem alike, so the stems still sum to the mixture.
- :func:`lossy_round_trip`: the mixture through MP3, Ogg Vorbis or Opus and back; the coding
  error is added to the accompaniment stem (the vocal target stays the clean vocal), so the sum
  is again exactly the coded mixture.

All randomness comes from the ``rng`` passed in: the same state gives the same audio. Settings
come back as a JSON-serialisable dict for the track's metadata.
"""

from __future__ import annotations

import io

import numpy as np

from noisyneuron.audio.resampling import fit_length
from noisyneuron.errors import UserError

__all__ = ["produce_vocal", "master", "lossy_round_trip", "available", "loudness_lufs"]

_INSTALL_HINT = "pedalboard is not installed; run scripts/install-data-tools.sh"


def available() -> bool:
    """Whether the effects library is installed."""
    try:
        import pedalboard  # noqa: F401
    except ImportError:
        return False
    return True


def _pb():
    try:
        import pedalboard
    except ImportError:
        raise UserError(_INSTALL_HINT) from None
    return pedalboard


def _r(x: float, digits: int = 3) -> float:
    return round(float(x), digits)


def _run(board, audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Run a pedalboard on (frames, channels) float audio; same shape back, float64."""
    y = board(np.ascontiguousarray(audio.T, dtype=np.float32), float(sample_rate), reset=True)
    return np.asarray(y, dtype=np.float64).T[: len(audio)]


def _pan(mono: np.ndarray, pan: float) -> np.ndarray:
    """Constant-power pan, -1 left .. +1 right: (frames,) -> (frames, 2)."""
    angle = (float(pan) + 1.0) * np.pi / 4.0
    return np.stack([mono * np.cos(angle), mono * np.sin(angle)], axis=1) * np.sqrt(2.0)


def _delayed(x: np.ndarray, samples: int) -> np.ndarray:
    out = np.zeros_like(x)
    if samples < len(x):
        out[samples:] = x[: len(x) - samples]
    return out


def produce_vocal(mono: np.ndarray, rng: np.random.Generator, sample_rate: int) -> tuple[np.ndarray, dict]:
    """Produce a mono voice (frames,) into a stereo vocal stem (frames, 2) float64, as a mix
    engineer would; returns the stem and its settings. Silence stays silence (no noise added)."""
    pb = _pb()
    mono = np.asarray(mono, dtype=np.float64)
    frames = len(mono)
    if not np.any(mono):
        return np.zeros((frames, 2)), {"silent": True}
    s: dict = {}
    chain = [pb.HighpassFilter(cutoff_frequency_hz=float(rng.uniform(70, 160)))]
    s["highpass_hz"] = _r(chain[0].cutoff_frequency_hz, 1)
    eq = [
        ("low_mid", float(rng.uniform(200, 500)), float(rng.uniform(-5, 1)), 1.0),
        ("presence", float(rng.uniform(2000, 5000)), float(rng.uniform(-1, 5)), 0.9),
    ]
    for _, f, g, q in eq:
        chain.append(pb.PeakFilter(cutoff_frequency_hz=f, gain_db=g, q=q))
    air = float(rng.uniform(-1, 5))
    chain.append(pb.HighShelfFilter(cutoff_frequency_hz=float(rng.uniform(8000, 12000)), gain_db=air))
    s["eq"] = [[name, _r(f, 0), _r(g, 2)] for name, f, g, _ in eq] + [["air", None, _r(air, 2)]]
    comp = {"threshold_db": float(rng.uniform(-32, -14)), "ratio": float(rng.uniform(2, 8)),
            "attack_ms": float(rng.uniform(1, 15)), "release_ms": float(rng.uniform(40, 250))}
    chain.append(pb.Compressor(**comp))
    s["compressor"] = {k: _r(v, 2) for k, v in comp.items()}
    if rng.random() < 0.3:
        drive = float(rng.uniform(2, 12))
        chain.append(pb.Distortion(drive_db=drive))
        s["saturation_drive_db"] = _r(drive, 2)
    # level the voice before the send effects: -20 dBFS RMS where it sings
    voice = _run(pb.Pedalboard(chain), mono[:, None], sample_rate)[:, 0]
    active = np.abs(voice) > 1e-4
    if np.any(active):
        voice *= 0.1 / max(1e-9, float(np.sqrt(np.mean(voice[active] ** 2))))
    r = rng.random()
    pan = float(rng.uniform(-0.1, 0.1)) if r < 0.8 else float(rng.uniform(-0.6, 0.6))
    s["pan"] = _r(pan)
    stem = _pan(voice, pan)
    layers = []
    if rng.random() < 0.3:  # a double: the same line sung again, a little late and off pitch
        for side in (-1.0, 1.0) if rng.random() < 0.5 else (float(rng.choice([-1.0, 1.0])),):
            cents = float(rng.uniform(-18, 18))
            delay = int(rng.uniform(0.012, 0.04) * sample_rate)
            gain_db = float(rng.uniform(-12, -4))
            y = _run(pb.Pedalboard([pb.PitchShift(semitones=cents / 100.0)]), voice[:, None], sample_rate)[:, 0]
            stem += _pan(_delayed(y, delay), side * float(rng.uniform(0.3, 0.9))) * 10 ** (gain_db / 20)
            layers.append({"kind": "double", "cents": _r(cents, 1), "delay_ms": _r(1000 * delay / sample_rate, 1), "gain_db": _r(gain_db, 1)})
    if rng.random() < 0.25:  # harmonies or a small choir: pitch-shifted copies
        choir = rng.random() < 0.3
        intervals = [int(i) for i in rng.choice([-12, -5, -3, 3, 4, 7, 12], size=3 if choir else 1, replace=False)]
        for interval in intervals:
            delay = int(rng.uniform(0.0, 0.03) * sample_rate)
            gain_db = float(rng.uniform(-14, -6))
            y = _run(pb.Pedalboard([pb.PitchShift(semitones=float(interval))]), voice[:, None], sample_rate)[:, 0]
            stem += _pan(_delayed(y, delay), float(rng.uniform(-0.7, 0.7))) * 10 ** (gain_db / 20)
            layers.append({"kind": "choir" if choir else "harmony", "semitones": interval, "gain_db": _r(gain_db, 1)})
    if layers:
        s["layers"] = layers
    sends = []
    if rng.random() < 0.15:
        ch = {"rate_hz": float(rng.uniform(0.3, 2.0)), "depth": float(rng.uniform(0.1, 0.4)), "mix": float(rng.uniform(0.2, 0.5))}
        sends.append(pb.Chorus(**ch))
        s["chorus"] = {k: _r(v) for k, v in ch.items()}
    if rng.random() < 0.3:
        dl = {"delay_seconds": float(rng.uniform(0.08, 0.45)), "feedback": float(rng.uniform(0.1, 0.45)), "mix": float(rng.uniform(0.08, 0.3))}
        sends.append(pb.Delay(**dl))
        s["delay"] = {k: _r(v) for k, v in dl.items()}
    if rng.random() < 0.75:  # plate or hall
        rv = {"room_size": float(rng.uniform(0.25, 0.95)), "damping": float(rng.uniform(0.2, 0.8)),
              "wet_level": float(rng.uniform(0.08, 0.4)), "dry_level": 1.0, "width": float(rng.uniform(0.5, 1.0))}
        sends.append(pb.Reverb(**rv))
        s["reverb"] = {k: _r(v) for k, v in rv.items()}
    if sends:
        stem = _run(pb.Pedalboard(sends), stem, sample_rate)
    return np.nan_to_num(stem, nan=0.0, posinf=0.0, neginf=0.0), s


def loudness_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4) of (frames, channels) audio, LUFS; -inf for silence."""
    try:
        import pyloudnorm
    except ImportError:
        raise UserError("pyloudnorm is not installed; run scripts/install-data-tools.sh") from None
    audio = np.asarray(audio, dtype=np.float64)
    if len(audio) < int(0.4 * sample_rate) or not np.any(audio):
        return float("-inf")
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(audio))


def _smooth_db(target_db: np.ndarray, attack: float, release: float) -> np.ndarray:
    """One-pole smoothing of a gain-reduction curve (dB, <= 0) per block: falls with ``attack``,
    recovers with ``release`` (coefficients per block, 0..1)."""
    out = np.empty_like(target_db)
    g = 0.0
    for i, t in enumerate(target_db):
        k = attack if t < g else release
        g += k * (t - g)
        out[i] = g
    return out


def master(stems: dict[str, np.ndarray], rng: np.random.Generator, sample_rate: int) -> tuple[dict[str, np.ndarray], dict]:
    """Master the mix of ``stems`` (each (frames, 2)): one gain curve (glue compression, make-up
    to -14..-8 LUFS, look-ahead limiting to -1 dBFS) applied to every stem alike, so the stems
    still sum to the mastered mixture. Returns the stems and the settings."""
    block = max(1, int(0.005 * sample_rate))  # 5 ms gain blocks
    mix = np.sum([np.asarray(v, dtype=np.float64) for v in stems.values()], axis=0)
    frames = len(mix)
    n_blocks = -(-frames // block)
    padded = np.zeros((n_blocks * block, mix.shape[1]))
    padded[:frames] = mix
    blocks = padded.reshape(n_blocks, block, -1)
    s: dict = {}
    # glue compression on the mix's RMS level (30 ms window)
    rms = np.sqrt(np.mean(blocks**2, axis=(1, 2)))
    win = 6
    rms = np.sqrt(np.convolve(rms**2, np.ones(win) / win, mode="same"))
    level_db = 20 * np.log10(np.maximum(rms, 1e-9))
    active = level_db > -60
    if not np.any(active):
        return {k: np.asarray(v, dtype=np.float64) for k, v in stems.items()}, {"silent": True}
    threshold = float(np.percentile(level_db[active], rng.uniform(40, 80)))
    ratio = float(rng.uniform(1.5, 4.0))
    over = np.maximum(level_db - threshold, 0.0)
    attack = 1.0 - np.exp(-0.005 / float(rng.uniform(0.005, 0.03)))
    release = 1.0 - np.exp(-0.005 / float(rng.uniform(0.08, 0.4)))
    glue_db = _smooth_db(-over * (1.0 - 1.0 / ratio), attack, release)
    s["glue"] = {"threshold_db": _r(threshold, 1), "ratio": _r(ratio, 2)}
    gain = 10 ** (glue_db / 20)
    # make-up gain to the target loudness
    target = float(rng.uniform(-14.0, -8.0))
    lufs = loudness_lufs(mix * np.repeat(gain, block)[:frames, None], sample_rate)
    makeup = 10 ** ((target - lufs) / 20) if np.isfinite(lufs) else 1.0
    gain = gain * makeup
    s["target_lufs"] = _r(target, 2)
    # look-ahead limiter: each block's gain low enough for its own and its neighbours' peaks
    ceiling = 10 ** (-1.0 / 20)
    peak = np.max(np.abs(blocks), axis=(1, 2)) * gain
    need = np.minimum(1.0, ceiling / np.maximum(peak, 1e-12))
    need_db = 20 * np.log10(need)
    look = np.minimum(need_db, np.minimum(np.r_[need_db[1:], 0.0], np.r_[0.0, need_db[:-1]]))
    lim_db = np.minimum(_smooth_db(look, 1.0, 1.0 - np.exp(-0.005 / float(rng.uniform(0.03, 0.2)))), look)
    gain = gain * 10 ** (lim_db / 20)
    s["limiter_max_reduction_db"] = _r(-float(np.min(lim_db)), 2)
    # per-sample curve: linear between block centres, never above either neighbour's block gain
    centres = (np.arange(n_blocks) + 0.5) * block
    curve = np.interp(np.arange(frames), centres, gain)
    curve = np.minimum(curve, np.repeat(np.minimum(gain, np.r_[gain[1:], gain[-1]]), block)[:frames])
    curve = np.minimum(curve, np.repeat(gain, block)[:frames])
    out = {k: np.asarray(v, dtype=np.float64) * curve[:, None] for k, v in stems.items()}
    return out, s


_CODECS = ("mp3", "vorbis", "opus")


def _code(mix: np.ndarray, codec: str, rng: np.random.Generator, sample_rate: int) -> tuple[np.ndarray, dict]:
    import soundfile as sf

    if codec == "mp3":
        pb = _pb()
        quality = float(rng.uniform(0, 6))
        y = _run(pb.Pedalboard([pb.MP3Compressor(vbr_quality=quality)]), mix, sample_rate)
        return y, {"codec": "mp3", "vbr_quality": _r(quality, 1)}
    buf = io.BytesIO()
    if codec == "opus":  # Opus runs at 48 kHz
        import soxr

        coded = soxr.resample(mix, sample_rate, 48000)
        sf.write(buf, np.clip(coded, -1, 1), 48000, format="OGG", subtype="OPUS")
        buf.seek(0)
        y = soxr.resample(sf.read(buf, dtype="float64", always_2d=True)[0], 48000, sample_rate)
    else:
        sf.write(buf, np.clip(mix, -1, 1), sample_rate, format="OGG", subtype="VORBIS")
        buf.seek(0)
        y = sf.read(buf, dtype="float64", always_2d=True)[0]
        return fit_length(y, len(mix)), {"codec": "vorbis"}
    return fit_length(y, len(mix)), {"codec": "opus"}


def _aligned(reference: np.ndarray, coded: np.ndarray, max_lag: int = 4096) -> tuple[np.ndarray, int]:
    """``coded`` shifted by the lag (samples, within ``max_lag``) that best matches ``reference``."""
    a = reference.mean(axis=1)
    b = coded.mean(axis=1)
    n = min(len(a), 1 << 18)
    spec = np.fft.rfft(b[:n], 2 * n) * np.conj(np.fft.rfft(a[:n], 2 * n))
    xc = np.fft.irfft(spec, 2 * n)
    lags = np.r_[np.arange(0, max_lag + 1), np.arange(-max_lag, 0)]
    lag = int(lags[np.argmax(xc[lags])])
    if lag > 0:
        coded = np.concatenate([coded[lag:], np.zeros((lag, coded.shape[1]))])
    elif lag < 0:
        coded = np.concatenate([np.zeros((-lag, coded.shape[1])), coded[: len(coded) + lag]])
    return coded, lag


def lossy_round_trip(stems: dict[str, np.ndarray], rng: np.random.Generator, sample_rate: int, into: str) -> tuple[dict[str, np.ndarray], dict]:
    """The mixture of ``stems`` through a lossy codec and back (MP3, Vorbis or Opus, chosen by
    ``rng``), the coding error added to stem ``into`` (an accompaniment stem), so the stems sum
    to the coded mixture exactly. A codec that fails, or whose output does not line up with its
    input (coding SNR under 6 dB), leaves the stems unchanged and says so in the settings."""
    stems = {k: np.asarray(v, dtype=np.float64) for k, v in stems.items()}
    mix = np.sum(list(stems.values()), axis=0)
    if not np.any(mix):
        return stems, {"codec": None}
    codec = str(rng.choice(_CODECS))
    try:
        coded, s = _code(mix, codec, rng, sample_rate)
    except Exception as exc:  # a codec missing from this libsndfile build
        return stems, {"codec": None, "skipped": f"{codec}: {type(exc).__name__}"}
    coded, lag = _aligned(mix, coded)
    err = coded - mix
    snr = 10 * np.log10(np.sum(mix**2) / max(np.sum(err**2), 1e-20))
    if not np.isfinite(snr) or snr < 6.0:
        return stems, {"codec": None, "skipped": f"{codec}: SNR {snr:.1f} dB after alignment"}
    stems[into] = stems[into] + err
    s.update(lag_samples=lag, snr_db=_r(snr, 1))
    return stems, s
