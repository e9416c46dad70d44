"""Vocal stems that sing a given melody, made only from the allowed sources (``shared/DATA.md``).

Five methods, each giving a mono 44.1 kHz float32 vocal aligned with a list of
:class:`~.melody.MelodyNote` (onsets and durations in seconds, pitches as MIDI numbers):

``"sinsy"``
    pysinsy sings a MusicXML score written from the melody (its bundled Japanese female HTS
    voice, CC-BY 3.0, so lyrics are kana syllables). Timbre varies through the vocoder's
    all-pass constant (a formant-like shift).
``"festival"``
    Festival's singing mode (``text2wave -mode singing``, the kal diphone voice, 16 kHz) sings
    English monosyllables; WORLD then re-imposes the melody's f0 with vibrato, shifts formants and
    adds breathiness.
``"speech-espeak"`` / ``"speech-flite"``
    Spoken words (one word per note or legato note group), analysed with WORLD (dio + stonemask,
    5 ms frames, envelopes coded to 40 mel-cepstral coefficients), time-warped onto the notes
    (consonants kept at natural length, the voiced part stretched) and re-synthesised at the
    melody's f0 plus vibrato, drift and glides.
``"klettres"`` / ``"tuxpaint"``
    Real human voices: letters and syllables in 20 languages (Debian ``klettres-data``), or
    read phrases in 13 languages (``tuxpaint-stamps-default``), from one speaker of the requested
    split (:mod:`.voices`: voices are split by speaker), placed at note onsets and re-pitched
    like speech, or left at their natural pitch and prosody (real timbre with no vocoder in it:
    spoken-word lines).

Everything random comes from the ``rng`` given to :func:`sing`; the external tools are
deterministic, so the same arguments and rng state give identical audio. WORLD analyses of
spoken words and clips are cached in memory and, when ``work_dir`` is given, on disk.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from noisyneuron.audio.atomic import atomic_path
from noisyneuron.audio.resampling import fit_length
from noisyneuron.errors import UserError

from .melody import MelodyNote, midi_to_hz

__all__ = ["VOCAL_METHODS", "Vocal", "available_methods", "sing", "random_melody"]

#: Every vocal method, in order.
VOCAL_METHODS = ("sinsy", "festival", "speech-espeak", "speech-flite", "klettres", "tuxpaint")
#: The methods that sing with real recorded voices (:mod:`.voices`), and the package of each.
REAL_VOICE_PACKAGES = {"klettres": "klettres-data", "tuxpaint": "tuxpaint-stamps-default"}

_FESTIVAL_VOICE_DIR = Path("/usr/share/festival/voices/english/kal_diphone")

_FRAME_MS = 5.0  # WORLD frame period, milliseconds
_FRAME_S = _FRAME_MS / 1000.0
_SP_DIMS = 40  # coded spectral envelope size (mel-cepstrum order): coarse and cheap
_PRE_S = 0.4  # the gate opens this long before a phrase (consonant lead-in, breath), seconds
_POST_S = 0.3  # and stays open this long after it (natural tails), seconds
_PHRASE_GAP_S = 0.35  # notes closer than this (seconds) belong to one phrase
_LEGATO_GAP_S = 0.06  # notes closer than this (seconds) may share one word
_TARGET_RMS_DB = -20.0  # RMS of the sung part before per-call level variation, dBFS

_INSTALL_HINT = "is not installed; run scripts/install-data-tools.sh"

# ----- sources and licences -------------------------------------------------------------------
_SOURCES = {
    "sinsy": [
        {"kind": "singing-voice", "id": "sinsy:nitech_jp_song070_f001", "package": "pysinsy", "licence": "CC-BY-3.0 (voice: Nagoya Institute of Technology, NIT SONG070 F001); pysinsy MIT; Sinsy BSD-3-Clause"},
    ],
    "festival": [
        {"kind": "tts-engine", "id": "festival:singing-mode", "package": "festival", "licence": "X11-style permissive (University of Edinburgh, CMU)"},
        {"kind": "tts-voice", "id": "festival:kal_diphone", "package": "festvox-kallpc16k", "licence": "X11-style permissive (Alan W Black, Kevin Lenzo 1998; CMU)"},
    ],
    "speech-espeak": [
        {"kind": "tts-engine", "id": "espeak-ng", "package": "espeak-ng", "licence": "GPL-3.0-or-later (program; synthesised output is not covered)"},
    ],
    "speech-flite": [
        {"kind": "tts-engine", "id": "flite", "package": "flite", "licence": "BSD-style CMU Flite licence (program and cmu_us voices)"},
    ],
    "klettres": [],  # one entry per clip, added at run time
    "tuxpaint": [],
}
_WORLD_SOURCE = {"kind": "vocoder", "id": "pyworld", "package": "pyworld", "licence": "MIT (pyworld); modified BSD (WORLD)"}


@dataclass
class Vocal:
    """A synthesised vocal stem.

    Attributes:
        audio: float32, mono, shape (frames,), at the requested sample rate (44.1 kHz by
            default), exactly ``round(seconds * sample_rate)`` frames, peak below 1; silent
            (exact zeros) outside the sung phrases apart from lead-ins, breaths and tails.
        meta: JSON-serialisable description: ``method``, ``voice``, ``lyrics``,
            ``transpose_semitones``, ``formant_shift`` (ratio), ``breathiness`` (0..1),
            ``phrase_gains_db``, and ``sources`` (dicts with kind, id, package, licence).
    """

    audio: np.ndarray
    meta: dict = field(default_factory=dict)


# ----- tools ----------------------------------------------------------------------------------
def _load_extension(package: str, module: str):
    """Import ``package.module`` (a compiled extension); when the package's ``__init__`` cannot
    run (pyworld and pysinsy import ``pkg_resources``, gone from setuptools >= 81), load the
    extension file directly instead."""
    try:
        return importlib.import_module(f"{package}.{module}")
    except ImportError:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise
        directory = Path(next(iter(spec.submodule_search_locations)))
        files = sorted(directory.glob(f"{module}.*.so")) + sorted(directory.glob(f"{module}.*.pyd"))
        if not files:
            raise
        name = f"_noisyneuron_{package}_{module}"
        if name in sys.modules:
            return sys.modules[name]
        ext_spec = importlib.util.spec_from_file_location(module, files[0])
        mod = importlib.util.module_from_spec(ext_spec)
        ext_spec.loader.exec_module(mod)
        sys.modules[name] = mod
        return mod


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@lru_cache(maxsize=None)
def _pyworld():
    if not _has_module("pyworld"):
        raise UserError(f"pyworld {_INSTALL_HINT}")
    return _load_extension("pyworld", "pyworld")


def _tool_missing(method: str) -> str | None:
    """The name of the first missing tool ``method`` needs, or None when all are here."""
    needs: dict[str, list[tuple[str, bool]]] = {
        "sinsy": [("pysinsy", _has_module("pysinsy"))],
        "festival": [("festival", shutil.which("text2wave") is not None), ("festvox-kallpc16k", _FESTIVAL_VOICE_DIR.is_dir()), ("pyworld", _has_module("pyworld"))],
        "speech-espeak": [("espeak-ng", shutil.which("espeak-ng") is not None), ("pyworld", _has_module("pyworld"))],
        "speech-flite": [("flite", shutil.which("flite") is not None), ("pyworld", _has_module("pyworld"))],
        "klettres": [("klettres-data", _has_voices("klettres")), ("pyworld", _has_module("pyworld"))],
        "tuxpaint": [("tuxpaint-stamps-default", _has_voices("tuxpaint")), ("pyworld", _has_module("pyworld"))],
    }
    if method not in needs:
        raise ValueError(f"method must be one of {', '.join(VOCAL_METHODS)}, got {method!r}")
    for tool, ok in needs[method]:
        if not ok:
            return tool
    return None


def available_methods() -> list[str]:
    """The methods of :data:`VOCAL_METHODS` whose tools are installed here, in that order."""
    return [m for m in VOCAL_METHODS if _tool_missing(m) is None]


# ----- melody helpers -------------------------------------------------------------------------
def _clean_melody(melody: list[MelodyNote], seconds: float) -> list[MelodyNote]:
    """Notes sorted, inside [0, seconds), overlaps trimmed, none shorter than 40 ms."""
    out: list[MelodyNote] = []
    for note in sorted(melody, key=lambda n: n.start):
        start = max(0.0, float(note.start))
        end = min(float(seconds), float(note.end))
        if out and start < out[-1].end:
            start = out[-1].end
        if end - start >= 0.04:
            out.append(MelodyNote(start, end - start, int(note.pitch), note.lyric))
    return out


def _group(notes: list[MelodyNote], max_gap: float) -> list[list[MelodyNote]]:
    """Consecutive notes split wherever the silence between two exceeds ``max_gap`` seconds."""
    groups: list[list[MelodyNote]] = []
    for note in notes:
        if groups and note.start - groups[-1][-1].end <= max_gap:
            groups[-1].append(note)
        else:
            groups.append([note])
    return groups


def _word_slots(phrase: list[MelodyNote], rng: np.random.Generator, melisma: float) -> list[list[MelodyNote]]:
    """Split a phrase into word slots: one note each, or (probability ``melisma``) 2-3 legato notes."""
    slots: list[list[MelodyNote]] = []
    i = 0
    while i < len(phrase):
        k = 1
        if rng.random() < melisma:
            k = int(rng.integers(2, 4))
        slot = [phrase[i]]
        for j in range(i + 1, min(len(phrase), i + k)):
            if phrase[j].start - phrase[j - 1].end > _LEGATO_GAP_S:
                break
            slot.append(phrase[j])
        slots.append(slot)
        i += len(slot)
    return slots


@dataclass
class _Style:
    """Per-call singing style, drawn from the rng."""

    vibrato_hz: float  # vibrato rate, Hz
    vibrato_cents: float  # vibrato depth (peak), cents
    vibrato_delay: float  # vibrato starts this long into a note, seconds
    drift_cents: float  # slow random pitch drift (peak), cents
    glide_s: float  # pitch glide between legato notes, seconds
    formant: float  # spectral-envelope frequency warp ratio (>1: smaller, "brighter" voice)
    breathiness: float  # 0..1, extra aperiodicity / breath noise
    breath_prob: float  # chance of an audible breath before a phrase

    @classmethod
    def draw(cls, rng: np.random.Generator) -> _Style:
        return cls(
            vibrato_hz=float(rng.uniform(5.0, 6.2)),
            vibrato_cents=float(rng.uniform(20.0, 50.0)),
            vibrato_delay=float(rng.uniform(0.12, 0.35)),
            drift_cents=float(rng.uniform(3.0, 12.0)),
            glide_s=float(rng.uniform(0.03, 0.09)),
            formant=float(np.exp(rng.uniform(np.log(0.87), np.log(1.15)))),
            breathiness=float(rng.uniform(0.0, 0.35)),
            breath_prob=float(rng.uniform(0.0, 0.6)),
        )


def _sung_f0(notes: list[MelodyNote], t0: float, n_frames: int, style: _Style, rng: np.random.Generator) -> np.ndarray:
    """A sung f0 contour (Hz) over ``n_frames`` 5 ms frames starting at ``t0`` seconds.

    Each note's pitch (with a few cents of random detune) plus vibrato that fades in after
    ``style.vibrato_delay``, a slow drift, and glides between notes that follow each other.
    Frames between notes continue the neighbouring pitch (the caller decides voicing).
    """
    t = t0 + np.arange(n_frames) * _FRAME_S
    cents = np.zeros(n_frames)
    vib_env = np.zeros(n_frames)
    log_f = np.full(n_frames, np.nan)
    for note in notes:
        a = int(round((note.start - t0) / _FRAME_S))
        b = int(round((note.end - t0) / _FRAME_S))
        a, b = max(0, a), min(n_frames, max(b, a + 1))
        if a >= n_frames:
            continue
        log_f[a:b] = np.log(midi_to_hz(note.pitch + rng.normal(0.0, 0.06)))
        into = t[a:b] - note.start
        vib_env[a:b] = np.clip((into - style.vibrato_delay) / 0.25, 0.0, 1.0)
    # fill gaps with the nearest note's pitch so glides run across them
    idx = np.arange(n_frames)
    ok = ~np.isnan(log_f)
    if not ok.any():
        return np.zeros(n_frames)
    log_f = np.interp(idx, idx[ok], log_f[ok])
    glide = max(1, int(round(style.glide_s / _FRAME_S)))
    if glide > 1 and n_frames > glide:
        kernel = np.hanning(glide + 2)[1:-1]
        kernel /= kernel.sum()
        padded = np.pad(log_f, (glide, glide), mode="edge")
        log_f = np.convolve(padded, kernel, mode="same")[glide:-glide]
    rate = style.vibrato_hz * (1.0 + 0.03 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(rate) * _FRAME_S + rng.uniform(0, 2 * np.pi)
    cents += style.vibrato_cents * vib_env * np.sin(phase)
    for _ in range(3):
        cents += style.drift_cents / 3.0 * np.sin(2 * np.pi * rng.uniform(0.1, 0.8) * t + rng.uniform(0, 2 * np.pi))
    return np.exp(log_f) * 2.0 ** (cents / 1200.0)


# ----- WORLD analysis, cached -----------------------------------------------------------------
@dataclass
class _Params:
    """A WORLD analysis of one spoken word or clip (5 ms frames), trimmed to its sound.

    ``f0`` Hz (0 = unvoiced), ``sp`` coded spectral envelope (frames, 40), ``ap`` coded band
    aperiodicity (frames, bands), both float32; ``fs`` the analysis rate, Hz.
    """

    f0: np.ndarray
    sp: np.ndarray
    ap: np.ndarray
    fs: int

    @property
    def frames(self) -> int:
        return len(self.f0)


_CACHE_VERSION = "v1"  # part of every cache key: change it when the analysis changes
_MEMORY_CACHE: OrderedDict[str, _Params] = OrderedDict()
_MEMORY_CACHE_SIZE = 3000


def _trim(audio: np.ndarray, fs: int) -> np.ndarray:
    """``audio`` without the silence (frames 40 dB under its loudest 5 ms frame) around it."""
    x = np.ascontiguousarray(audio, dtype=np.float64)
    hop = int(round(fs * _FRAME_S))
    n = len(x) // hop
    if n < 1:
        return x
    frame_rms = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-20)
    loud = frame_rms > frame_rms.max() * 10 ** (-40 / 20)
    first = int(np.argmax(loud))
    last = int(len(loud) - np.argmax(loud[::-1]))
    return x[max(0, (first - 2) * hop) : min(len(x), (last + 2) * hop)]


def _fill_voicing_holes(f0: np.ndarray, max_frames: int) -> np.ndarray:
    """``f0`` (Hz, 0 = unvoiced) with unvoiced runs of at most ``max_frames`` frames between
    voiced frames bridged by interpolation (dio drops out inside noisy vowels)."""
    f0 = np.array(f0, dtype=np.float64)
    voiced = np.flatnonzero(f0 > 0)
    for a, b in zip(voiced[:-1], voiced[1:]):
        if 1 < b - a <= max_frames + 1:
            f0[a + 1 : b] = np.interp(np.arange(a + 1, b), [a, b], [f0[a], f0[b]])
    return f0


def _finite_codes(f0: np.ndarray, sp_coded: np.ndarray, ap_coded: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WORLD codes with no NaN or inf: d4c's aperiodicity of some klettres frames codes to NaN
    (log of zero), which made whole vocals NaN. Such frames become unvoiced, fully aperiodic
    (code 0) and as quiet as the quietest finite envelope value."""
    bad = ~(np.all(np.isfinite(sp_coded), axis=1) & np.all(np.isfinite(ap_coded), axis=1))
    if not bad.any():
        return f0, sp_coded, ap_coded
    finite = sp_coded[np.isfinite(sp_coded)]
    floor = float(finite.min()) if finite.size else -60.0
    return np.where(bad, 0.0, f0), np.where(np.isfinite(sp_coded), sp_coded, floor), np.where(np.isfinite(ap_coded), ap_coded, 0.0)


