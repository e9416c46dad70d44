"""Arrange a music21 score and render it as separate "drums", "bass" and "other" stems.

:func:`render_accompaniment` takes a score (:mod:`.scores`), picks a tempo, key, bar to start at,
General MIDI instruments, levels, pans and a groove from the caller's random generator, and
renders:

- "bass" and "other" with Debian's ``fluidsynth`` and the FluidR3 GM SoundFont (MIT), one
  ``fluidsynth`` run per stem (MIDI written with mido into a temporary folder), its own reverb and
  chorus off (augmentation adds rooms later), 32-bit float output;
- "drums" in numpy from real one-shot samples: a Hydrogen drum kit (``hydrogen-drumkits``, kit
  pieces found from the instrument names in its ``drumkit.xml``) or Sonic Pi's CC0 ``drum_*``
  samples, sequenced in a random groove (rock, pop, half-time, four-on-the-floor, shuffle, ride,
  waltz, compound-metre feels) with fills every 4 or 8 bars and crashes after them; about 10 % of
  tracks have no drums (a silent stem).

The score's top voice is the tune a singer sings over it (returned as ``melody``, seconds, moved
into MIDI 48..84); it is left out of "other" except for ~20 % of tracks, where an instrument
doubles it quietly. A one-part tune (a folk melody), or sometimes a polyphonic piece, gets
generated harmony: chords per bar estimated from the notes in the key, a bass line on the roots
and a comping part (pads, block chords, arpeggios, strums).

Determinism: the stems depend only on ``(score_id, seconds, rng state, sample_rate)`` and the
installed packages. fluidsynth's float output is bit-identical run to run (its WAV header holds
a timestamp in a PEAK chunk, which is why the audio data, not the file bytes, is compared).
"""

from __future__ import annotations

import functools
import math
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from noisyneuron.audio.resampling import fit_length, resample
from noisyneuron.errors import UserError
from noisyneuron.datasets.melody import MelodyNote
from noisyneuron.datasets.scores import ScoreParts, load_score

__all__ = [
    "RenderedAccompaniment",
    "render_accompaniment",
    "available",
    "drum_kits",
    "SOUNDFONT",
    "DRUMKIT_LICENCES",
    "MELODY_RANGE",
]

#: The General MIDI SoundFont (Debian ``fluid-soundfont-gm``).
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
HYDROGEN_DIR = "/usr/share/hydrogen/data/drumkits"
SONIC_PI_DIR = "/usr/share/sonic-pi/samples"
#: Lowest and highest MIDI note of a melody handed to a singer.
MELODY_RANGE = (48, 84)
STEM_NAMES = ("drums", "bass", "other")

#: Licence of each Hydrogen kit used, from /usr/share/doc/hydrogen-drumkits/copyright.
DRUMKIT_LICENCES = {
    "Audiophob": "CC0-1.0",
    "BJA_Pacific": "CC-BY-SA-3.0-US (Luc Tunguay)",
    "ColomboAcousticDrumkit": "GPL-2+ with composition exception (Marcos Guglielmetti)",
    "ElectricEmpireKit": "GPL-2+ (Artemiy Pavlov)",
    "ForzeeStereo": "GPL-2 (Vladimir Sadovnikov, Alexander Belokurov)",
    "HardElectro1": "GPL-2+ (Artemiy Pavlov)",
    "Millo-Drums_v.1": "GPL-2 (Emiliano Grilli)",
    "Millo_MultiLayered2": "GPL-2 (Emiliano Grilli)",
    "Millo_MultiLayered3": "GPL-2 (Emiliano Grilli)",
    "The Black Pearl 1.0": "GPL-2 (Glen MacArthur)",
    "VariBreaks": "GPL-2+ (Artemiy Pavlov)",
    "rumpf_kit_z01_h2": "CC-BY-3.0 (Emanuel Rumpf)",
}
_SONIC_PI_KIT = "sonic-pi"

# General MIDI programs (0-based) by role, with relative weights.
_BASS_PROGRAMS = {32: 3, 33: 5, 34: 2.5, 35: 2, 36: 0.5, 37: 0.4, 38: 1.5, 39: 1.5, 43: 1, 42: 0.4, 58: 0.4, 87: 0.5}
_OTHER_PROGRAMS = {
    0: 4, 1: 2, 2: 1, 4: 2, 5: 1.5, 6: 0.7, 7: 0.5, 11: 0.8, 12: 0.6, 16: 1.5, 17: 1, 18: 0.7, 19: 1, 21: 0.6,
    24: 2, 25: 2, 26: 1.5, 27: 1.5, 28: 0.7, 29: 1, 30: 0.5, 40: 1, 41: 0.7, 42: 0.7, 45: 0.5, 46: 1,
    48: 3, 49: 2, 50: 1.5, 51: 1, 56: 0.7, 57: 0.7, 60: 1, 61: 1.2, 62: 0.6, 64: 0.5, 65: 0.7, 66: 0.6,
    68: 0.7, 69: 0.4, 70: 0.4, 71: 0.8, 73: 0.8, 74: 0.3, 80: 0.4, 81: 0.5, 88: 1, 89: 1.2, 90: 0.8,
    92: 0.6, 93: 0.4, 94: 0.6, 95: 0.8,
}  # no choir or voice programs (52-54, 85, 91): "other" must not sound like vocals
_ENSEMBLES = {  # sections that play every inner part with one sound
    "strings": [48, 49, 50, 51, 40],
    "organ": [16, 17, 18, 19],
    "piano": [0, 1, 4, 5],
    "guitars": [24, 25, 26, 27],
    "brass": [61, 56, 57, 60],
    "winds": [71, 68, 73, 70, 69],
    "synth": [88, 89, 90, 95, 81, 62],
}
_PAD_PROGRAMS = [48, 49, 50, 16, 19, 88, 89, 90, 95, 61, 62, 21]
_BLOCK_PROGRAMS = [0, 1, 2, 4, 5, 16, 17, 18, 6, 11]
_ARP_PROGRAMS = [24, 25, 26, 46, 0, 4, 12, 11, 6]
_STRUM_PROGRAMS = [24, 25, 26, 27, 29, 30, 17, 0]
_DOUBLE_PROGRAMS = [73, 40, 0, 65, 24, 71, 68, 56, 11, 81]
_OTHER_CHANNELS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15]  # channel 9 is GM drums


@dataclass
class RenderedAccompaniment:
    """An arranged, rendered accompaniment.

    Attributes:
        stems: "drums", "bass", "other": float32 arrays, shape (frames, 2), all the same length
            (``round(seconds * sample_rate)``); a stem may be all zeros (no drums).
        melody: the tune to sing over it (the score's top voice), seconds from the track start,
            MIDI pitches within :data:`MELODY_RANGE`; empty only if the excerpt has no tune.
        meta: JSON-serialisable description: score, tempo, transposition, programs, levels, drum
            kit and samples, and ``sources`` (kind, id, package, licence of everything used).
    """

    stems: dict[str, np.ndarray]
    melody: list[MelodyNote]
    meta: dict = field(default_factory=dict)


