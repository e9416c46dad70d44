"""Numpy-only stand-ins for the rendered sources, for the tiny fixture set tests build in seconds.

Same shapes and stems as the real builders (:mod:`.instruments`, :mod:`.vocals`), made with
additive synthesis and no external tool: a kick/snare/hat pattern (drums), a low plucked line
(bass), wide chords (other), and a formant-shaped harmonic voice singing a melody (vocals; the
melody comes from :func:`.vocals.random_melody`, numpy-only).
"""

from __future__ import annotations

import numpy as np

from noisyneuron.datasets.melody import MelodyNote, midi_to_hz

__all__ = ["synth_accompaniment", "synth_vocal"]


def _tone(freq: float, n: int, sr: int, harmonics: int, decay: float) -> np.ndarray:
    t = np.arange(n) / sr
    out = np.zeros(n)
    for h in range(1, harmonics + 1):
        if freq * h < sr / 2 - 1000:
            out += np.sin(2 * np.pi * freq * h * t) / h
    return out * np.exp(-t / decay)


def synth_accompaniment(seconds: float, rng: np.random.Generator, sample_rate: int = 44100) -> tuple[dict[str, np.ndarray], float]:
    """``({"drums", "bass", "other"}: (frames, 2) float64, bpm)`` for ``seconds`` of a 4/4 groove."""
    sr = sample_rate
    n = int(round(seconds * sr))
    bpm = float(rng.uniform(90, 140))
    beat = 60.0 / bpm
    drums, bass, other = np.zeros((n, 2)), np.zeros((n, 2)), np.zeros((n, 2))
    hit = int(0.25 * sr)
    tt = np.arange(hit) / sr
    kick = np.sin(2 * np.pi * (45 * tt + 40 * (1 - np.exp(-tt * 30)) / 30)) * np.exp(-tt * 18)
    snare = rng.standard_normal(hit) * np.exp(-tt * 25) * 0.5
    hat = np.diff(rng.standard_normal(hit + 1)) * np.exp(-tt * 80) * 0.2
    roots = [48, 53, 55, 45]
    for b in range(int(seconds / beat) + 1):
        at = int(b * beat * sr)
        if at >= n:
            break
        m = min(hit, n - at)
        drums[at : at + m] += (kick if b % 2 == 0 else snare)[:m, None] * np.array([1.0, 1.0])
        half = at + int(beat * sr / 2)
        if half < n:
            k = min(hit, n - half)
            drums[half : half + k] += hat[:k, None] * np.array([0.4, 1.0])
        root = roots[(b // 4) % 4]
        seg = min(int(beat * sr), n - at)
        bass[at : at + seg] += _tone(midi_to_hz(root - 12), seg, sr, 4, beat)[:, None] * 0.5
        if b % 4 == 0:
            seg = min(int(4 * beat * sr), n - at)
            for j, iv in enumerate((0, 4, 7)):
                side = np.array([1.0, 0.2]) if j % 2 == 0 else np.array([0.2, 1.0])
                other[at : at + seg] += _tone(midi_to_hz(root + 12 + iv), seg, sr, 6, 2 * beat)[:, None] * side * 0.2
    return {"drums": drums, "bass": bass, "other": other}, bpm


def synth_vocal(melody: list[MelodyNote], seconds: float, rng: np.random.Generator, sample_rate: int = 44100) -> np.ndarray:
    """A sung-vowel-like mono line: harmonics with vibrato and three formants, following ``melody``."""
    sr = sample_rate
    n = int(round(seconds * sr))
    out = np.zeros(n)
    formants = np.array([[800, 1150, 2900], [400, 1600, 2700], [350, 2000, 2800], [450, 800, 2830]], dtype=float)
    for note in melody:
        a, b = int(note.start * sr), min(n, int(note.end * sr))
        if b <= a:
            continue
        t = np.arange(b - a) / sr
        f0 = midi_to_hz(note.pitch) * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.5 * t) * np.minimum(t / 0.3, 1))
        phase = 2 * np.pi * np.cumsum(f0) / sr
        vowel = formants[int(rng.integers(0, len(formants)))]
        tone = np.zeros(b - a)
        for h in range(1, 30):
            fh = midi_to_hz(note.pitch) * h
            if fh > 8000:
                break
            amp = sum(1.0 / (1.0 + ((fh - f) / 120.0) ** 2) for f in vowel) / h**0.5
            tone += amp * np.sin(h * phase)
        env = np.minimum(1.0, np.minimum(t / 0.03, (t[-1] - t) / 0.05 + 1e-9))
        out[a:b] += tone * env * 0.1
    return out