def _analyse(audio: np.ndarray, fs: int) -> _Params:
    """Analyse mono audio with WORLD (dio + stonemask, cheaptrick, d4c) after trimming silence."""
    pw = _pyworld()
    x = _trim(audio, fs)
    f0, t = pw.dio(x, fs, f0_floor=60.0, f0_ceil=800.0, frame_period=_FRAME_MS)
    f0 = _fill_voicing_holes(pw.stonemask(x, f0, t, fs), max_frames=12)
    sp = pw.cheaptrick(x, f0, t, fs)
    ap = pw.d4c(x, f0, t, fs)
    f0, sp_coded, ap_coded = _finite_codes(f0, pw.code_spectral_envelope(sp, fs, _SP_DIMS), pw.code_aperiodicity(ap, fs))
    return _Params(
        f0=f0.astype(np.float32),
        sp=sp_coded.astype(np.float32),
        ap=ap_coded.astype(np.float32),
        fs=int(fs),
    )


def _cached(key: str, work_dir: Path | None, make) -> _Params:
    """The analysis for ``key`` from memory, then from ``work_dir``, else ``make()`` (stored in both)."""
    if key in _MEMORY_CACHE:
        _MEMORY_CACHE.move_to_end(key)
        return _MEMORY_CACHE[key]
    params = None
    path = None
    if work_dir is not None:
        digest = hashlib.sha1(key.encode("utf-8")).hexdigest()
        path = Path(work_dir) / "vocal-cache" / digest[:2] / f"{digest}.npz"
        if path.is_file():
            try:
                with np.load(path) as z:
                    params = _Params(z["f0"], z["sp"], z["ap"], int(z["fs"]))
            except (OSError, ValueError, KeyError):
                params = None
    if params is None:
        params = make()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path, keep_suffix=True) as tmp:  # unique: parallel workers share the cache
                np.savez(tmp, f0=params.f0, sp=params.sp, ap=params.ap, fs=params.fs)
    _MEMORY_CACHE[key] = params
    while len(_MEMORY_CACHE) > _MEMORY_CACHE_SIZE:
        _MEMORY_CACHE.popitem(last=False)
    return params


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    audio, fs = sf.read(path, dtype="float64", always_2d=True)
    return audio.mean(axis=1), int(fs)