def available() -> list[str]:
    """What is missing to render accompaniments (empty when everything is installed)."""
    missing = []
    if shutil.which("fluidsynth") is None:
        missing.append("fluidsynth")
    if not os.path.isfile(SOUNDFONT):
        missing.append("fluid-soundfont-gm")
    if not drum_kits():
        missing.append("hydrogen-drumkits or sonic-pi-samples")
    return missing


# ----- timeline ----------------------------------------------------------------------------------
@dataclass
class _Note:
    """A note in track time: start and duration in quarter lengths from the track start."""

    start: float
    dur: float
    pitch: int
    vel: int


@dataclass
class _Meter:
    """How a time signature is counted: ``beats`` per bar, each ``beat_q`` quarter lengths long,
    split into ``sub`` grid steps (4 = sixteenths of a quarter beat, 3 = eighths of a dotted one)."""

    bar_q: float
    beats: int
    beat_q: float
    sub: int
    compound: bool


def _meter(ts: tuple[int, int]) -> _Meter:
    num, den = ts
    bar_q = num * 4.0 / den
    if den == 8 and num % 3 == 0 and num > 3:
        return _Meter(bar_q, num // 3, 1.5, 3, True)
    if den == 2:
        return _Meter(bar_q, num, 2.0, 4, False)
    if den == 4:
        return _Meter(bar_q, num, 1.0, 4, False)
    return _Meter(bar_q, num, 4.0 / den, 2, False)


def _beat_bpm_range(m: _Meter) -> tuple[float, float]:
    """Beats per minute of the counting beat, giving quarter notes at roughly 70..150 BPM feel."""
    if m.compound:
        return 45.0, 100.0
    if m.beat_q == 2.0:
        return 50.0, 90.0
    if m.beat_q == 1.0:
        return 70.0, 150.0
    return 110.0, 230.0


class _Clock:
    """Quarter lengths of the arrangement to seconds, with optional eighth-note swing."""

    def __init__(self, seconds_per_quarter: float, swing: float = 0.0):
        self.spq = seconds_per_quarter
        self.swing = swing  # 0 straight; 1/6 moves the off-beat eighth to the triplet (2/3)

    def __call__(self, q: float | np.ndarray) -> float | np.ndarray:
        if not self.swing:
            return q * self.spq
        q = np.asarray(q, dtype=np.float64)
        whole = np.floor(q)
        f = q - whole
        split = 0.5 + self.swing
        f2 = np.where(f < 0.5, f * split / 0.5, split + (f - 0.5) * (1.0 - split) / 0.5)
        out = (whole + f2) * self.spq
        return float(out) if out.ndim == 0 else out


# ----- harmony for tunes without one ------------------------------------------------------------
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# (root degree in semitones above the tonic, quality, prior weight)
_MAJOR_CHORDS = [(0, "maj", 0.45), (2, "min", 0.1), (4, "min", 0.0), (5, "maj", 0.3), (7, "maj", 0.3), (9, "min", 0.15)]
_MINOR_CHORDS = [(0, "min", 0.45), (3, "maj", 0.15), (5, "min", 0.25), (7, "maj", 0.25), (7, "min", 0.05), (8, "maj", 0.2), (10, "maj", 0.15)]
_QUALITY = {"maj": (0, 4, 7), "min": (0, 3, 7)}


def _estimate_key(notes: list[_Note]) -> tuple[int, str]:
    """Tonic pitch class and mode from a duration-weighted pitch-class profile (Krumhansl)."""
    hist = np.zeros(12)
    for n in notes:
        hist[n.pitch % 12] += n.dur
    if not hist.any():
        return 0, "major"
    best = (-2.0, 0, "major")
    for tonic in range(12):
        for mode, prof in (("major", _MAJOR_PROFILE), ("minor", _MINOR_PROFILE)):
            r = float(np.corrcoef(hist, np.roll(prof, tonic))[0, 1])
            if r > best[0]:
                best = (r, tonic, mode)
    return best[1], best[2]


def _harmonise(parts: list[list[_Note]], total_q: float, seg_q: float) -> list[tuple[float, int, tuple[int, ...]]]:
    """Chords for consecutive segments of ``seg_q`` quarter lengths: (start, root pc, pcs)."""
    allnotes = [n for p in parts for n in p]
    tonic, mode = _estimate_key(allnotes)
    table = _MAJOR_CHORDS if mode == "major" else _MINOR_CHORDS
    cands = [((tonic + deg) % 12, tuple((tonic + deg + i) % 12 for i in _QUALITY[q]), prior) for deg, q, prior in table]
    n_seg = max(1, int(math.ceil(total_q / seg_q - 1e-9)))
    weights = np.zeros((n_seg, 12))
    lowest = len(parts) - 1
    for pi, part in enumerate(parts):
        for n in part:
            a, b = n.start, n.start + n.dur
            for s in range(max(0, int(a // seg_q)), min(n_seg, int(math.ceil(b / seg_q)))):
                s0, s1 = s * seg_q, (s + 1) * seg_q
                w = max(0.0, min(b, s1) - max(a, s0))
                if abs(a - s0) < 1e-6:
                    w *= 1.5
                if pi == lowest and len(parts) > 1:
                    w *= 1.5
                weights[s, n.pitch % 12] += w
    chords = []
    prev = None
    for s in range(n_seg):
        w = weights[s]
        if not w.any() and prev is not None:
            chords.append((s * seg_q, prev[0], prev[1]))
            continue
        scores = []
        for root, pcs, prior in cands:
            inside = sum(w[pc] for pc in pcs) + 0.3 * w[root]
            outside = w.sum() - sum(w[pc] for pc in pcs)
            scores.append(inside - 0.7 * outside + prior * seg_q * 0.5)
        k = int(np.argmax(scores))
        prev = (cands[k][0], cands[k][1])
        chords.append((s * seg_q, prev[0], prev[1]))
    return chords


def _voice_chord(pcs: tuple[int, ...], lo: int, hi: int, prev: list[int] | None) -> list[int]:
    """Close-position voicing of pitch classes within [lo, hi], near the previous voicing."""
    options = []
    for base in range(lo, hi - 6):
        v = sorted({next(p for p in range(base, base + 12) if p % 12 == pc) for pc in pcs})
        if v[-1] <= hi:
            options.append(v)
    if not options:
        return sorted(lo + (pc - lo) % 12 for pc in pcs)
    if prev is None:
        return options[len(options) // 2]
    centre = sum(prev) / len(prev)
    return min(options, key=lambda v: abs(sum(v) / len(v) - centre))


def _comp_part(chords, seg_q: float, total_q: float, m: _Meter, style: str, rng: np.random.Generator) -> list[_Note]:
    """An accompaniment figure on the chords: "pad", "block", "arp", "strum" or "pulse"."""
    out: list[_Note] = []
    lo = int(rng.integers(50, 56))
    prev = None
    for start, _, pcs in chords:
        if start >= total_q:
            break
        v = _voice_chord(pcs, lo, lo + 19, prev)
        prev = v
        end = min(start + seg_q, total_q)
        if style == "pad":
            out += [_Note(start, end - start, p, 70) for p in v]
        elif style == "block":
            t = start
            while t < end - 1e-6:
                out += [_Note(t, min(m.beat_q * 0.9, end - t), p, 80 if abs((t % m.bar_q)) < 1e-6 else 68) for p in v]
                t += m.beat_q
        elif style == "arp":
            step = m.beat_q / 2 if not m.compound else 0.5
            seq = v + [v[0] + 12] + v[1:][::-1] if len(v) > 1 else v
            t, i = start, 0
            while t < end - 1e-6:
                out.append(_Note(t, min(step * 1.8, end - t), seq[i % len(seq)], 72 if i == 0 else 62))
                t += step
                i += 1
        elif style == "strum":
            beat = 0
            t = start
            while t < end - 1e-6:
                if beat % 2 == 1 or m.beats % 2 == 1:
                    for j, p in enumerate(v + [v[0] + 12]):  # a strum: notes 0.02 quarter (~10 ms) apart
                        out.append(_Note(t + j * 0.02, min(m.beat_q * 0.8, end - t), p, 76))
                t += m.beat_q
                beat += 1
        else:  # pulse: repeated eighths
            step = 0.5
            t = start
            while t < end - 1e-6:
                out += [_Note(t, step * 0.8, p, 70 if abs(t - start) < 1e-6 else 58) for p in v]
                t += step
    return out


def _generated_bass(chords, seg_q: float, total_q: float, m: _Meter, style: str) -> list[_Note]:
    """A bass line on the chord roots: "whole", "beats", "root-fifth" or "eighths"."""
    out: list[_Note] = []
    for start, root, pcs in chords:
        if start >= total_q:
            break
        r = 36 + (root - 36) % 12  # C2..B2
        if r > 43:
            r -= 12
        fifth = r + 7
        end = min(start + seg_q, total_q)
        if style == "whole":
            out.append(_Note(start, (end - start) * 0.95, r, 90))
            continue
        step = m.beat_q if style in ("beats", "root-fifth") else 0.5
        t, i = start, 0
        while t < end - 1e-6:
            p = fifth if (style == "root-fifth" and i % 2 == 1) else r
            out.append(_Note(t, step * 0.85, p, 92 if i == 0 else 80))
            t += step
            i += 1
    return out


# ----- arranging ----------------------------------------------------------------------------------
def _choice_weighted(rng: np.random.Generator, table: dict[int, float]) -> int:
    keys = list(table)
    w = np.array([table[k] for k in keys], dtype=np.float64)
    return int(keys[int(rng.choice(len(keys), p=w / w.sum()))])


def _excerpt(score: ScoreParts, m: _Meter, need_q: float, rng: np.random.Generator) -> tuple[list[list[_Note]], float, int]:
    """The parts over [0, need_q) quarter lengths of track time: from a random bar when the score
    is long enough, else the score repeated from the start (a pickup then falls into the last bar
    of the previous time round, and each time round gets its own dynamics). Returns parts, start
    (quarters into the score) and the number of repetitions."""
    length = score.length_quarters
    n_bars = max(1, int(round(length / m.bar_q)))
    span_bars = int(math.ceil(need_q / m.bar_q))
    if n_bars >= span_bars:
        # a few random bars (phrases often start every 4 bars); keep the one where the top voice
        # and the bass play most (a motet's voices rest for many bars)
        best = (-1.0, 0)
        for _ in range(4):
            bar = int(rng.integers(0, n_bars - span_bars + 1))
            if bar % 4 and rng.random() < 0.5:
                bar -= bar % 4
            a, b = bar * m.bar_q, bar * m.bar_q + need_q
            counts = [sum(1 for n in p if a <= n.start < b) for p in (score.parts[0], score.parts[-1])]
            value = min(counts) + 0.01 * sum(counts)
            if value > best[0]:
                best = (value, bar)
        start_bar = best[1]
        reps, period, dynamics = 1, length, [1.0]
    else:
        start_bar = 0
        first = min((n.start for p in score.parts for n in p), default=0.0)
        last = max((n.start + n.duration for p in score.parts for n in p), default=length)
        period = length
        if 0.0 < first < m.bar_q and n_bars > 1 and last <= length - m.bar_q + first + 1e-6:
            period = length - m.bar_q  # the pickup completes the last bar
        reps = int(math.ceil(need_q / period))
        dynamics = [1.0] + [float(rng.uniform(0.85, 1.15)) for _ in range(reps - 1)]
    start_q = start_bar * m.bar_q
    parts: list[list[_Note]] = []
    for part in score.parts:
        notes = []
        for k in range(reps):
            off = k * period - start_q
            for n in part:
                t = n.start + off
                if t < -1e-9 or t >= need_q:
                    continue
                notes.append(_Note(t, n.duration, n.pitch, int(np.clip(round(n.velocity * dynamics[k]), 1, 127))))
        parts.append(notes)
    return parts, start_q, reps


def _top_line(notes: list[_Note]) -> list[_Note]:
    """One note at a time: the highest at each onset, each cut at the next onset."""
    by_onset: dict[float, _Note] = {}
    for n in notes:
        key = round(n.start, 6)
        if key not in by_onset or n.pitch > by_onset[key].pitch:
            by_onset[key] = n
    line = [by_onset[k] for k in sorted(by_onset)]
    out = []
    for i, n in enumerate(line):
        end = n.start + n.dur
        if i + 1 < len(line):
            end = min(end, line[i + 1].start)
        if end > n.start + 1e-6:
            out.append(_Note(n.start, end - n.start, n.pitch, n.vel))
    return out


def _choose_transpose(melody: list[_Note], rng: np.random.Generator) -> int:
    """Semitones that put the tune in MIDI 48..84, near a random comfortable centre."""
    if not melody:
        return int(rng.integers(-5, 7))
    lo_p = min(n.pitch for n in melody)
    hi_p = max(n.pitch for n in melody)
    med = float(np.median([n.pitch for n in melody]))
    t_lo, t_hi = MELODY_RANGE[0] - lo_p, MELODY_RANGE[1] - hi_p
    if t_lo > t_hi:  # a range over three octaves: centre it and fold the rest later
        return int(round((t_lo + t_hi) / 2))
    centre = float(rng.uniform(55.0, 71.0))
    want = centre - med
    options = [t for t in range(t_lo, t_hi + 1) if abs(t) <= 12] or list(range(t_lo, t_hi + 1))
    options.sort(key=lambda t: abs(t - want))
    return int(options[int(rng.integers(0, min(4, len(options))))])


def _fold(p: int, lo: int, hi: int) -> int:
    while p < lo:
        p += 12
    while p > hi:
        p -= 12
    return p


@dataclass
class _Track:
    """A part to render: notes in seconds with its channel settings."""

    name: str
    program: int
    notes: list[tuple[float, float, int, int]]  # start s, duration s, MIDI pitch, velocity
    pan: float  # -1 left .. +1 right
    level_db: float
    velocity_scale: float


def _humanise(notes: list[_Note], clock: _Clock, rng: np.random.Generator, timing_sd: float, vel_scale: float, vel_sd: float, legato: float, seconds: float) -> list[tuple[float, float, int, int]]:
    """Notes in seconds with timing (s) and velocity jitter; drops notes starting after ``seconds``."""
    if not notes:
        return []
    starts = np.array([n.start for n in notes])
    ends = np.array([n.start + n.dur for n in notes])
    t0 = np.asarray(clock(starts), dtype=np.float64)
    t1 = np.asarray(clock(ends), dtype=np.float64)
    jitter = rng.normal(0.0, timing_sd, len(notes))
    vj = rng.normal(0.0, vel_sd, len(notes))
    out = []
    for i, n in enumerate(notes):
        s = max(0.0, t0[i] + jitter[i])
        if s >= seconds:
            continue
        d = max(0.03, (t1[i] - t0[i]) * legato)
        v = int(np.clip(round(n.vel * vel_scale + vj[i]), 8, 127))
        out.append((s, d, int(n.pitch), v))
    return out


# ----- fluidsynth ---------------------------------------------------------------------------------
def _write_midi(path: Path, tracks: list[_Track]) -> None:
    """A type-1 MIDI file, one channel per track; 1920 ticks per second (tempo 120, 960 tpq)."""
    import mido

    tpq = 960
    ticks_per_s = 2 * tpq
    mid = mido.MidiFile(type=1, ticks_per_beat=tpq)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    mid.tracks.append(meta)
    for ch_i, tr in enumerate(tracks):
        ch = _OTHER_CHANNELS[ch_i % len(_OTHER_CHANNELS)]
        track = mido.MidiTrack()
        vol = int(np.clip(round(127 * 10 ** (tr.level_db / 40.0)), 1, 127))  # CC7 gain ~ (cc/127)^2
        pan = int(np.clip(round(64 + tr.pan * 63), 0, 127))
        track.append(mido.Message("program_change", channel=ch, program=tr.program, time=0))
        for cc, val in ((7, vol), (10, pan), (11, 127), (91, 0), (93, 0), (64, 0)):
            track.append(mido.Message("control_change", channel=ch, control=cc, value=val, time=0))
        events = []
        for s, d, p, v in tr.notes:
            a = int(round(s * ticks_per_s)) + 1
            b = max(a + 1, int(round((s + d) * ticks_per_s)) + 1)
            events.append((a, 1, p, v))
            events.append((b, 0, p, 0))  # note-offs sort before note-ons at the same tick
        events.sort()
        now = 0
        for tick, on, p, v in events:
            kind = "note_on" if on else "note_off"
            track.append(mido.Message(kind, channel=ch, note=p, velocity=v, time=tick - now))
            now = tick
        mid.tracks.append(track)
    mid.save(str(path))


def _fluidsynth_cmd(mid: Path, wav: Path, sample_rate: int, gain: float, soundfont: str = SOUNDFONT) -> list[str]:
    return [
        "fluidsynth", "-ni", "-q", "-g", f"{gain:.3f}", "-R", "0", "-C", "0", "-r", str(sample_rate),
        "-o", "synth.dynamic-sample-loading=1", "-o", "synth.polyphony=512", "-o", "synth.cpu-cores=1",
        "-O", "float", "-T", "wav", "-F", str(wav), soundfont, str(mid),
    ]  # fmt: skip


def render_melody(notes, program: int, seconds: float, sample_rate: int, soundfont: str, velocity: int = 90) -> np.ndarray:
    """One melody (:class:`~.melody.MelodyNote` list) played by General MIDI ``program`` of
    ``soundfont`` (e.g. a sampled choir): mono float64, ``round(seconds * sample_rate)`` frames."""
    if shutil.which("fluidsynth") is None or not os.path.isfile(soundfont):
        raise UserError(f"fluidsynth or {soundfont} is not installed; run scripts/install-data-tools.sh")
    frames = int(round(seconds * sample_rate))
    track = _Track("melody", int(program), [(n.start, n.duration, int(n.pitch), velocity) for n in notes], 0.0, 0.0, 1.0)
    with tempfile.TemporaryDirectory(prefix="nn-fluid-") as tmp:
        mid, wav = Path(tmp) / "melody.mid", Path(tmp) / "melody.wav"
        _write_midi(mid, [track])
        proc = subprocess.run(_fluidsynth_cmd(mid, wav, sample_rate, 0.6, soundfont), capture_output=True, env=dict(os.environ, LC_ALL="C"))
        if proc.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"fluidsynth failed ({proc.returncode}): {proc.stderr.decode(errors='replace').strip()[-200:]}")
        audio = sf.read(str(wav), dtype="float64", always_2d=True)[0].mean(axis=1)
    return fit_length(audio, frames)


def _render_fluidsynth(stems: dict[str, list[_Track]], frames: int, sample_rate: int) -> dict[str, np.ndarray]:
    """Render each stem's tracks with fluidsynth (one process per stem, run side by side).

    Returns float32 (frames, 2) per stem; a stem with no notes is zeros without running anything.
    """
    if shutil.which("fluidsynth") is None or not os.path.isfile(SOUNDFONT):
        raise UserError("fluidsynth is not installed; run scripts/install-data-tools.sh")
    out = {name: np.zeros((frames, 2), dtype=np.float32) for name in stems}
    with tempfile.TemporaryDirectory(prefix="nn-fluid-") as tmp:
        procs = []
        for name, tracks in stems.items():
            if not any(t.notes for t in tracks):
                continue
            mid, wav = Path(tmp) / f"{name}.mid", Path(tmp) / f"{name}.wav"
            _write_midi(mid, [t for t in tracks if t.notes])
            cmd = _fluidsynth_cmd(mid, wav, sample_rate, 0.4)
            procs.append((name, wav, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ, LC_ALL="C"))))
        for name, wav, proc in procs:
            _, err = proc.communicate()
            if proc.returncode != 0 or not wav.is_file():
                raise RuntimeError(f"fluidsynth failed ({proc.returncode}): {err.decode(errors='replace').strip().splitlines()[-1:] }")
            audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
            out[name][...] = resample(audio[:, :2], sr, sample_rate, frames)  # sr: fluidsynth honours -r
    return out


# ----- drums -------------------------------------------------------------------------------------
_ROLE_PATTERNS = [  # (role, include regex, exclude regex), first match wins
    ("kick", r"kick|bass ?drum|\bbd\b|^bd|bassdrum", r"sample:"),
    ("snare", r"snare", r"roll|sample:"),
    ("clap", r"clap", r"sample:"),
    ("stick", r"stick|rim ?click", r"sample:"),
    ("hat_open", r"(hat|hh).*(open|\bop\b|semi)|open.*(hat|hh)", r"sample:"),
    ("hat_pedal", r"(hat|hh).*(pedal|\bpd\b)|pedal.*(hat|hh)", r"sample:"),
    ("hat_closed", r"(hat|hh).*(closed|\bcl\b|light|dirty|\bbs\b)|closed.*(hat|hh)|^chh|^closed hh", r"sample:|choke|swish"),
    ("ride", r"ride", r"bell|cup|sample:"),
    ("crash", r"crash|splash|china", r"choke|bow|bell|sample:"),
    ("tom_lo", r"\btom.*(low|\blo\b|floor)|(low|floor).*\btom", r"sample:|fuzz"),
    ("tom_hi", r"\btom.*(hi|high)|\b(hi|high).*\btom|\btom ?1\b", r"sample:"),
    ("tom_mid", r"\btom.*\bmid|\b(mid|middle).*\btom|\btom ?2\b|^tom$", r"sample:"),
]
_MAX_SECONDS = {"kick": 0.9, "snare": 1.0, "clap": 0.8, "stick": 0.4, "hat_closed": 0.5, "hat_pedal": 0.5, "hat_open": 1.5, "ride": 2.5, "crash": 3.0, "tom_lo": 1.5, "tom_mid": 1.3, "tom_hi": 1.2}


@dataclass(frozen=True)
class _Piece:
    """A kit piece: velocity layers ((min, max) in 0..1, file), its gain and the kit's own pan."""

    name: str
    layers: tuple[tuple[float, float, str, float], ...]
    gain: float


def _role_of(name: str) -> str | None:
    n = name.lower().strip()
    for role, inc, exc in _ROLE_PATTERNS:
        if re.search(inc, n) and not re.search(exc, n):
            return role
    return None


def _xml_text(el, tag: str, default: str = "") -> str:
    for child in el:
        if child.tag.rsplit("}", 1)[-1] == tag:
            return (child.text or default).strip()
    return default


def _parse_kit(kit_dir: Path) -> dict[str, list[_Piece]]:
    """The pieces of a Hydrogen kit by role (kick, snare, hats, toms, cymbals...)."""
    root = ET.parse(kit_dir / "drumkit.xml").getroot()
    pieces: dict[str, list[_Piece]] = {}
    for inst in root.iter():
        if inst.tag.rsplit("}", 1)[-1] != "instrument":
            continue
        name = _xml_text(inst, "name")
        role = _role_of(name)
        if role is None or _xml_text(inst, "isMuted") == "true":
            continue
        layers = []
        for layer in inst:
            if layer.tag.rsplit("}", 1)[-1] != "layer":
                continue
            fn = _xml_text(layer, "filename")
            if fn and (kit_dir / fn).is_file():
                layers.append((float(_xml_text(layer, "min", "0")), float(_xml_text(layer, "max", "1")), str(kit_dir / fn), float(_xml_text(layer, "gain", "1"))))
        fn = _xml_text(inst, "filename")
        if not layers and fn and (kit_dir / fn).is_file():
            layers.append((0.0, 1.0, str(kit_dir / fn), 1.0))
        if layers:
            layers.sort()
            gain = float(_xml_text(inst, "volume", "1") or 1) * float(_xml_text(inst, "gain", "1") or 1)
            pieces.setdefault(role, []).append(_Piece(name, tuple(layers), max(0.05, gain)))
    return pieces


def _sonic_pi_kit() -> dict[str, list[_Piece]]:
    d = Path(SONIC_PI_DIR)
    table = {
        "kick": [("drum_heavy_kick",), ("drum_bass_soft", "drum_bass_hard")],
        "snare": [("drum_snare_soft", "drum_snare_hard")],
        "hat_closed": [("drum_cymbal_closed",)],
        "hat_pedal": [("drum_cymbal_pedal",)],
        "hat_open": [("drum_cymbal_open",)],
        "crash": [("drum_cymbal_soft", "drum_cymbal_hard"), ("drum_splash_soft", "drum_splash_hard")],
        "tom_hi": [("drum_tom_hi_soft", "drum_tom_hi_hard")],
        "tom_mid": [("drum_tom_mid_soft", "drum_tom_mid_hard")],
        "tom_lo": [("drum_tom_lo_soft", "drum_tom_lo_hard")],
    }
    pieces: dict[str, list[_Piece]] = {}
    for role, variants in table.items():
        for files in variants:
            paths = [d / f"{f}.flac" for f in files]
            if not all(p.is_file() for p in paths):
                continue
            edges = np.linspace(0.0, 1.0, len(paths) + 1)
            layers = tuple((float(edges[i]), float(edges[i + 1]), str(p), 1.0) for i, p in enumerate(paths))
            pieces.setdefault(role, []).append(_Piece(files[-1], layers, 1.0))
    return pieces


@functools.lru_cache(maxsize=1)
def drum_kits() -> dict[str, dict[str, list[_Piece]]]:
    """Usable drum kits by name: the Hydrogen kits with a kick, a snare and hats or a ride, and
    Sonic Pi's drum samples ("sonic-pi"). Sorted by name; empty when neither package is installed."""
    kits: dict[str, dict[str, list[_Piece]]] = {}
    base = Path(HYDROGEN_DIR)
    for name in sorted(DRUMKIT_LICENCES):
        kd = base / name
        if (kd / "drumkit.xml").is_file():
            try:
                pieces = _parse_kit(kd)
            except (ET.ParseError, ValueError, OSError):
                continue
            if "kick" in pieces and "snare" in pieces and ("hat_closed" in pieces or "ride" in pieces):
                kits[name] = pieces
    sp = _sonic_pi_kit()
    if "kick" in sp and "snare" in sp and "hat_closed" in sp:
        kits[_SONIC_PI_KIT] = sp
    return kits


_SAMPLES: dict[tuple[str, int, float], np.ndarray] = {}


def _sample(path: str, sample_rate: int, max_seconds: float) -> np.ndarray:
    """A one-shot as float32 stereo at ``sample_rate`` Hz, at most ``max_seconds`` long (faded);
    cached per process."""
    key = (path, sample_rate, max_seconds)
    x = _SAMPLES.get(key)
    if x is None:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
        data = np.repeat(data, 2, axis=1) if data.shape[1] == 1 else data[:, :2]
        data = data[: int(max_seconds * sr * 1.05) + 1]
        data = resample(data, sr, sample_rate)
        n = min(len(data), int(max_seconds * sample_rate))
        data = np.array(data[:n], dtype=np.float32)
        fade = min(n, int(0.03 * sample_rate))
        if fade:
            data[n - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
        x = np.ascontiguousarray(data)
        _SAMPLES[key] = x
    return x


def _pan_gains(pan: float) -> tuple[float, float]:
    a = (pan + 1.0) * math.pi / 4.0
    return math.cos(a) * math.sqrt(2.0), math.sin(a) * math.sqrt(2.0)


_GROOVES = ("rock", "pop", "halftime", "four", "shuffle", "ride", "sparse")


def _drum_pattern(m: _Meter, groove: str, rng: np.random.Generator) -> list[list[tuple[int, str, float]]]:
    """Two bars of (grid step, role, velocity 0..1); a step is 1/``m.sub`` of a beat."""
    steps = m.beats * m.sub
    half = m.sub // 2 if m.sub % 2 == 0 else None
    even = m.beats % 2 == 0
    hat = "ride" if groove == "ride" else "hat_closed"
    bars = []
    hat_every = m.sub if groove in ("sparse",) else (1 if m.sub == 3 else int(rng.choice([1, 2, 2, 2]) if m.sub == 4 else 1))
    if groove in ("shuffle", "ride"):
        hat_every = 1
    extra_kicks = [s for s in range(steps) if s % m.sub and rng.random() < 0.12]
    for variant in range(2):
        hits: list[tuple[int, str, float]] = []
        for s in range(steps):
            beat, pos = divmod(s, m.sub)
            if groove == "shuffle":  # triplet grid: play on the beat and its last third
                if pos in (0, m.sub - 1) if m.sub == 3 else pos in (0, 2):
                    hits.append((s, hat, 0.8 if pos == 0 else 0.55))
            elif s % hat_every == 0:
                hits.append((s, hat, 0.85 if pos == 0 else (0.6 if (half and pos == half) else 0.42)))
            if groove == "four" and half and pos == half:
                hits.append((s, "hat_open", 0.6))
        for beat in range(m.beats):
            s = beat * m.sub
            if groove == "four":
                hits.append((s, "kick", 0.95))
            elif beat == 0:
                hits.append((s, "kick", 1.0))
            elif groove in ("rock", "shuffle", "ride") and even and beat % 2 == 0:
                hits.append((s, "kick", 0.9))
            elif groove == "pop" and even and beat % 2 == 0 and variant == 1:
                hits.append((s, "kick", 0.85))
            # backbeat
            if groove == "halftime":
                if even and beat == m.beats // 2 or (not even and beat == m.beats - 1):
                    hits.append((s, "snare", 1.0))
            elif groove == "sparse":
                if beat == m.beats - 1 and m.beats > 1:
                    hits.append((s, "stick", 0.7))
            elif m.beats == 3 and not m.compound:
                if beat > 0:
                    hits.append((s, "snare", 0.6 if beat == 1 else 0.75))
            elif even and beat % 2 == 1:
                hits.append((s, "snare", 0.95 if groove != "ride" else 0.6))
            elif not even and beat % 2 == 1 and beat < m.beats - 1:
                hits.append((s, "snare", 0.9))
            elif not even and m.beats > 3 and beat == m.beats - 1:
                hits.append((s, "snare", 0.85))
        if groove == "pop" and half and m.beats >= 4:
            hits.append((1 * m.sub + half, "kick", 0.8))  # the "and" of 2
        if groove == "ride":
            hits += [(b * m.sub, "hat_pedal", 0.6) for b in range(1, m.beats, 2)]
        if groove in ("rock", "pop") and variant == 1:
            hits += [(s, "kick", 0.75) for s in extra_kicks]
        if groove in ("rock", "pop", "halftime") and m.sub == 4 and rng.random() < 0.4:
            ghost = [s for s in range(steps) if s % m.sub and rng.random() < 0.15]
            hits += [(s, "snare", 0.22) for s in ghost]
        bars.append(hits)
    return bars


def _fill(m: _Meter, rng: np.random.Generator) -> list[tuple[int, str, float]]:
    """A fill over the last one or two beats of a bar: snare and toms, descending."""
    beats = 1 if m.beats < 3 or rng.random() < 0.5 else 2
    first = (m.beats - beats) * m.sub
    steps = list(range(first, m.beats * m.sub))
    if m.sub == 4 and rng.random() < 0.4:
        steps = steps[::2]
    voices = ["snare", "tom_hi", "tom_mid", "tom_lo"]
    out = []
    for i, s in enumerate(steps):
        k = min(len(voices) - 1, int(i * len(voices) / max(1, len(steps))))
        if rng.random() < 0.25:
            k = 0
        out.append((s, voices[k], 0.6 + 0.4 * i / max(1, len(steps) - 1)))
    out.append((m.beats * m.sub - m.sub if m.beats > 1 else 0, "kick", 0.9))
    return out


def _render_drums(m: _Meter, clock: _Clock, seconds: float, frames: int, groove: str, kit_name: str, rng: np.random.Generator, sample_rate: int) -> tuple[np.ndarray, dict]:
    """The drum stem: a groove on the kit ``kit_name``, fills and crashes at phrase ends."""
    kit = drum_kits()[kit_name]
    choose = {role: pieces[int(rng.integers(0, len(pieces)))] for role, pieces in sorted(kit.items())}
    if groove == "ride" and "ride" not in choose:
        groove = "rock"
    if "hat_closed" not in choose:
        choose["hat_closed"] = choose["ride"]
    side = 1.0 if rng.random() < 0.5 else -1.0  # drummer's or audience's view
    width = float(rng.uniform(0.3, 0.9))
    pans = {
        "kick": 0.0, "snare": side * 0.08 * width, "clap": 0.0, "stick": side * 0.08 * width,
        "hat_closed": side * 0.45 * width, "hat_open": side * 0.45 * width, "hat_pedal": side * 0.45 * width,
        "ride": -side * 0.55 * width, "crash": side * 0.6 * width,
        "tom_hi": side * 0.3 * width, "tom_mid": -side * 0.05 * width, "tom_lo": -side * 0.5 * width,
    }  # fmt: skip
    pattern = _drum_pattern(m, groove, rng)
    phrase = int(rng.choice([4, 8]))
    n_bars = int(math.ceil(seconds / (m.bar_q * clock.spq))) + 1
    intro = int(rng.choice([1, 2])) if rng.random() < 0.12 else 0
    crash_first = rng.random() < 0.6
    timing_sd = float(rng.uniform(0.002, 0.009))
    step_q = m.beat_q / m.sub
    hits: list[tuple[float, str, float]] = []
    for bar in range(intro, n_bars):
        bar_hits = list(pattern[bar % 2])
        if (bar + 1) % phrase == 0 and rng.random() < 0.85:
            fill = _fill(m, rng)
            first = min(s for s, _, _ in fill[:-1])
            bar_hits = [h for h in bar_hits if h[0] < first or h[1].startswith("hat")] + fill
            bar_hits = [h for h in bar_hits if not (h[1].startswith("hat") and h[0] >= first)]
        if (bar % phrase == 0 and bar > intro) or (bar == intro and (crash_first or intro)):
            bar_hits = [h for h in bar_hits if not (h[0] == 0 and h[1].startswith("hat"))] + [(0, "crash", 0.9)]
        for s, role, v in bar_hits:
            if role not in choose:
                role = {"clap": "snare", "stick": "snare", "hat_pedal": "hat_closed", "hat_open": "hat_closed", "tom_hi": "snare", "tom_mid": "snare", "tom_lo": "snare", "ride": "hat_closed", "crash": "hat_open"}.get(role, role)
                if role not in choose:
                    continue
            q = bar * m.bar_q + s * step_q
            hits.append((float(clock(q)), role, v))
    n = len(hits)
    if n == 0:
        return np.zeros((frames, 2), dtype=np.float32), {"hits": 0}
    jit = rng.normal(0.0, timing_sd, n)
    vj = rng.normal(0.0, 0.06, n)
    hits = sorted((max(0.0, t + jit[i]), role, float(np.clip(v + vj[i], 0.05, 1.0))) for i, (t, role, v) in enumerate(hits))
    hat_times = [t for t, r, _ in hits if r.startswith("hat")]
    pad = int(3.2 * sample_rate)
    out = np.zeros((frames + pad, 2), dtype=np.float32)
    used: set[str] = set()
    for t, role, v in hits:
        if t >= seconds:
            continue
        piece = choose[role]
        layer = next((ly for ly in piece.layers if ly[0] <= v <= ly[1] + 1e-9), piece.layers[-1])
        x = _sample(layer[2], sample_rate, _MAX_SECONDS[role])
        used.add(os.path.relpath(layer[2], "/usr/share"))
        length = len(x)
        if role == "hat_open":  # a closed or pedal hat chokes an open one
            nxt = next((h for h in hat_times if h > t + 1e-4), None)
            if nxt is not None:
                length = min(length, int((nxt - t) * sample_rate) + int(0.01 * sample_rate))
        g = piece.gain * layer[3] * (v ** (1.1 if len(piece.layers) > 1 else 1.6))
        gl, gr = _pan_gains(pans.get(role, 0.0))
        a = int(round(t * sample_rate))
        seg = x[:length]
        if role == "hat_open" and length < len(x):
            fade = min(len(seg), int(0.01 * sample_rate))
            seg = seg.copy()
            seg[len(seg) - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
        out[a : a + len(seg), 0] += seg[:, 0] * np.float32(g * gl)
        out[a : a + len(seg), 1] += seg[:, 1] * np.float32(g * gr)
    info = {
        "groove": groove,
        "phrase_bars": phrase,
        "intro_bars_without_drums": intro,
        "hits": n,
        "pieces": {r: p.name for r, p in sorted(choose.items())},
        "sample_files": sorted(used),
        "timing_sd_s": round(timing_sd, 4),
    }
    return out[:frames], info


# ----- the whole accompaniment ------------------------------------------------------------------------
def _rms_db(x: np.ndarray) -> float:
    r = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20.0 * math.log10(r) if r > 1e-9 else -math.inf


def render_accompaniment(score_id: str, seconds: float, rng: np.random.Generator, cache_dir: Path | None = None, sample_rate: int = 44100) -> RenderedAccompaniment:
    """Arrange and render ``seconds`` of accompaniment from the score ``score_id``.

    Args:
        score_id: a :func:`~.scores.list_score_ids` id, e.g. ``"music21:bach/bwv66.6"``.
        seconds: track length, seconds; every stem has ``round(seconds * sample_rate)`` frames.
        rng: all randomness comes from it (tempo 70..150 quarter BPM or the metre's equivalent,
            transposition, start bar, GM programs, velocities, timing, pans, levels, groove, kit).
        cache_dir: where parsed scores are cached (:func:`~.scores.load_score`).
        sample_rate: Hz.

    Raises:
        UserError: fluidsynth, the GM SoundFont or music21 is not installed (one line).
    """
    if shutil.which("fluidsynth") is None or not os.path.isfile(SOUNDFONT):
        raise UserError("fluidsynth is not installed; run scripts/install-data-tools.sh")
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    frames = int(round(seconds * sample_rate))
    score = load_score(score_id, cache_dir)
    m = _meter(score.time_signature)

    # tempo and feel
    lo, hi = _beat_bpm_range(m)
    beat_bpm = float(rng.uniform(lo, hi))
    spq = 60.0 / beat_bpm / m.beat_q
    swing = 0.0
    drums_on = rng.random() >= 0.1
    kits = sorted(drum_kits())
    groove = "none"
    if drums_on and kits:
        if m.compound or m.sub == 2:
            groove = str(rng.choice(["rock", "halftime", "sparse", "rock"]))
        elif m.beats == 3:
            groove = str(rng.choice(["rock", "ride", "sparse"]))
        else:
            groove = str(rng.choice(list(_GROOVES), p=[0.3, 0.2, 0.12, 0.1, 0.1, 0.1, 0.08]))
        if groove == "shuffle" and (m.beat_q != 1.0 or beat_bpm > 135):
            groove = "rock"
        if groove == "shuffle":
            swing = 1.0 / 6.0
    else:
        drums_on = False
    clock = _Clock(spq, swing)
    need_q = seconds / spq + m.bar_q  # a bar of slack for swing and the last notes

    parts, start_q, reps = _excerpt(score, m, need_q, rng)
    n_parts = len(parts)
    melody_src = _top_line(parts[0])
    transpose = _choose_transpose(melody_src, rng)

    def tr(notes: list[_Note], shift: int = 0, lo_p: int = 0, hi_p: int = 127) -> list[_Note]:
        return [_Note(n.start, n.dur, _fold(n.pitch + transpose + shift, lo_p, hi_p), n.vel) for n in notes]

    melody_q = tr(melody_src, 0, *MELODY_RANGE)
    melody = [
        MelodyNote(float(round(clock(n.start), 6)), float(round(min(clock(n.start + n.dur), seconds) - clock(n.start), 6)), int(n.pitch))
        for n in melody_q
        if clock(n.start) < seconds - 0.05
    ]

    # roles: bass = lowest part, inner parts and generated harmony = other
    gen_harmony = n_parts <= 2 or rng.random() < 0.2
    bass_notes: list[_Note] = []
    if n_parts >= 2:
        b = parts[-1]
        med = float(np.median([n.pitch for n in b])) + transpose if b else 40.0
        octave = 12 * int(round((float(rng.uniform(36, 44)) - med) / 12.0))
        bass_notes = tr(b, octave, 28, 55)
        if rng.random() < 0.25:  # pop bass: the part's notes as repeated eighths or beats
            step = 0.5 if rng.random() < 0.6 else m.beat_q
            pulsed = []
            for n in bass_notes:
                t = n.start
                while t < n.start + n.dur - 1e-6:
                    pulsed.append(_Note(t, min(step, n.start + n.dur - t) * 0.85, n.pitch, n.vel))
                    t += step
            bass_notes = pulsed
    inner = [tr(p) for p in parts[1:-1]] if n_parts >= 3 else []
    harmony_info: dict = {}
    if gen_harmony:
        seg_q = m.bar_q if (m.bar_q <= 4.0 or rng.random() < 0.5) else m.bar_q / 2
        if m.bar_q >= 4.0 and m.beats % 2 == 0 and rng.random() < 0.25:
            seg_q = m.bar_q / 2
        chords = _harmonise([tr(p) for p in parts], need_q, seg_q)
        style = str(rng.choice(["pad", "block", "arp", "strum", "pulse"], p=[0.25, 0.25, 0.2, 0.15, 0.15]))
        inner.append(_comp_part(chords, seg_q, need_q, m, style, rng))
        harmony_info = {"segment_quarters": seg_q, "comp_style": style}
        if n_parts == 1:
            bstyle = str(rng.choice(["whole", "beats", "root-fifth", "eighths"], p=[0.2, 0.3, 0.3, 0.2]))
            bass_notes = _generated_bass(chords, seg_q, need_q, m, bstyle)
            harmony_info["bass_style"] = bstyle
    double_melody = rng.random() < 0.2

    # instruments, levels, pans
    def program_for(kind: str) -> int:
        if kind == "pad":
            return int(rng.choice(_PAD_PROGRAMS))
        if kind == "block" or kind == "pulse":
            return int(rng.choice(_BLOCK_PROGRAMS))
        if kind == "arp":
            return int(rng.choice(_ARP_PROGRAMS))
        if kind == "strum":
            return int(rng.choice(_STRUM_PROGRAMS))
        return _choice_weighted(rng, _OTHER_PROGRAMS)

    ensemble = str(rng.choice(sorted(_ENSEMBLES))) if rng.random() < 0.35 else None
    legato = float(rng.uniform(0.8, 1.0)) if rng.random() < 0.85 else float(rng.uniform(0.45, 0.7))
    timing_sd = float(rng.uniform(0.003, 0.015))
    other_tracks: list[_Track] = []
    for i, notes in enumerate(inner):
        is_comp = gen_harmony and i == len(inner) - 1
        if is_comp:
            prog = program_for(harmony_info["comp_style"])
        elif ensemble:
            prog = int(_ENSEMBLES[ensemble][i % len(_ENSEMBLES[ensemble])])
        else:
            prog = program_for("any")
        if not is_comp and rng.random() < 0.12:
            notes = [_Note(n.start, n.dur, n.pitch + int(rng.choice([-12, 12])), n.vel) for n in notes]
        other_tracks.append(_Track(f"{'comp' if is_comp else f'inner{i + 1}'}", prog, [], float(rng.uniform(-0.8, 0.8)), float(rng.uniform(-8.0, 0.0)), float(rng.uniform(0.65, 1.1))))
        other_tracks[-1].notes = _humanise(notes, clock, rng, timing_sd, other_tracks[-1].velocity_scale, 6.0, legato, seconds)
    if double_melody and melody_q:
        shift = int(rng.choice([0, 0, 12, -12]))
        t = _Track("melody-double", int(rng.choice(_DOUBLE_PROGRAMS)), [], float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-14.0, -6.0)), float(rng.uniform(0.45, 0.7)))
        t.notes = _humanise([_Note(n.start, n.dur, n.pitch + shift, n.vel) for n in melody_q], clock, rng, timing_sd, t.velocity_scale, 5.0, legato, seconds)
        other_tracks.append(t)
    bass_track = _Track("bass", _choice_weighted(rng, _BASS_PROGRAMS), [], float(rng.uniform(-0.15, 0.15)), 0.0, float(rng.uniform(0.75, 1.1)))
    bass_track.notes = _humanise(bass_notes, clock, rng, timing_sd * 0.7, bass_track.velocity_scale, 5.0, float(rng.uniform(0.75, 0.98)), seconds)

    rendered = _render_fluidsynth({"bass": [bass_track], "other": other_tracks}, frames, sample_rate)

    drums_info: dict = {"groove": "none"}
    kit_name = None
    if drums_on:
        kit_name = str(kits[int(rng.integers(0, len(kits)))])
        drums, drums_info = _render_drums(m, clock, seconds, frames, groove, kit_name, rng, sample_rate)
    else:
        drums = np.zeros((frames, 2), dtype=np.float32)

    # stem levels: RMS targets in dBFS
    stems = {"drums": drums, "bass": rendered["bass"], "other": rendered["other"]}
    targets = {"drums": (-22.0, -15.0), "bass": (-24.0, -17.0), "other": (-23.0, -16.0)}
    levels = {}
    for name in STEM_NAMES:
        x = stems[name]
        level = _rms_db(x)
        target = float(rng.uniform(*targets[name]))
        if math.isfinite(level):
            x *= np.float32(10 ** ((target - level) / 20.0))
            levels[name] = round(target, 2)
        else:
            levels[name] = None
        stems[name] = np.ascontiguousarray(x, dtype=np.float32)

    sources = [{"kind": "score", "id": score_id, "package": "music21", "licence": score.licence}]
    if any(t.notes for t in [bass_track] + other_tracks):
        sources.append({"kind": "soundfont", "id": "FluidR3_GM.sf2", "package": "fluid-soundfont-gm", "licence": "MIT"})
    if kit_name == _SONIC_PI_KIT:
        sources.append({"kind": "drum samples", "id": "sonic-pi-samples:drum_*", "package": "sonic-pi-samples", "licence": "CC0-1.0"})
    elif kit_name is not None:
        sources.append({"kind": "drum kit", "id": f"hydrogen-drumkits:{kit_name}", "package": "hydrogen-drumkits", "licence": DRUMKIT_LICENCES[kit_name]})
    meta = {
        "score_id": score_id,
        "title": score.meta.get("title", ""),
        "time_signature": list(score.time_signature),
        "tempo_bpm": round(60.0 / spq, 3),  # quarter notes per minute
        "beat_bpm": round(beat_bpm, 3),
        "beat_quarters": m.beat_q,
        "swing": round(swing, 4),
        "start_quarters": start_q,
        "repetitions": reps,
        "transpose": transpose,
        "parts_in_score": n_parts,
        "generated_harmony": harmony_info or None,
        "melody_doubled": bool(double_melody and melody_q),
        "ensemble": ensemble,
        "legato": round(legato, 3),
        "timing_sd_s": round(timing_sd, 4),
        "parts": [
            {"name": t.name, "stem": stem, "program": t.program, "pan": round(t.pan, 3), "level_db": round(t.level_db, 2), "velocity_scale": round(t.velocity_scale, 3), "notes": len(t.notes)}
            for stem, t in [("bass", bass_track)] + [("other", t) for t in other_tracks]
        ],
        "drums": dict(drums_info, kit=kit_name),
        "stem_rms_dbfs": levels,
        "sources": sources,
    }
    return RenderedAccompaniment(stems=stems, melody=melody, meta=meta)