# ----- text-to-speech words -------------------------------------------------------------------
#: Words and vocables sung by the speech voices and festival (English monosyllables, mostly).
_WORDS = (
    "love heart night light day way home sun moon star fire rain sky blue gold road time dream "
    "soul mind hand eyes kiss run fly fall rise stay go know feel see hold need burn shine cry "
    "smile slow fast free true sweet long cold warm wild high low deep gone down up out all "
    "one more now here there where when why you me we my your our oh ah yeah hey whoa la na "
    "da doo ooh baby girl boy friend song sing dance play sea wave wind snow tree bird rose "
    "door wall town sound voice word name face life world gold bright dark late soon still "
    "through back far near"
).split()
_ESPEAK_VOICES = (
    "en", "en-us", "en+f1", "en+f2", "en+f3", "en+f4", "en+f5", "en+m1", "en+m2", "en+m3",
    "en+m4", "en+m7", "en-us+f2", "en-us+m3", "en-gb-scotland", "en-gb-x-rp",
)
_SPEEDS = (130, 170)  # speaking rates, words per minute (few: the cache stays small)
_FLITE_VOICES = ("slt", "rms", "awb", "kal16")


def _tts_word(method: str, voice: str, speed: int, word: str, work_dir: Path | None) -> _Params:
    """The WORLD analysis of ``word`` spoken by a TTS voice (cached per word, voice, speed)."""

    def make() -> _Params:
        with tempfile.TemporaryDirectory(prefix="nn-tts-") as tmp:
            out = Path(tmp) / "w.wav"
            if method == "speech-espeak":
                cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(out), word]
            else:
                cmd = ["flite", "-voice", voice, "--setf", f"duration_stretch={150.0 / speed:.3f}", "-t", word, "-o", str(out)]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            audio, fs = _read_wav(out)
        return _analyse(audio, fs)

    return _cached(f"{_CACHE_VERSION}|{method}|{voice}|{speed}|{word}", work_dir, make)


# ----- real voices (klettres, tuxpaint) --------------------------------------------------------
def _has_voices(method: str) -> bool:
    from .voices import all_voice_sources

    return any(v.package == REAL_VOICE_PACKAGES[method] for v in all_voice_sources())


def real_voices(method: str, split: str):
    """The :class:`~.voices.VoiceSource` speakers of ``split`` that ``method`` sings with."""
    from .voices import voice_sources

    return voice_sources(split, package=REAL_VOICE_PACKAGES[method], kind="speech")


def klettres_clips(split: str) -> list[str]:
    """Every klettres clip (absolute path) of the speakers that belong to ``split``."""
    return sorted(c for v in real_voices("klettres", split) for c in v.clips)


#: Real clips come at several rates; one phrase is re-synthesised at one rate, so every clip
#: is analysed at this one (WORLD's aperiodicity code has a rate-dependent number of bands).
_CLIP_ANALYSIS_RATE = 22050


def _clip_for_analysis(path: str) -> tuple[np.ndarray, int]:
    """A real voice clip resampled to :data:`_CLIP_ANALYSIS_RATE` for WORLD."""
    audio, fs = _read_wav(Path(path))
    return _resample(audio, fs, _CLIP_ANALYSIS_RATE), _CLIP_ANALYSIS_RATE



# ----- WORLD re-synthesis of word slots -------------------------------------------------------
def _warp_indices(params: _Params, m: int) -> np.ndarray:
    """Source frame indices (length ``m``) that stretch a word onto ``m`` frames.

    Leading and trailing unvoiced frames (consonants) keep their natural length, capped at 30 %
    and 25 % of the slot; the voiced part between them takes the rest.
    """
    n = params.frames
    voiced = np.flatnonzero(params.f0 > 0)
    if len(voiced) == 0:
        return np.minimum((np.arange(m) * n / m).astype(int), n - 1)
    fv, lv = int(voiced[0]), int(voiced[-1]) + 1
    lead = min(fv, int(0.3 * m))
    tail = min(n - lv, int(0.25 * m))
    mid = max(1, m - lead - tail)
    parts = [
        np.linspace(fv - lead, fv, lead, endpoint=False),
        np.linspace(fv, lv, mid, endpoint=False),
        np.linspace(lv, lv + tail, tail, endpoint=False),
    ]
    return np.clip(np.concatenate(parts).astype(int), 0, n - 1)[:m]


def _formant_warp(sp: np.ndarray, ratio: float) -> np.ndarray:
    """Scale the frequency axis of power envelopes ``sp`` (frames, bins) by ``ratio``."""
    if abs(ratio - 1.0) < 1e-3:
        return sp
    bins = sp.shape[1]
    src = np.clip(np.arange(bins) / ratio, 0, bins - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, bins - 1)
    w = src - lo
    return sp[:, lo] * (1 - w) + sp[:, hi] * w


def _breath_noise(n: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of breath-like noise (band 0.6-6 kHz, unit RMS, rounded envelope)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    shape = np.exp(-0.5 * (np.log(np.maximum(freqs, 1.0) / 2000.0) / 0.7) ** 2)
    y = np.fft.irfft(spec * shape, n)
    y *= np.hanning(n) ** 0.7
    return y / (np.sqrt(np.mean(y**2)) + 1e-12)


def _render_world_phrase(
    slots: list[tuple[list[MelodyNote], _Params]],
    style: _Style,
    rng: np.random.Generator,
    repitch: bool,
) -> tuple[np.ndarray, int, float]:
    """Synthesise one phrase of word slots; returns (audio at the analysis rate, rate, start s)."""
    pw = _pyworld()
    fs = slots[0][1].fs
    t0 = slots[0][0][0].start
    t1 = slots[-1][0][-1].end + 0.02
    n = int(np.ceil((t1 - t0) / _FRAME_S)) + 1
    fft = pw.get_cheaptrick_fft_size(fs)
    n_ap = slots[0][1].ap.shape[1]
    sp_c = np.zeros((n, _SP_DIMS))
    ap_c = np.zeros((n, n_ap))
    src_f0 = np.zeros(n)
    voiced = np.zeros(n, dtype=bool)
    active = np.zeros(n, dtype=bool)
    for notes, params in slots:
        a = int(round((notes[0].start - t0) / _FRAME_S))
        b = min(n, int(round((notes[-1].end - t0) / _FRAME_S)))
        if repitch:
            idx = _warp_indices(params, b - a)
        else:  # natural timing, cut at the slot's end
            idx = np.arange(min(params.frames, b - a))
            b = a + len(idx)
        sp_c[a:b] = params.sp[idx]
        ap_c[a:b] = params.ap[idx]
        src_f0[a:b] = params.f0[idx]
        voiced[a:b] = params.f0[idx] > 0
        active[a:b] = True
    sp = pw.decode_spectral_envelope(np.ascontiguousarray(sp_c), fs, fft)
    ap = pw.decode_aperiodicity(np.ascontiguousarray(ap_c), fs, fft)
    sp[~active] = 1e-16
    ap[~active] = 1.0
    sp = _formant_warp(sp, style.formant)
    if style.breathiness > 0:
        tilt = np.sqrt(np.linspace(0.0, 1.0, sp.shape[1]))
        ap = 1.0 - (1.0 - ap) * (1.0 - style.breathiness * tilt)
    if repitch:
        f0 = _sung_f0([nt for notes, _ in slots for nt in notes], t0, n, style, rng) * voiced
    else:
        f0 = src_f0 * voiced
    y = pw.synthesize(np.ascontiguousarray(f0), np.ascontiguousarray(sp), np.ascontiguousarray(np.clip(ap, 0.0, 1.0)), fs, _FRAME_MS)
    # a near-silent clip can leave NaN in WORLD's envelopes (log of zero); such frames are silence
    y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
    # gate: exact silence outside the slots, 10 ms fades, 40 ms tails
    gate = np.repeat(active.astype(float), int(round(fs * _FRAME_S)))
    release = np.exp(-np.arange(int(0.04 * fs)) / (0.012 * fs))
    ends = np.flatnonzero(np.diff(np.concatenate([[0.0], gate, [0.0]])) < 0)
    for e in ends:
        seg = gate[e : e + len(release)]
        gate[e : e + len(seg)] = np.maximum(seg, release[: len(seg)])
    gate = _smooth(gate, int(0.01 * fs))
    m = min(len(y), len(gate))
    return y[:m] * gate[:m], fs, t0


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of ``x`` over ``width`` samples (edges padded with zeros), O(n)."""
    if width <= 1:
        return x
    c = np.cumsum(np.concatenate([np.zeros(width // 2 + 1), x, np.zeros(width)]))
    return (c[width:] - c[:-width])[: len(x)] / width


def _render_raw_phrase(slots: list[tuple[list[MelodyNote], str]], sample_rate: int) -> tuple[np.ndarray, int, float]:
    """Real clips at their natural pitch: each trimmed clip starts at its slot's onset and is
    cut 80 ms after the slot ends (30 ms fade). Returns (audio, sample_rate, start s)."""
    t0 = slots[0][0][0].start
    t1 = slots[-1][0][-1].end + 0.1
    out = np.zeros(int(np.ceil((t1 - t0) * sample_rate)) + 1)
    fade = int(0.03 * sample_rate)
    for notes, clip in slots:
        audio, fs = _read_wav(Path(clip))
        x = _resample(_trim(audio, fs), fs, sample_rate)
        n = min(len(x), int((notes[-1].end - notes[0].start + 0.08) * sample_rate))
        x = x[:n].copy()
        k = min(fade, n)
        x[n - k :] *= np.linspace(1.0, 0.0, k)
        _place(out, x, notes[0].start - t0, sample_rate)
    return out, sample_rate, t0


def _place(out: np.ndarray, audio: np.ndarray, start_s: float, sample_rate: int) -> None:
    """Add ``audio`` into ``out`` starting at ``start_s`` seconds (clipped to ``out``)."""
    a = int(round(start_s * sample_rate))
    if a < 0:
        audio, a = audio[-a:], 0
    b = min(len(out), a + len(audio))
    if b > a:
        out[a:b] += audio[: b - a]


def _resample(audio: np.ndarray, fs: int, sample_rate: int) -> np.ndarray:
    if fs == sample_rate:
        return np.asarray(audio, dtype=np.float64)
    return soxr.resample(np.asarray(audio, dtype=np.float64), fs, sample_rate, quality="HQ")


def _sing_world(
    notes: list[MelodyNote], seconds: float, method: str, rng: np.random.Generator, split: str, sample_rate: int, work_dir: Path | None, style: _Style
) -> tuple[np.ndarray, dict]:
    """speech-espeak, speech-flite, klettres and tuxpaint: word slots analysed, warped and
    re-synthesised (real voices: sometimes left at their natural pitch instead)."""
    out = np.zeros(int(round(seconds * sample_rate)))
    meta: dict = {}
    phrases = _group(notes, _PHRASE_GAP_S)
    repitch = True
    real = method in REAL_VOICE_PACKAGES
    if real:
        speakers = real_voices(method, split)
        if not speakers:
            raise UserError(f"{REAL_VOICE_PACKAGES[method]} has no speakers in split {split!r}; run scripts/install-data-tools.sh")
        weights = np.sqrt([len(v.clips) for v in speakers])
        speaker = speakers[int(rng.choice(len(speakers), p=weights / weights.sum()))]
        pool = list(speaker.clips)
        # tuxpaint clips are whole phrases: half of its lines keep their natural prosody
        repitch = bool(rng.random() < (0.75 if method == "klettres" else 0.5))
        meta.update(voice=speaker.id, repitched=repitch)
        used: list[str] = []
    elif method == "speech-espeak":
        voice = _ESPEAK_VOICES[int(rng.integers(len(_ESPEAK_VOICES)))]
        speed = int(_SPEEDS[int(rng.integers(len(_SPEEDS)))])
        meta.update(voice=f"espeak-ng:{voice}", speed_wpm=speed)
    else:
        voice = _FLITE_VOICES[int(rng.integers(len(_FLITE_VOICES)))]
        speed = int(_SPEEDS[int(rng.integers(len(_SPEEDS)))])
        meta.update(voice=f"flite:{voice}", speed_wpm=speed)
    vocab = list(rng.choice(len(_WORDS), size=min(len(_WORDS), int(rng.integers(12, 40))), replace=False))
    lyrics: list[str] = []
    gains = []
    for phrase in phrases:
        slots = []
        for slot in _word_slots(phrase, rng, melisma=0.2 if repitch else 0.0):
            if real:
                clip = pool[int(rng.integers(len(pool)))]
                used.append(clip)
                lyrics.append(Path(clip).name)
                if not repitch:
                    slots.append((slot, clip))
                    continue
                params = _cached(f"{_CACHE_VERSION}|clip@{_CLIP_ANALYSIS_RATE}|{clip}", work_dir, lambda c=clip: _analyse(*_clip_for_analysis(c)))
            else:
                word = slot[0].lyric.strip().lower() if slot[0].lyric.strip().isalpha() else _WORDS[vocab[int(rng.integers(len(vocab)))]]
                params = _tts_word(method, voice, speed, word, work_dir)
                lyrics.append(word)
            if params.frames >= 2:
                slots.append((slot, params))
        if not slots:
            continue
        if repitch:
            y, fs, t0 = _render_world_phrase(slots, style, rng, repitch)
        else:
            y, fs, t0 = _render_raw_phrase(slots, sample_rate)
        gain_db = float(rng.uniform(-4.0, 3.0))
        gains.append(round(gain_db, 2))
        _place(out, _resample(y, fs, sample_rate) * 10 ** (gain_db / 20), t0, sample_rate)
    meta.update(lyrics=lyrics, phrase_gains_db=gains)
    if real:
        meta["sources"] = [speaker.source(c) for c in sorted(set(used))]
    return out, meta


# ----- sinsy ----------------------------------------------------------------------------------
#: Kana syllables for the Japanese sinsy voice.
_KANA = tuple("あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわん") + ("ら", "ら", "な", "る", "ら")
_STEPS = (("C", 0), ("C", 1), ("D", 0), ("D", 1), ("E", 0), ("F", 0), ("F", 1), ("G", 0), ("G", 1), ("A", 0), ("A", 1), ("B", 0))
_TICKS_PER_S = 1000  # MusicXML divisions per quarter at 60 BPM: one tick = 1 ms
_MEASURE_TICKS = 4 * _TICKS_PER_S
_SINSY_MIN_REST_S = 0.12


def _musicxml(notes: list[MelodyNote], seconds: float, lyrics: list[str], pitches: list[float] | None = None) -> str:
    """A one-part MusicXML score at 60 BPM (a quarter = 1 s, a tick = 1 ms) singing ``notes``.

    ``pitches`` (MIDI, may be fractional: written as a decimal ``<alter>``) replace the notes'
    own. Notes crossing a barline are split and tied (the lyric stays on the first part). The
    score opens with one extra measure of rest (:data:`_MEASURE_TICKS`, 4 s), and a note is
    held through a rest shorter than :data:`_SINSY_MIN_REST_S` seconds before the next note.
    """
    pitches = [float(n.pitch) for n in notes] if pitches is None else pitches
    spelled = {}
    events: list[tuple[int, int, MelodyNote | None, str]] = []  # (start tick, ticks, note, lyric)
    pos = _MEASURE_TICKS  # a whole measure of rest first: sinsy wants a score to open with a rest
    for i, (note, lyric, pitch) in enumerate(zip(notes, lyrics, pitches)):
        spelled[id(note)] = pitch
        a = _MEASURE_TICKS + int(round(note.start * _TICKS_PER_S))
        end = note.end
        if i + 1 < len(notes) and notes[i + 1].start - note.end < _SINSY_MIN_REST_S:
            end = notes[i + 1].start  # sinsy breaks the phrase at every rest, however short
        b = _MEASURE_TICKS + int(round(end * _TICKS_PER_S))
        if a > pos:
            events.append((pos, a - pos, None, ""))
        a = max(a, pos)
        if b > a:
            events.append((a, b - a, note, lyric))
            pos = b
    end = max(pos, _MEASURE_TICKS + int(round(seconds * _TICKS_PER_S)))
    end = -(-end // _MEASURE_TICKS) * _MEASURE_TICKS
    if end > pos:
        events.append((pos, end - pos, None, ""))
    measures: list[list[str]] = [[] for _ in range(end // _MEASURE_TICKS)]
    for start, ticks, note, lyric in events:
        first = True
        while ticks > 0:
            m = start // _MEASURE_TICKS
            piece = min(ticks, (m + 1) * _MEASURE_TICKS - start)
            ticks -= piece
            start += piece
            if note is None:
                measures[m].append(f"<note><rest/><duration>{piece}</duration></note>")
                continue
            pitch = spelled[id(note)]
            base = int(np.floor(pitch + 1e-6))
            step, alter = _STEPS[base % 12]
            alter = round(alter + pitch - base, 3)
            octave = base // 12 - 1
            ties = ([] if first else ['<tie type="stop"/>']) + (['<tie type="start"/>'] if ticks > 0 else [])
            notations = "".join(t.replace("tie", "tied") for t in ties)
            alter_xml = f"<alter>{alter:g}</alter>" if alter else ""
            lyric_xml = f"<lyric><text>{lyric}</text></lyric>" if first else ""
            measures[m].append(
                f"<note><pitch><step>{step}</step>{alter_xml}<octave>{octave}</octave></pitch><duration>{piece}</duration>"
                + "".join(ties)
                + (f"<notations>{notations}</notations>" if notations else "")
                + lyric_xml
                + "</note>"
            )
            first = False
    body = []
    for i, content in enumerate(measures):
        head = ""
        if i == 0:
            head = (
                f"<attributes><divisions>{_TICKS_PER_S}</divisions><time><beats>4</beats><beat-type>4</beat-type></time></attributes>"
                '<direction placement="above"><sound tempo="60"/></direction>'
            )
        body.append(f'<measure number="{i + 1}">{head}{"".join(content)}</measure>')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<score-partwise version="3.0"><part-list><score-part id="P1"><part-name>Voice</part-name></score-part></part-list>'
        f'<part id="P1">{"".join(body)}</part></score-partwise>\n'
    )


_SINSY = None


class _QuietStderr:
    """Silence file descriptor 2 (sinsy's C++ code prints warnings there) inside a ``with``."""

    def __enter__(self):
        sys.stderr.flush()
        self._saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc):
        os.dup2(self._saved, 2)
        os.close(self._saved)
        return False


def _sinsy():
    """The loaded Sinsy engine with the bundled Japanese voice (one per process)."""
    global _SINSY
    if _SINSY is None:
        if not _has_module("pysinsy"):
            raise UserError(f"pysinsy {_INSTALL_HINT}")
        module = _load_extension("pysinsy", "sinsy")
        base = Path(next(iter(importlib.util.find_spec("pysinsy").submodule_search_locations)))
        engine = module.Sinsy()
        if not engine.setLanguages("j", str(base / "_dic")):
            raise UserError("pysinsy's Japanese dictionary cannot be loaded; run scripts/install-data-tools.sh")
        if not engine.loadVoices(str(base / "htsvoice" / "nitech_jp_song070_f001.htsvoice")):
            raise UserError("pysinsy's voice cannot be loaded; run scripts/install-data-tools.sh")
        _SINSY = engine
    return _SINSY


# The bundled voice sings accurately about C4-D5 (MIDI 60-74); far outside it turns
# unvoiced or flat, so phrases mostly outside this range are moved by octaves into it.
_SINSY_RANGE = (57, 79)


def _sinsy_octaves(phrase: list[MelodyNote]) -> int:
    """The octave transposition (semitones: -12, 0, +12...) that fits a phrase into the voice."""
    lo, hi = _SINSY_RANGE

    def outside(shift: int) -> float:
        return sum(max(0, lo - (n.pitch + shift)) + max(0, n.pitch + shift - hi) for n in phrase)

    return min((-24, -12, 0, 12, 24), key=lambda k: (outside(k), abs(k)))


def _sing_sinsy(notes: list[MelodyNote], seconds: float, rng: np.random.Generator, sample_rate: int, work_dir: Path | None, style: _Style) -> tuple[np.ndarray, dict]:
    engine = _sinsy()
    lyrics = [n.lyric if n.lyric and all("\u3040" <= ch <= "\u30ff" for ch in n.lyric) else _KANA[int(rng.integers(len(_KANA)))] for n in notes]
    shifts: list[int] = []
    written: list[float] = []
    for phrase in _group(notes, _PHRASE_GAP_S):
        shift = _sinsy_octaves(phrase)
        shifts.append(shift)
        written += [float(n.pitch + shift) for n in phrase]
    xml = _musicxml(notes, seconds, lyrics, written)
    # the all-pass constant warps the vocoder's frequency axis: a formant-like timbre shift
    alpha = float(np.clip(0.55 + 0.25 * np.log(style.formant), 0.45, 0.65))
    with tempfile.TemporaryDirectory(prefix="nn-sinsy-", dir=work_dir) as tmp:
        path = Path(tmp) / "score.xml"
        path.write_text(xml, encoding="utf-8")
        engine.setAlpha(alpha)
        with _QuietStderr():
            loaded = engine.loadScoreFromMusicXML(str(path))
            try:
                if loaded:
                    wav, fs = engine.synthesize()
            finally:
                engine.clearScore()
        if not loaded:
            raise RuntimeError("sinsy could not read the generated MusicXML")
    y = _resample(np.asarray(wav, dtype=np.float64) / 32768.0, int(fs), sample_rate)
    out = np.zeros(int(round(seconds * sample_rate)))
    _place(out, y, -_MEASURE_TICKS / _TICKS_PER_S, sample_rate)  # drop the opening measure
    return out, {"voice": "sinsy:nitech_jp_song070_f001", "lyrics": lyrics, "sinsy_alpha": round(alpha, 4), "transpose_semitones": shifts}


# ----- festival -------------------------------------------------------------------------------
_FESTIVAL_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _festival_xml(notes: list[MelodyNote], words: list[str]) -> str:
    """Festival singing-mode XML. Festival's singing mode counts 50 beats a minute per BPM unit
    (``singing_bps = BPM / 50``), so BPM=50 makes a beat one second; its octave numbers are one
    higher than MIDI's scientific ones (its A5 is 440 Hz)."""
    parts = ['<?xml version="1.0"?>\n<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING mark up//EN" "Singing.v0_1.dtd" []>\n<SINGING BPM="50">']
    pos = 0.0
    for note, word in zip(notes, words):
        if note.start - pos > 0.0005:
            parts.append(f'<REST BEATS="{note.start - pos:.4f}"></REST>')
        name = f"{_FESTIVAL_NAMES[note.pitch % 12]}{note.pitch // 12}"
        parts.append(f'<DURATION BEATS="{note.duration:.4f}"><PITCH NOTE="{name}">{word}</PITCH></DURATION>')
        pos = note.end
    parts.append("</SINGING>\n")
    return "\n".join(parts)


def _sing_festival(notes: list[MelodyNote], seconds: float, rng: np.random.Generator, sample_rate: int, work_dir: Path | None, style: _Style) -> tuple[np.ndarray, dict]:
    vocab = list(rng.choice(len(_WORDS), size=int(rng.integers(12, 40)), replace=False))
    words = [n.lyric.strip().lower() if n.lyric.strip().isalpha() else _WORDS[vocab[int(rng.integers(len(vocab)))]] for n in notes]
    with tempfile.TemporaryDirectory(prefix="nn-festival-", dir=work_dir) as tmp:
        song = Path(tmp) / "song.xml"
        wav = Path(tmp) / "song.wav"
        song.write_text(_festival_xml(notes, words))
        proc = subprocess.run(["text2wave", "-mode", "singing", str(song), "-o", str(wav)], cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"festival failed: {proc.stdout.strip().splitlines()[-1:] or proc.returncode}")
        audio, fs = _read_wav(wav)
    # WORLD: festival's flat monotone pitch becomes the sung contour; formants and breath vary
    pw = _pyworld()
    out = np.zeros(int(round(seconds * sample_rate)))
    hop = int(round(fs * _FRAME_S))
    for phrase in _group(notes, _PHRASE_GAP_S):
        a = max(0, int(round((phrase[0].start - 0.1) * fs)))
        b = min(len(audio), int(round((phrase[-1].end + 0.1) * fs)))
        a -= a % hop
        x = np.ascontiguousarray(audio[a:b])
        if len(x) < 4 * hop:
            continue
        f0, t = pw.dio(x, fs, f0_floor=60.0, f0_ceil=800.0, frame_period=_FRAME_MS)
        f0 = pw.stonemask(x, f0, t, fs)
        sp = pw.cheaptrick(x, f0, t, fs)
        ap = pw.d4c(x, f0, t, fs)
        sp = _formant_warp(sp, style.formant)
        if style.breathiness > 0:
            tilt = np.sqrt(np.linspace(0.0, 1.0, sp.shape[1]))
            ap = 1.0 - (1.0 - ap) * (1.0 - style.breathiness * tilt)
        sung = _sung_f0(phrase, a / fs, len(f0), style, rng)
        f0 = np.where(f0 > 0, sung, 0.0)
        y = pw.synthesize(np.ascontiguousarray(f0), np.ascontiguousarray(sp), np.ascontiguousarray(np.clip(ap, 0.0, 1.0)), fs, _FRAME_MS)
        y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)  # see _render_world_phrase
        gain_db = float(rng.uniform(-4.0, 3.0))
        _place(out, _resample(y, fs, sample_rate) * 10 ** (gain_db / 20), a / fs, sample_rate)
    return out, {"voice": "festival:kal_diphone", "lyrics": words}


# ----- the common finish ----------------------------------------------------------------------
def _finish(out: np.ndarray, notes: list[MelodyNote], rng: np.random.Generator, style: _Style, sample_rate: int) -> np.ndarray:
    """Breaths before some phrases, level, and a gate: exact zeros away from the phrases."""
    phrases = _group(notes, _PHRASE_GAP_S)
    sung = np.zeros(len(out), dtype=bool)
    for phrase in phrases:
        sung[int(phrase[0].start * sample_rate) : int(phrase[-1].end * sample_rate)] = True
    active = np.abs(out[sung]) if sung.any() else np.abs(out)
    rms = float(np.sqrt(np.mean(active**2))) if active.size else 0.0
    if rms > 1e-9:
        out *= 10 ** ((_TARGET_RMS_DB + rng.uniform(-3.0, 3.0)) / 20) / rms
    # breaths: short noise bursts just before a phrase, 26-34 dB under the voice
    level = 10 ** ((_TARGET_RMS_DB - rng.uniform(26.0, 34.0)) / 20)
    for i, phrase in enumerate(phrases):
        room = phrase[0].start - (phrases[i - 1][-1].end if i else 0.0)
        if room > 0.5 and rng.random() < style.breath_prob:
            length = float(rng.uniform(0.15, 0.3))
            n = int(length * sample_rate)
            _place(out, level * (1 + style.breathiness) * _breath_noise(n, sample_rate, rng), phrase[0].start - length - 0.04, sample_rate)
    gate = np.zeros(len(out))
    for phrase in phrases:
        a = max(0, int((phrase[0].start - _PRE_S) * sample_rate))
        b = min(len(out), int((phrase[-1].end + _POST_S) * sample_rate))
        gate[a:b] = 1.0
    gate = _smooth(gate, int(0.02 * sample_rate))
    out *= gate
    peak = float(np.max(np.abs(out), initial=0.0))
    if peak > 0.95:
        out *= 0.95 / peak
    return out


def sing(
    melody: list[MelodyNote],
    seconds: float,
    method: str,
    rng: np.random.Generator,
    split: str,
    sample_rate: int = 44100,
    work_dir: Path | None = None,
) -> Vocal:
    """Sing ``melody`` with ``method``: a mono vocal of exactly ``round(seconds * sample_rate)``
    frames, aligned with the notes' onsets (seconds).

    Args:
        melody: the notes (seconds, MIDI pitches, optional lyrics); notes outside
            ``[0, seconds)`` are dropped, overlaps trimmed.
        seconds: length of the vocal, seconds.
        method: one of :data:`VOCAL_METHODS`.
        rng: all randomness (voice, words, vibrato, formant shift, breathiness, levels) comes
            from it; the same state gives the same audio.
        split: "train", "valid" or "test": klettres uses only recordings of this split.
        sample_rate: output rate, Hz.
        work_dir: a folder for temporary files and a cache of WORLD analyses shared between
            processes (None: system temp, memory cache only).

    Raises:
        UserError: the method's tool is not installed (one line saying how to install it).
    """
    if method not in VOCAL_METHODS:
        raise ValueError(f"method must be one of {', '.join(VOCAL_METHODS)}, got {method!r}")
    missing = _tool_missing(method)
    if missing:
        raise UserError(f"{missing} {_INSTALL_HINT}")
    if work_dir is not None:
        work_dir = Path(work_dir).resolve()  # festival runs in its own folder: relative paths break
        work_dir.mkdir(parents=True, exist_ok=True)
    n_out = int(round(seconds * sample_rate))
    notes = _clean_melody(melody, seconds)
    style = _Style.draw(rng)
    meta: dict = {"method": method}
    if not notes:
        audio = np.zeros(n_out)
        meta.update(voice=None, lyrics=[])
    elif method == "sinsy":
        audio, extra = _sing_sinsy(notes, seconds, rng, sample_rate, work_dir, style)
        meta.update(extra)
    elif method == "festival":
        audio, extra = _sing_festival(notes, seconds, rng, sample_rate, work_dir, style)
        meta.update(extra)
    else:
        audio, extra = _sing_world(notes, seconds, method, rng, split, sample_rate, work_dir, style)
        meta.update(extra)
    if notes:
        audio = _finish(audio[:n_out], notes, rng, style, sample_rate)
    audio = fit_length(np.asarray(audio[:n_out], dtype=np.float32), n_out)
    sources = meta.pop("sources", None) or [dict(s) for s in _SOURCES[method]]
    if method not in ("sinsy",):
        sources.append(dict(_WORLD_SOURCE))
    meta.setdefault("transpose_semitones", 0)
    meta.update(
        formant_shift=round(style.formant, 4) if method != "sinsy" else None,
        breathiness=round(style.breathiness, 4) if method != "sinsy" else None,
        vibrato={"hz": round(style.vibrato_hz, 3), "cents": round(style.vibrato_cents, 2)} if method != "sinsy" else None,
        notes=len(notes),
        sources=sources,
    )
    return Vocal(audio=audio, meta=meta)


# ----- melodies without a score ---------------------------------------------------------------
_SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "major-pentatonic": (0, 2, 4, 7, 9),
    "minor-pentatonic": (0, 3, 5, 7, 10),
}


def random_melody(seconds: float, rng: np.random.Generator, low: int = 52, high: int = 76) -> list[MelodyNote]:
    """A plausible singable melody for a track of ``seconds`` seconds.

    Phrases of notes (2-4 bars of 4/4 at 70-150 BPM, durations on half-beats, phrase-final
    notes held longer) separated by rests, mostly stepwise in a random key and scale, pitches in
    ``[low, high]`` (MIDI). About 50-80 % of the time is sung. Notes are sorted, do not
    overlap, and lie inside ``[0, seconds]``; lyrics are empty (a voice picks them).
    """
    if high - low < 5:
        raise ValueError(f"the range {low}..{high} is too narrow for a melody")
    beat = 60.0 / float(rng.uniform(70.0, 150.0))
    tonic = int(rng.integers(12))
    scale = _SCALES[list(_SCALES)[int(rng.integers(len(_SCALES)))]]
    pitches = [p for p in range(low, high + 1) if (p - tonic) % 12 in scale]
    centre = (low + high) / 2.0
    idx = int(np.argmin([abs(p - centre - rng.normal(0, 2)) for p in pitches]))
    sung_fraction = float(rng.uniform(0.5, 0.8))
    steps = np.array([-4, -3, -2, -1, 0, 1, 2, 3, 4])  # scale degrees
    step_p = np.array([0.02, 0.04, 0.1, 0.3, 0.1, 0.3, 0.1, 0.03, 0.01])
    notes: list[MelodyNote] = []
    t = float(rng.integers(0, 5)) * beat / 2.0
    while t < seconds - 0.3:
        phrase_beats = 4.0 * int(rng.integers(1, 4)) * float(rng.uniform(0.6, 1.0)) + 2.0
        pos = 0.0
        while pos < phrase_beats:
            last = pos + 2.0 >= phrase_beats
            length = float(rng.choice([2.0, 3.0, 4.0])) if last else float(rng.choice([0.5, 1.0, 1.5, 2.0], p=[0.3, 0.4, 0.15, 0.15]))
            start = t + pos * beat
            dur = length * beat * (float(rng.uniform(0.75, 0.95)) if rng.random() < 0.15 else 0.98)
            end = min(start + dur, seconds - 0.05)
            if end - start < 0.1:
                break
            notes.append(MelodyNote(round(start, 4), round(end - start, 4), int(pitches[idx])))
            pos += length
            # a step in the scale, pulled back towards the centre near the edges
            pull = (centre - pitches[idx]) / max(1.0, (high - low) / 2.0)
            p = step_p * np.exp(1.5 * pull * np.sign(steps))
            idx = int(np.clip(idx + rng.choice(steps, p=p / p.sum()), 0, len(pitches) - 1))
            if last:
                break
        sung = pos * beat
        rest_beats = max(1.0, round(2.0 * sung * (1.0 - sung_fraction) / sung_fraction / beat * float(rng.uniform(0.6, 1.4))) / 2.0)
        t += sung + rest_beats * beat
    return notes
