"""Classification clips: labelled music / speech / noise / silence, 16 kHz mono, from allowed sources.

A build is planned up front (:func:`plan_classification`) as a list of :class:`~.build.Job` s,
one per clip, each carrying in ``params`` the label and exactly which source(s) or generator to
use; :func:`make_clip` renders one job (all randomness from ``job.rng()``), so any clip can be
remade from its job alone, in any worker, in any order. The lead's CLI runs::

    jobs = plan_classification(hours, seed)
    run_jobs(jobs, functools.partial(make_clip, out_root=out), functools.partial(exists, out_root=out), workers)
    write_manifest(out, "classification", {...})

Sources (``shared/DATA.md`` only):

- music: real recordings from Debian ``warzone2100-music``, ``wesnoth-1.16-music``,
  ``frozen-bubble-data`` (its music tracks only), ``extremetuxracer-data``,
  ``fretsonfire-songs-sectoid`` (``song.ogg`` + ``guitar.ogg``) and PyPI
  ``immich-memories-music``: a random excerpt (seeking, no full decode), random gain;
- speech: TTS (``espeak-ng`` languages x voice variants, ``flite`` voices, ``festival``
  kal_diphone) of generated English sentences and real voices (``klettres-data``), trimmed and
  concatenated with short pauses to fill the clip, random gain, sometimes light noise or reverb;
- noise: the generators of :mod:`.noise` (white, pink, brown, hum, fan, rain, babble of TTS and
  klettres voices, tonal and rhythmic machinery: engines, generators, pumps, drones, clatter;
  mixtures), ``sonic-pi-samples`` ambience, sometimes with a
  ``sound-theme-freedesktop`` effect on top;
- silence: digital zero and white or pink floors at -90..-60 dBFS RMS.

Splits are by source (:func:`~.splits.split_of`): a recording, a klettres clip, a TTS voice +
sentence, an ambience sample or a synthetic generator instance is in exactly one split, and every
source of a clip (the voices of a babble, the utterances of a speech clip) is in the clip's split.

Levels (RMS, dBFS, 0 dBFS = RMS 1.0): music and speech -42..-14, noise -50..-15, silence
<= -60, so a level threshold alone never mislabels a clip (a 10 dB gap between silence and the
rest). Each clip's JSON records ``sources`` (``kind``, ``id``, ``package``, ``licence``), the
``generator`` settings, the ``gain_db`` applied and its final ``rms_dbfs``.

:func:`make_fixture_clips` writes a tiny labelled set in seconds with numpy synthesis only
(no external packages), for tests.
"""

from __future__ import annotations

import functools
import io
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from noisyneuron.audio.resampling import resample
from noisyneuron.errors import UserError
from noisyneuron.datasets import noise as nz
from noisyneuron.datasets.build import Job, job_seed
from noisyneuron.datasets.layout import CLASSES, CLASSIFICATION_RATE, clip_exists, write_classification_clip, write_manifest
from noisyneuron.datasets.sources import (
    CURATED_LICENCES,
    debian_licence,
    fretsonfire_songs,
    game_music_recordings,
    music_recordings,
    recording_licence,
    sfx_recordings,
)
from noisyneuron.datasets.splits import PACKAGE_SPLITS, SPLIT_OVERRIDES, SPLITS, split_at, split_of

__all__ = [
    "LABEL_CYCLE",
    "MUSIC_RMS_DBFS",
    "SPEECH_RMS_DBFS",
    "NOISE_RMS_DBFS",
    "SILENCE_MAX_DBFS",
    "plan_classification",
    "make_clip",
    "exists",
    "make_fixture_clips",
    "music_sources",
    "klettres_files",
    "tts_voices",
    "render_tts",
    "sentence_text",
    "debian_licence",
    "synth_music",
]

SR = CLASSIFICATION_RATE
#: Labels in plan order, repeated: 4 music, 4 speech, 4 noise, 3 silence per 15 clips.
LABEL_CYCLE = ("music", "speech", "noise", "silence") * 3 + ("music", "speech", "noise")
#: RMS range of music clips, dBFS.
MUSIC_RMS_DBFS = (-42.0, -14.0)
#: RMS range of speech clips, dBFS.
SPEECH_RMS_DBFS = (-42.0, -14.0)
#: RMS range of noise clips, dBFS.
NOISE_RMS_DBFS = (-50.0, -15.0)
#: Loudest silence clip, RMS dBFS (floors are -90..-60).
SILENCE_MAX_DBFS = -60.0
_PEAK_MAX = 0.99
_TEXT_IDS = 5000  # sentences per voice

def _source(kind: str, source_id: str, package: str, path: str = "", **extra) -> dict:
    licence = CURATED_LICENCES[package] if package in ("noisyneuron", "immich-memories-music") else debian_licence(package, path)
    return {"kind": kind, "id": source_id, "package": package, "licence": licence, **extra}


# ----- music ------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _audio_info(path: str) -> tuple[int, int]:
    """(frames, sample rate) of a file, cached per process."""
    info = sf.info(path)
    return int(info.frames), int(info.samplerate)


@functools.lru_cache(maxsize=1)
def music_sources() -> tuple[dict, ...]:
    """Every installed music recording, sorted by id: dicts with ``id``, ``package``, ``paths``.

    The same recordings and ids as the separation builder (:mod:`.sources`), so a recording is
    in one split everywhere. ``paths`` has one file, or two for a Frets on Fire song
    (``guitar.ogg`` + ``song.ogg``, summed).
    """
    recs = list(music_recordings()) + list(fretsonfire_songs())
    return tuple(sorted(({"id": r.id, "package": r.package, "paths": list(r.paths)} for r in recs), key=lambda s: s["id"]))


def _read_excerpt(paths: list[str], start_seconds: float, seconds: float) -> np.ndarray:
    """``seconds`` of the sum of ``paths`` (mono) from ``start_seconds``, at 16 kHz; seeks, no full decode."""
    n_out = int(round(seconds * SR))
    total = np.zeros(n_out)
    for path in paths:
        frames, sr = _audio_info(path)
        with sf.SoundFile(path) as f:
            start = min(int(start_seconds * sr), max(0, frames - 1))
            f.seek(start)
            x = f.read(int(math.ceil(seconds * sr)) + 16, dtype="float64", always_2d=True).mean(axis=1)
        x = resample(x, sr, SR)[:n_out]
        total[: len(x)] += x
    return total


def _active_fraction(x: np.ndarray, rel_db: float = 35.0, abs_db: float = -60.0) -> float:
    """Fraction of 50 ms frames within ``rel_db`` of the loudest frame and above ``abs_db`` dBFS."""
    m = int(0.05 * SR)
    k = len(x) // m
    if k == 0:
        return 0.0
    e = 10 * np.log10(np.mean(x[: k * m].reshape(k, m) ** 2, axis=1) + 1e-20)
    return float(np.mean((e > e.max() - rel_db) & (e > abs_db)))


def _music_excerpt(rng: np.random.Generator, source: dict, seconds: float) -> tuple[np.ndarray, float]:
    """A random excerpt of a recording, avoiding silent passages: (audio, offset in s)."""
    frames, sr = _audio_info(source["paths"][0])
    length = frames / sr
    best, best_start, best_frac = None, 0.0, -1.0
    for _ in range(8):
        start = float(rng.uniform(0.0, max(0.0, length - seconds - 0.05)))
        x = _read_excerpt(source["paths"], start, seconds)
        frac = _active_fraction(x)
        if frac > best_frac:
            best, best_start, best_frac = x, start, frac
        if frac >= 0.9:
            break
    return best, best_start


# ----- speech -----------------------------------------------------------------------------------
_KLETTRES = Path("/usr/share/klettres")


@functools.lru_cache(maxsize=1)
def klettres_files() -> tuple[str, ...]:
    """Every klettres-data voice clip, as paths relative to /usr/share/klettres, sorted."""
    if not _KLETTRES.is_dir():
        return ()
    return tuple(sorted(str(p.relative_to(_KLETTRES)) for p in _KLETTRES.glob("*/*/*.ogg")))


@functools.lru_cache(maxsize=1)
def real_voices() -> tuple:
    """The installed real speaking voices (:func:`~.voices.all_voice_sources`, kind ``speech``):
    Tux Paint's and klettres' readers per language, festvox-ru's speaker. Each is one speaker
    (or one group that cannot be told apart), in one split by its id."""
    from noisyneuron.datasets.voices import all_voice_sources

    return tuple(v for v in all_voice_sources() if v.kind == "speech")


_ESPEAK_LANGS_EN = ("en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan", "en-us-nyc")
_ESPEAK_LANGS_OTHER = ("de", "fr-fr", "es", "it", "nl", "pt", "sv", "pl", "cs", "hu", "fi", "da")
_ESPEAK_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3",
    "croak", "Alex", "Andy", "Annie", "Diogo", "Gene", "Linda", "Michael", "Steph", "grandma", "grandpa",
    "john", "max", "paul", "robert", "travis", "victor", "anika", "edward", "lee", "mario", "pablo",
)
_FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
_FESTIVAL_VOICES = ("kal_diphone",)


@functools.lru_cache(maxsize=1)
def tts_voices() -> dict[str, tuple[str, ...]]:
    """Installed TTS voices by engine (``espeak-ng``, ``flite``, ``festival``); engines not installed are absent."""
    out: dict[str, tuple[str, ...]] = {}
    if shutil.which("espeak-ng"):
        try:
            listing = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True, timeout=30).stdout
            langs = {line.split()[1] for line in listing.splitlines()[1:] if len(line.split()) > 1}
        except (OSError, subprocess.SubprocessError):
            langs = set()
        # English text: English voices twice as often as the accented others
        chosen = [lang for lang in _ESPEAK_LANGS_EN if lang in langs] * 2 + [lang for lang in _ESPEAK_LANGS_OTHER if lang in langs]
        out["espeak-ng"] = tuple(f"{lang}+{v}" for lang in chosen for v in _ESPEAK_VARIANTS)
    if shutil.which("flite"):
        out["flite"] = _FLITE_VOICES
    if shutil.which("text2wave") and Path("/usr/share/festival/voices/english/kal_diphone").is_dir():
        out["festival"] = _FESTIVAL_VOICES
    return out


_SUBJ = ("the old man", "my sister", "a small dog", "the teacher", "our neighbours", "the children", "she", "he",
         "they", "the driver", "a tall woman", "the captain", "my friend", "the farmer", "the doctor", "nobody",
         "the young girl", "his brother", "the manager", "a stranger", "the baker", "everyone", "the pilot", "we")
_VERB = ("carried", "painted", "found", "opened", "watched", "bought", "cleaned", "dropped", "followed", "fixed",
         "sold", "borrowed", "noticed", "packed", "counted", "moved", "hid", "described", "wrapped", "forgot",
         "repaired", "measured", "delivered", "photographed", "returned", "ordered")
_OBJ = ("a heavy box", "the red door", "three apples", "the broken clock", "a letter from home", "the blue boat",
        "an old map", "the kitchen window", "a bag of rice", "the garden gate", "two tickets", "a warm coat",
        "the wooden chair", "a bottle of milk", "the evening paper", "a basket of eggs", "the silver key",
        "a cup of tea", "the last train", "a long rope", "the yellow bicycle", "a pile of books")
_ADV = ("in the morning", "after lunch", "near the station", "without a word", "before the rain started",
        "at the end of the street", "on Sunday", "very slowly", "with great care", "in a hurry", "last winter",
        "behind the house", "for the first time", "during the storm", "twice a week", "under the bridge")
_OPEN = ("Well,", "Actually,", "You know,", "Listen,", "By the way,", "Honestly,", "So,", "Of course,")


def sentence_text(text_id: int) -> str:
    """The English sentence number ``text_id`` (a deterministic generator: grammar + vocabulary)."""
    r = np.random.default_rng([int(text_id), 7331])
    p = lambda seq: seq[int(r.integers(len(seq)))]  # noqa: E731
    form = int(r.integers(7))
    if form == 0:
        s = f"{p(_SUBJ)} {p(_VERB)} {p(_OBJ)} {p(_ADV)}."
    elif form == 1:
        s = f"{p(_OPEN)} {p(_SUBJ)} {p(_VERB)} {p(_OBJ)}."
    elif form == 2:
        s = f"Did {p(_SUBJ)} really say that {p(_SUBJ)} {p(_VERB)} {p(_OBJ)}?"
    elif form == 3:
        s = f"When {p(_SUBJ)} {p(_VERB)} {p(_OBJ)}, {p(_SUBJ)} {p(_VERB)} {p(_OBJ)} {p(_ADV)}."
    elif form == 4:
        s = f"It costs {int(r.integers(2, 99))} dollars and {int(r.integers(1, 99))} cents, said {p(_SUBJ)}."
    elif form == 5:
        s = f"{p(_SUBJ)} {p(_VERB)} {p(_OBJ)} and {p(_OBJ)}, then left {p(_ADV)}."
    else:
        s = f"Why would {p(_SUBJ)} want {p(_OBJ)} {p(_ADV)}?"
    return s[0].upper() + s[1:]


_TTS_CACHE: dict[tuple, np.ndarray] = {}
_TTS_CACHE_MAX = 2000


def render_tts(engine: str, voice: str, text: str, rate: float = 1.0, pitch: int = 50) -> np.ndarray:
    """``text`` spoken by a TTS ``engine``/``voice``: float64 mono at 16 kHz, cached per process.

    Args:
        engine: "espeak-ng", "flite" or "festival" (``text2wave``).
        voice: the engine's voice (espeak-ng: ``lang+variant``).
        rate: speaking rate relative to the engine's default (1.2 = 20 % faster).
        pitch: espeak-ng's pitch, 0..99 (ignored by the others).

    Raises ``RuntimeError`` (one line) if the engine fails or is missing.
    """
    key = (engine, voice, text, round(float(rate), 4), int(pitch))
    hit = _TTS_CACHE.get(key)
    if hit is not None:
        return hit
    try:
        if engine == "espeak-ng":
            out = subprocess.run(["espeak-ng", "--stdout", "-v", voice, "-s", str(int(round(175 * rate))), "-p", str(int(pitch)), "--", text], capture_output=True, timeout=60, check=True).stdout
            audio, sr = sf.read(io.BytesIO(out), dtype="float64", always_2d=True)
        else:
            with tempfile.TemporaryDirectory(prefix="nn-tts-") as tmp:
                wav = os.path.join(tmp, "out.wav")
                if engine == "flite":
                    subprocess.run(["flite", "-voice", voice, "--setf", f"duration_stretch={1.0 / rate:.4f}", "-t", text, "-o", wav], capture_output=True, timeout=60, check=True)
                elif engine == "festival":
                    cmd = ["text2wave", "-o", wav, "-eval", f"(voice_{voice})", "-eval", f"(Parameter.set 'Duration_Stretch {1.0 / rate:.4f})"]
                    subprocess.run(cmd, input=text.encode(), capture_output=True, timeout=120, check=True)
                else:
                    raise RuntimeError(f"unknown TTS engine {engine!r}")
                audio, sr = sf.read(wav, dtype="float64", always_2d=True)
    except (OSError, subprocess.SubprocessError, sf.LibsndfileError) as e:
        raise RuntimeError(f"TTS {engine} {voice} failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    mono = audio.mean(axis=1)
    mono = resample(mono, sr, SR)
    if len(_TTS_CACHE) >= _TTS_CACHE_MAX:
        _TTS_CACHE.clear()
    _TTS_CACHE[key] = mono
    return mono


def _trim(x: np.ndarray, rel_db: float = 30.0, margin: float = 0.03, max_gap: float = 0.25) -> np.ndarray:
    """``x`` without near-silence (10 ms frames ``rel_db`` dB below the loudest) at its ends, and
    with inner near-silent stretches longer than ``max_gap`` seconds shortened to ``max_gap``.

    Klettres clips carry up to 1.5 s of recording hiss around a short syllable; TTS output has
    long silences after punctuation.
    """
    m = int(0.01 * SR)
    k = len(x) // m
    if k == 0:
        return x
    e = 10 * np.log10(np.mean(x[: k * m].reshape(k, m) ** 2, axis=1) + 1e-20)
    loud = e > e.max() - rel_db
    on = np.flatnonzero(loud)
    if on.size == 0:
        return x[:0]
    keep = np.zeros(k, dtype=bool)
    keep[on[0] : on[-1] + 1] = True
    gap_frames = int(max_gap / 0.01)
    run = 0
    for i in range(on[0], on[-1] + 1):  # drop the middle of long quiet runs
        run = 0 if loud[i] else run + 1
        if run > gap_frames:
            keep[i - gap_frames // 2] = False
    pad = int(margin / 0.01)
    first, last = on[0], on[-1]
    pieces = [x[max(0, (first - pad) * m) : first * m]]
    idx = np.flatnonzero(keep)
    pieces.append(x[: k * m].reshape(k, m)[idx].reshape(-1))
    pieces.append(x[(last + 1) * m : min(len(x), (last + 1 + pad) * m)])
    return np.concatenate(pieces)


def _utterance_id(spec: dict) -> str:
    """The split unit of an utterance: the speaker of a real voice, the voice + sentence of TTS."""
    if spec["kind"] == "voice":
        return spec["speaker"]
    return f"tts:{spec['engine']}:{spec['voice']}:{spec['text_id']}"


def _utterance_source(spec: dict) -> dict:
    if spec["kind"] == "voice":
        package = spec["speaker"].split(":", 1)[0]
        return {"kind": "recording", "id": f"{spec['speaker']}/{Path(spec['path']).name}", "speaker": spec["speaker"], "package": package,
                "licence": debian_licence(package, spec["path"])}
    pkg = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "festvox-kallpc16k"}[spec["engine"]]
    return _source("tts", _utterance_id(spec), pkg, text=sentence_text(spec["text_id"]))


def _render_utterance(spec: dict) -> np.ndarray:
    if spec["kind"] == "voice":
        x = nz.load_audio_mono(spec["path"], SR)
    else:
        x = render_tts(spec["engine"], spec["voice"], sentence_text(spec["text_id"]), spec.get("rate", 1.0), spec.get("pitch", 50))
    x = _trim(x)
    return nz.set_rms_dbfs(x, -20.0) if len(x) else x


def _speech_stream(rng: np.random.Generator, specs: list[dict], seconds: float) -> tuple[np.ndarray, list[dict]]:
    """Utterances of ``specs`` in order (cycled if short), level-matched +-3 dB, 0.08-0.4 s pauses.

    Returns (``seconds`` of audio from a random start within the first 0.5 s, specs used).
    """
    n = int(round(seconds * SR))
    slack = int(rng.uniform(0.0, 0.5) * SR)
    parts: list[np.ndarray] = []
    used: list[dict] = []
    total, i = 0, 0
    while total < n + slack and i < 8 * len(specs):
        spec = specs[i % len(specs)]
        i += 1
        x = _render_utterance(spec)
        if not len(x):
            continue
        x = x * 10 ** (rng.uniform(-3, 3) / 20)
        pause = np.zeros(int(rng.uniform(0.08, 0.4) * SR))
        parts += [x, pause]
        total += len(x) + len(pause)
        if spec not in used:
            used.append(spec)
    if not parts:
        raise RuntimeError("no speech could be rendered for this clip")
    stream = np.concatenate(parts)
    if len(stream) < n + slack:
        stream = np.concatenate([stream, np.zeros(n + slack - len(stream))])
    return stream[slack : slack + n], used


# ----- ambience ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _ambience() -> tuple[tuple[str, ...], tuple[str, ...]]:
    files = nz.ambience_files()
    known = lambda pkg, p: not debian_licence(pkg, str(p)).startswith("unknown")  # noqa: E731 - no licence, no use
    return (
        tuple(str(p) for p in files["sonic-pi-samples"] if known("sonic-pi-samples", p)),
        tuple(str(p) for p in files["sound-theme-freedesktop"] if known("sound-theme-freedesktop", p)),
    )


def _ambience_id(path: str) -> str:
    pkg = "sonic-pi-samples" if "sonic-pi" in path else "sound-theme-freedesktop"
    return f"ambience:{pkg}:{Path(path).name}"


def _ambience_source(path: str) -> dict:
    pkg = "sonic-pi-samples" if "sonic-pi" in path else "sound-theme-freedesktop"
    return _source("ambience", _ambience_id(path), pkg, path)


# ----- splits of real packages ------------------------------------------------------------------
def package_split(package: str) -> str:
    """The split of every real recording of ``package`` in the classification set: the package's
    held-out split (:data:`~.splits.PACKAGE_SPLITS`), else train. A package is in one split, whole,
    so the held-out figure measures packages training never heard. (Real voices are split by
    speaker instead, :func:`real_voices`.)"""
    return PACKAGE_SPLITS.get(package, "train")


def _recording_split(source_id: str, package: str) -> str | None:
    """A real recording's split here; None for one pinned (:data:`~.splits.SPLIT_OVERRIDES`) to
    another split than its package's (two Frets on Fire songs: left out, the package stays whole)."""
    split = package_split(package)
    pinned = SPLIT_OVERRIDES.get(source_id)
    return None if pinned is not None and pinned != split else split


#: Share of train / valid / test among the clips drawn from real packages and speakers.
def _draw_split(rng: np.random.Generator) -> str:
    return split_at(float(rng.random()))


def _pick_grouped(rng: np.random.Generator, groups: dict[str, list], split: str, splits_of: dict[str, str]) -> tuple[str, object] | None:
    """A group (package or speaker) of ``split``, weighted by the square root of its size, then one of its items."""
    names = sorted(g for g in groups if splits_of[g] == split and groups[g])
    if not names:
        return None
    w = np.sqrt([len(groups[g]) for g in names])
    g = names[int(rng.choice(len(names), p=w / w.sum()))]
    return g, groups[g][int(rng.integers(len(groups[g])))]


def _available_split(rng: np.random.Generator, splits_of: dict[str, str]) -> str | None:
    """A split drawn 80/10/10 among those that have a group; None when none has."""
    have = set(splits_of.values())
    if not have:
        return None
    for _ in range(100):
        split = _draw_split(rng)
        if split in have:
            return split
    return sorted(have)[0]  # pragma: no cover - only when a split has no group at all


# ----- planning ---------------------------------------------------------------------------------
def _by_split(ids: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    for k, i in enumerate(ids):
        out[split_of(i)].append(k)
    return out


class _Catalogue:
    """What is installed, with each source's split, for planning (built once per plan)."""

    def __init__(self) -> None:
        # music: every real recording, by package (each package in one split)
        self.music: dict[str, list[dict]] = {}
        recs = [{"id": m["id"], "package": m["package"], "paths": m["paths"]} for m in music_sources()]
        recs += [{"id": r.id, "package": r.package, "paths": list(r.paths)} for r in game_music_recordings()]
        for rec in recs:
            if _recording_split(rec["id"], rec["package"]) is not None:
                self.music.setdefault(rec["package"], []).append(rec)
        self.music_splits = {p: package_split(p) for p in self.music}
        # real voices, by speaker
        self.speakers = {v.id: list(v.clips) for v in real_voices()}
        self.speaker_splits = {v.id: v.split for v in real_voices()}
        # real sound effects and ambiences, by package; loops (>= 2 s) and one-shots
        self.sfx: dict[str, list[dict]] = {}
        for r in sfx_recordings():
            self.sfx.setdefault(r.package, []).append({"id": r.id, "path": r.paths[0], "seconds": round(r.seconds, 3)})
        self.sfx_splits = {p: package_split(p) for p in self.sfx}
        self.voices = tts_voices()
        ambi, effects = _ambience()  # sonic-pi-samples and sound-theme-freedesktop: train, whole
        self.ambience = list(ambi) if package_split("sonic-pi-samples") == "train" else []
        self.effects = list(effects) if package_split("sound-theme-freedesktop") == "train" else []

    def tts_spec(self, rng: np.random.Generator, split: str | None, engines: tuple[str, ...] | None = None) -> dict | None:
        weights = {"espeak-ng": 0.6, "flite": 0.3, "festival": 0.1}
        avail = [e for e in weights if e in self.voices and (engines is None or e in engines)]
        if not avail:
            return None
        p = np.array([weights[e] for e in avail])
        for _ in range(1000):
            engine = avail[int(rng.choice(len(avail), p=p / p.sum()))]
            voices = self.voices[engine]
            spec = {
                "kind": "tts",
                "engine": engine,
                "voice": voices[int(rng.integers(len(voices)))],
                "text_id": int(rng.integers(_TEXT_IDS)),
                "rate": round(float(rng.uniform(0.8, 1.25)), 3),
                "pitch": int(rng.integers(25, 75)),
            }
            if split is None or split_of(_utterance_id(spec)) == split:
                return spec
        return None  # pragma: no cover - vanishingly unlikely

    def speaker_of(self, rng: np.random.Generator, split: str) -> str | None:
        """A real speaker of ``split`` (weighted by the square root of their clip count)."""
        got = _pick_grouped(rng, self.speakers, split, self.speaker_splits)
        return got[0] if got else None

    def voice_spec(self, rng: np.random.Generator, speaker: str) -> dict:
        clips = self.speakers[speaker]
        return {"kind": "voice", "speaker": speaker, "path": clips[int(rng.integers(len(clips)))]}

    def any_voice_spec(self, rng: np.random.Generator, split: str) -> dict | None:
        speaker = self.speaker_of(rng, split)
        return self.voice_spec(rng, speaker) if speaker else None


def _pick(rng: np.random.Generator, by_split: dict[str, list[int]], split: str) -> int | None:
    pool = by_split[split]
    return pool[int(rng.integers(len(pool)))] if pool else None


def _plan_music(rng, cat: _Catalogue, seconds: float) -> tuple[str, dict]:
    split = _available_split(rng, cat.music_splits)
    package, src = _pick_grouped(rng, cat.music, split, cat.music_splits)
    return split, {"label": "music", "music": src["id"], "package": src["package"], "paths": src["paths"]}


#: Speech modes: TTS only (a generator), one real speaker, or TTS and a real speaker of one split.
_SPEECH_MODES = {"tts": 0.35, "real": 0.5, "mixed": 0.15}


def _plan_speech(rng, cat: _Catalogue, seconds: float) -> tuple[str, dict]:
    ok = {"tts": bool(cat.voices), "real": bool(cat.speakers), "mixed": bool(cat.voices) and bool(cat.speakers)}
    modes = [m for m in _SPEECH_MODES if ok[m]]
    p = np.array([_SPEECH_MODES[m] for m in modes])
    mode = modes[int(rng.choice(len(modes), p=p / p.sum()))]
    n_tts = int(math.ceil(seconds / 1.5)) + 2
    n_real = int(math.ceil(seconds / 0.6)) + 2
    if mode == "real":
        split = _available_split(rng, cat.speaker_splits)
        speaker = cat.speaker_of(rng, split)
        specs = [cat.voice_spec(rng, speaker) for _ in range(n_real)]
    else:
        first = cat.tts_spec(rng, None)
        split = split_of(_utterance_id(first))
        specs = [first] + [cat.tts_spec(rng, split) for _ in range(n_tts - 1)]
        speaker = cat.speaker_of(rng, split) if mode == "mixed" else None
        if mode == "mixed" and speaker is None:
            mode = "tts"
        if speaker is not None:
            mixed = []
            for k, spec in enumerate(specs):
                mixed += [spec, cat.voice_spec(rng, speaker), cat.voice_spec(rng, speaker)] if k % 2 == 0 else [spec]
            specs = mixed
    specs = [s for s in specs if s is not None]
    return split, {"label": "speech", "mode": mode, "utterances": specs}


# Tonal and rhythmic machinery (engine, generator, pump, drone, clatter) is a quarter of the
# generated noise: general-purpose taggers call it music.
_NOISE_PLAN_WEIGHTS = {
    "white": 0.05, "pink": 0.05, "brown": 0.05, "hum": 0.07, "fan": 0.1, "rain": 0.08, "babble": 0.09,
    "ambience": 0.12, "mixture": 0.1, "engine": 0.06, "generator": 0.05, "pump": 0.05, "drone": 0.05, "clatter": 0.06,
}
#: Share of the noise class drawn from real recorded effects and ambiences (the rest: generators).
REAL_NOISE_SHARE = 0.5
#: Real noise clips: a recording (looped when short), or a scene of one package's effects over one of its loops.
_SFX_LOOP_SECONDS = 2.0


def _plan_real_noise(rng, cat: _Catalogue, seconds: float, split: str | None = None) -> tuple[str, dict]:
    split = split or _available_split(rng, cat.sfx_splits)
    package, first = _pick_grouped(rng, cat.sfx, split, cat.sfx_splits)
    files = cat.sfx[package]
    loops = [f for f in files if f["seconds"] >= _SFX_LOOP_SECONDS]
    shots = [f for f in files if f["seconds"] < _SFX_LOOP_SECONDS]
    if rng.random() < 0.6 or not shots:  # one recording (a short one loops), sometimes with effects on top
        bed = loops[int(rng.integers(len(loops)))] if loops and rng.random() < 0.85 else first
        events = [shots[int(rng.integers(len(shots)))] for _ in range(int(rng.integers(0, 3)))] if shots and rng.random() < 0.3 else []
    else:  # a scene: several effects of the package over a quiet bed of it
        bed = loops[int(rng.integers(len(loops)))] if loops else None
        pool = shots + loops
        events = [pool[int(rng.integers(len(pool)))] for _ in range(int(rng.integers(2, 7)))]
    params = {"label": "noise", "noise": "recorded", "package": package,
              "bed": bed, "bed_db": round(float(rng.uniform(-20.0, -8.0)), 2) if bed is not None and events else 0.0,
              "events": events}
    return split, params


def _plan_noise(rng, cat: _Catalogue, seconds: float, tag: str) -> tuple[str, dict]:
    if cat.sfx and rng.random() < REAL_NOISE_SHARE:
        return _plan_real_noise(rng, cat, seconds)
    kinds = [k for k in _NOISE_PLAN_WEIGHTS if k != "ambience" or cat.ambience]
    p = np.array([_NOISE_PLAN_WEIGHTS[k] for k in kinds])
    kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
    params: dict = {"label": "noise", "noise": kind}
    if kind == "ambience":  # sonic-pi-samples: a package of train, whole
        path = cat.ambience[int(rng.integers(len(cat.ambience)))]
        params["ambience"] = path
        split = package_split("sonic-pi-samples")
    else:
        source_id = f"noise:{kind}:{tag}"
        params["generator_id"] = source_id
        split = split_of(source_id)
        if kind == "mixture":
            synth = ["white", "pink", "brown", "hum", "fan", "rain", "engine", "pump", "drone", "clatter"]
            params["parts"] = [synth[int(i)] for i in rng.choice(len(synth), size=int(rng.integers(2, 4)), replace=False)]
        if kind == "babble":
            talkers = int(rng.integers(4, 11))
            params["talkers"] = talkers
            snippets = []
            for _ in range(2 * talkers):
                spec = cat.tts_spec(rng, split, engines=("espeak-ng", "flite")) if (rng.random() < 0.7 or not cat.speakers) else cat.any_voice_spec(rng, split)
                if spec is None:
                    spec = cat.any_voice_spec(rng, split)
                if spec is not None:
                    snippets.append(spec)
            params["snippets"] = snippets
    if kind != "babble" and split == package_split("sound-theme-freedesktop") and cat.effects and rng.random() < 0.15:
        params["effect"] = cat.effects[int(rng.integers(len(cat.effects)))]
    return split, params


#: Mixture clips per clip of the plan (labelled speech: a real speaker over real music or noise).
MIXTURE_SHARE = 0.08
#: Level of the music under the speech (RMS, dB relative to the speech): music 10 dB below or less.
MIXTURE_MUSIC_DB = (-25.0, -10.0)
#: Speech-to-noise ratio of speech in noise, dB: 5 dB SNR or better.
MIXTURE_SNR_DB = (5.0, 20.0)


def _plan_mixture(rng, cat: _Catalogue, seconds: float) -> tuple[str, dict]:
    """Speech of one real speaker over real music or in real recorded noise, all of one split
    (in the test split: held-out speakers over held-out packages). Label speech."""
    over = "music" if (cat.music and (not cat.sfx or rng.random() < 0.5)) else "noise"
    groups = cat.music_splits if over == "music" else cat.sfx_splits
    both = {g: s for g, s in groups.items() if s in set(cat.speaker_splits.values())}
    split = _available_split(rng, both)
    speaker = cat.speaker_of(rng, split)
    specs = [cat.voice_spec(rng, speaker) for _ in range(int(math.ceil(seconds / 0.6)) + 2)]
    if over == "music":
        package, src = _pick_grouped(rng, cat.music, split, cat.music_splits)
        background = {"label": "music", "music": src["id"], "package": src["package"], "paths": src["paths"]}
        relative = float(rng.uniform(*MIXTURE_MUSIC_DB))
    else:
        background = _plan_real_noise(rng, cat, seconds, split)[1]
        relative = -float(rng.uniform(*MIXTURE_SNR_DB))
    return split, {"label": "speech", "mode": "mixture", "over": over, "utterances": specs, "background": background, "relative_db": round(relative, 2)}


def _plan_silence(rng, tag: str) -> tuple[str, dict]:
    kind = str(rng.choice(nz.SILENCE_KINDS, p=[0.3, 0.35, 0.35]))
    source_id = f"silence:{kind}:{tag}"
    return split_of(source_id), {"label": "silence", "silence": kind, "generator_id": source_id}


def plan_classification(hours: float, seed: int, seconds_per_clip: float = 4.0) -> list[Job]:
    """The jobs of a classification build: ``round(hours * 3600 / seconds_per_clip)`` clips.

    Deterministic in (``hours``, ``seed``, ``seconds_per_clip``) and the installed sources; a
    bigger build with the same seed starts with the same clips. Labels follow
    :data:`LABEL_CYCLE` (music, speech, noise 4/15 each, silence 3/15). Each job's split is its
    source's split; ``params`` say which sources/generator to use (see the module docstring).

    Args:
        hours: total audio, hours.
        seed: build seed.
        seconds_per_clip: clip length, seconds.

    Raises :class:`~noisyneuron.errors.UserError` when no music or no speech source is installed.
    """
    if hours <= 0 or seconds_per_clip <= 0:
        raise UserError(f"hours and seconds per clip must be positive, got {hours} and {seconds_per_clip}")
    cat = _Catalogue()
    if not cat.music:
        raise UserError("no music installed for the classification build; run scripts/install-data-tools.sh")
    if not cat.voices and not cat.speakers:
        raise UserError("no speech source (espeak-ng, flite, festival, klettres-data, tuxpaint-stamps-default) installed; run scripts/install-data-tools.sh")
    count = max(1, int(round(hours * 3600.0 / seconds_per_clip)))
    jobs = []
    for i in range(count):
        label = LABEL_CYCLE[i % len(LABEL_CYCLE)]
        rng = np.random.default_rng(job_seed(seed, "classification-plan", i))
        tag = f"{seed}:{i}"
        if label == "music":
            split, params = _plan_music(rng, cat, seconds_per_clip)
        elif label == "speech":
            split, params = _plan_speech(rng, cat, seconds_per_clip)
        elif label == "noise":
            split, params = _plan_noise(rng, cat, seconds_per_clip, tag)
        else:
            split, params = _plan_silence(rng, tag)
        item_id = f"{label}-{i:06d}"
        jobs.append(Job(split=split, item_id=item_id, seconds=float(seconds_per_clip), seed=job_seed(seed, "classification", item_id), params=params))
    # mixtures: a sequence of their own, so the clips above are those of a build without them
    if cat.speakers and (cat.music or cat.sfx):
        for i in range(int(round(count * MIXTURE_SHARE))):
            rng = np.random.default_rng(job_seed(seed, "classification-mixture-plan", i))
            split, params = _plan_mixture(rng, cat, seconds_per_clip)
            item_id = f"speech-mix-{i:06d}"
            jobs.append(Job(split=split, item_id=item_id, seconds=float(seconds_per_clip), seed=job_seed(seed, "classification", item_id), params=params))
    return jobs


# ----- rendering --------------------------------------------------------------------------------
def _level(x: np.ndarray, rng: np.random.Generator, lo_hi: tuple[float, float]) -> tuple[np.ndarray, float, float]:
    """``x`` at a random RMS in ``lo_hi`` dBFS, lowered if its peak would pass 0.99: (audio, gain dB, rms dBFS)."""
    target = float(rng.uniform(*lo_hi))
    current = nz.rms_dbfs(x)
    if not math.isfinite(current):
        return x, 0.0, current
    gain = 10 ** ((target - current) / 20.0)
    peak = float(np.max(np.abs(x))) * gain
    if peak > _PEAK_MAX:
        gain *= _PEAK_MAX / peak
    y = x * gain
    return y, round(20 * math.log10(gain), 3), round(nz.rms_dbfs(y), 3)


def _light_noise(rng: np.random.Generator, x: np.ndarray, snr_db: tuple[float, float]) -> tuple[np.ndarray, dict]:
    kind = str(rng.choice(["white", "pink", "brown", "hum", "fan"]))
    snr = float(rng.uniform(*snr_db))
    noise, settings = nz.random_noise(kind, rng, len(x) / SR, SR, nz.rms_dbfs(x) - snr)
    return x + noise[: len(x)], {"noise": settings, "snr_db": round(snr, 2)}


def _make_music(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    p = job.params
    src = {"id": p["music"], "package": p["package"], "paths": p["paths"]}
    x, start = _music_excerpt(rng, src, job.seconds)
    gen: dict = {"excerpt_start_s": round(start, 4)}
    if rng.random() < 0.1:
        x, gen["augment"] = _light_noise(rng, x, (20.0, 40.0))
    sources = [_source("recording", p["music"], p["package"], path) for path in p["paths"][:1]]
    return x, {"sources": sources, "generator": gen, "level_range_dbfs": list(MUSIC_RMS_DBFS)}


def _make_mixture(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Real speech over real music or in real noise, the background ``relative_db`` below the speech (RMS)."""
    p = job.params
    x, used = _speech_stream(rng, p["utterances"], job.seconds)
    sources = [_utterance_source(s) for s in used]
    bg = p["background"]
    if p["over"] == "music":
        y, start = _music_excerpt(rng, {"id": bg["music"], "package": bg["package"], "paths": bg["paths"]}, job.seconds)
        settings: dict = {"music": bg["music"], "excerpt_start_s": round(start, 4)}
        sources += [_source("recording", bg["music"], bg["package"], bg["paths"][0])]
    else:
        y, settings, more = _render_recorded(rng, bg, job.seconds)
        sources += more
    n = len(x)
    y = np.asarray(y, dtype=np.float64)[:n]
    if len(y) < n:
        y = np.concatenate([y, np.zeros(n - len(y))])
    speech_db = nz.rms_dbfs(x)
    if math.isfinite(nz.rms_dbfs(y)) and math.isfinite(speech_db):
        y = nz.set_rms_dbfs(y, speech_db + p["relative_db"])
    gen = {"mode": "mixture", "over": p["over"], "relative_db": p["relative_db"], "background": settings}
    return x + y, {"sources": sources, "generator": gen, "level_range_dbfs": list(SPEECH_RMS_DBFS)}


def _make_speech(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    if job.params["mode"] == "mixture":
        return _make_mixture(job, rng)
    x, used = _speech_stream(rng, job.params["utterances"], job.seconds)
    gen: dict = {"mode": job.params["mode"]}
    if rng.random() < 0.25:
        rt60 = float(rng.uniform(0.15, 0.7))
        wet = float(rng.uniform(0.1, 0.4))
        x = nz.apply_reverb(x, nz.room_impulse_response(rng, SR, rt60), wet)
        gen["reverb"] = {"rt60_s": round(rt60, 3), "wet": round(wet, 3), "ir": "synthetic"}
    if rng.random() < 0.25:
        x, gen["augment"] = _light_noise(rng, x, (15.0, 35.0))
    else:  # a room tone: speech pauses are never digital zero
        snr = float(rng.uniform(40.0, 60.0))
        colour = str(rng.choice(["white", "pink"]))
        x = x + nz.noise_floor(rng, len(x) / SR, SR, nz.rms_dbfs(x) - snr, colour)
        gen["room_tone"] = {"colour": colour, "snr_db": round(snr, 2)}
    sources = [dict(_utterance_source(s), **({"voice": s["voice"], "rate": s["rate"], "pitch": s["pitch"]} if s["kind"] == "tts" else {})) for s in used]
    return x, {"sources": sources, "generator": gen, "level_range_dbfs": list(SPEECH_RMS_DBFS)}


def _render_noise(rng: np.random.Generator, params: dict, seconds: float) -> tuple[np.ndarray, dict, list[dict]]:
    kind = params["noise"]
    sources: list[dict] = []
    if kind == "recorded":
        x, gen, sources = _render_recorded(rng, params, seconds)
    elif kind == "ambience":
        x, gen = nz.ambience_excerpt(rng, params["ambience"], seconds, SR)
        gen = {"kind": "ambience", **gen}
        sources.append(_ambience_source(params["ambience"]))
        if nz.rms_dbfs(x) < -80:  # a quiet stretch of the sample: lift it with its own hiss floor
            x = x + nz.pink_noise(rng, seconds, SR, -80.0)
    elif kind == "mixture":
        parts = []
        settings = []
        for part in params["parts"]:
            y, s = nz.random_noise(part, rng, seconds, SR, float(rng.uniform(-40, -20)))
            parts.append(y)
            settings.append(s)
        x = np.sum(parts, axis=0)
        gen = {"kind": "mixture", "parts": settings}
    elif kind == "babble":
        snippets = []
        for spec in params.get("snippets", []):
            try:
                y = _render_utterance(spec)
            except RuntimeError:
                continue
            if len(y):
                snippets.append(y)
                sources.append(_utterance_source(spec))
        gen = {"kind": "babble", "talkers": params["talkers"]}
        if not snippets:
            gen["fallback"] = "formant-synthesised voices: no TTS engine or klettres-data available"
            snippets = [nz.formant_speech(rng, 3.0, SR) for _ in range(params["talkers"])]
        x = nz.babble(rng, seconds, SR, snippets, params["talkers"], -30.0)
    else:
        x, gen = nz.random_noise(kind, rng, seconds, SR, -30.0)
    if "generator_id" in params:
        sources.insert(0, _source("synthetic", params["generator_id"], "noisyneuron"))
    if params.get("effect"):
        fx = nz.load_audio_mono(params["effect"], SR)[: len(x)]
        if len(fx):
            at = int(rng.integers(0, max(1, len(x) - len(fx) + 1)))
            rel = float(rng.uniform(-15.0, 0.0))
            level = nz.rms_dbfs(x)
            fx = nz.set_rms_dbfs(fx, (level if math.isfinite(level) else -40.0) + rel)
            x = x.copy()
            x[at : at + len(fx)] += fx
            gen["effect"] = {"file": Path(params["effect"]).name, "at_s": round(at / SR, 4), "relative_db": round(rel, 2)}
            sources.append(_ambience_source(params["effect"]))
    return x, gen, sources


def _recording_source(item: dict, package: str) -> dict:
    return {"kind": "recording", "id": item["id"], "package": package, "licence": recording_licence(package, item["path"])}


def _render_recorded(rng: np.random.Generator, params: dict, seconds: float) -> tuple[np.ndarray, dict, list[dict]]:
    """A real noise clip: a recording of one package (a random excerpt; a short one loops with
    crossfades), and its effects placed at random times over it (the recording ``bed_db`` below them)."""
    package = params["package"]
    n = int(round(seconds * SR))
    sources: list[dict] = []
    gen: dict = {"kind": "recorded", "package": package}
    x = np.zeros(n)
    if params["bed"] is not None:
        bed, settings = nz.ambience_excerpt(rng, params["bed"]["path"], seconds, SR)
        x = nz.set_rms_dbfs(bed, -30.0 + params["bed_db"]) if math.isfinite(nz.rms_dbfs(bed)) else bed
        gen["bed"] = {"file": params["bed"]["id"], **settings, "relative_db": params["bed_db"]}
        sources.append(_recording_source(params["bed"], package))
    placed = []
    for item in params["events"]:
        fx = nz.load_audio_mono(item["path"], SR)[:n]
        if not len(fx) or not math.isfinite(nz.rms_dbfs(fx)):
            continue
        at = int(rng.integers(0, max(1, n - len(fx) // 2)))
        fx = nz.set_rms_dbfs(fx, -30.0 + float(rng.uniform(-6.0, 3.0)))[: n - at]
        x[at : at + len(fx)] += fx
        placed.append({"file": item["id"], "at_s": round(at / SR, 4)})
        if all(s["id"] != item["id"] for s in sources):
            sources.append(_recording_source(item, package))
    if placed:
        gen["events"] = placed
    if nz.rms_dbfs(x) < -80 or not sources:  # a quiet stretch: lift it with a hiss floor
        x = x + nz.pink_noise(rng, seconds, SR, -80.0)
    return x, gen, sources


def _make_noise(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    x, gen, sources = _render_noise(rng, job.params, job.seconds)
    return x, {"sources": sources, "generator": gen, "level_range_dbfs": list(NOISE_RMS_DBFS)}


def _make_silence(job: Job, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    x, gen = nz.random_silence(job.params["silence"], rng, job.seconds, SR)
    return x, {"sources": [_source("synthetic", job.params["generator_id"], "noisyneuron")], "generator": gen}


#: The builder version written into every clip (v3: real recorded noise, real speakers, game music,
#: every real package in one split).
BUILDER = "classification-v3"
#: Source kinds that are recorded sound (the rest: generators, TTS, synthesis).
REAL_KINDS = ("recording", "music", "klettres")  # "music", "klettres": the kinds of builder v2


def clip_origin(meta: dict) -> str:
    """``"real"`` when every source of a clip is a recording (real music, voices, effects: what the
    held-out-source figure is measured on), ``"mixture"`` for real speech over real music or noise
    (:data:`MIXTURE_SHARE`), else ``"synthetic"`` (a generator or a TTS voice is in it; silence is
    always synthetic). Clips of older builds are judged by their sources the same way."""
    if meta.get("origin") in ("real", "synthetic", "mixture"):
        return meta["origin"]
    if (meta.get("generator") or {}).get("mode") == "mixture":
        return "mixture"
    sources = meta.get("sources") or []
    real = bool(sources) and meta.get("label") != "silence" and all(s.get("kind") in REAL_KINDS for s in sources)
    return "real" if real else "synthetic"


def make_clip(job: Job, out_root: Path) -> None:
    """Render the clip of ``job`` (from :func:`plan_classification`) and write it under ``out_root``.

    16 kHz mono, 24-bit FLAC + JSON (:func:`~.layout.write_classification_clip`). All
    randomness comes from ``job.rng()``. A module-level function: picklable through
    ``functools.partial(make_clip, out_root=...)`` for worker processes.
    """
    rng = job.rng()
    label = job.params["label"]
    maker = {"music": _make_music, "speech": _make_speech, "noise": _make_noise, "silence": _make_silence}[label]
    x, meta = maker(job, rng)
    n = int(round(job.seconds * SR))
    x = np.asarray(x, dtype=np.float64)[:n]
    if len(x) < n:
        x = np.concatenate([x, np.zeros(n - len(x))])
    if label == "silence":
        gain_db, level = 0.0, round(nz.rms_dbfs(x), 3)
    else:
        lo_hi = {"music": MUSIC_RMS_DBFS, "speech": SPEECH_RMS_DBFS, "noise": NOISE_RMS_DBFS}[label]
        x, gain_db, level = _level(x, rng, lo_hi)
    meta.update(seed=job.seed, builder=BUILDER, origin=clip_origin({**meta, "label": label}), gain_db=gain_db, rms_dbfs=level if math.isfinite(level) else None)
    meta.pop("level_range_dbfs", None)
    write_classification_clip(out_root, job.split, label, job.item_id, x, meta)


def exists(job: Job, out_root: Path) -> bool:
    """Whether the clip of ``job`` is complete under ``out_root`` (a resumed build skips it)."""
    return clip_exists(out_root, job.split, job.params["label"], job.item_id)


# ----- fixture: numpy synthesis only ----------------------------------------------------------------
def synth_music(rng: np.random.Generator, seconds: float, sample_rate: int = SR) -> tuple[np.ndarray, dict]:
    """Synthetic music: a chord progression of plucked/pad chords, a melody and drums on a tempo.

    Returns (audio float64 mono, settings). Tempo 80-150 BPM; chords change each bar of 4
    beats; a plucked or sustained timbre (additive harmonics, decaying); melody notes on
    eighths or quarters; kick/snare/hi-hat with probability 0.7. RMS about -20 dBFS.
    """
    n = int(round(seconds * sample_rate))
    out = np.zeros(n)
    bpm = float(rng.uniform(80, 150))
    beat = 60.0 / bpm
    root = int(rng.integers(45, 58))
    major = (0, 2, 4, 5, 7, 9, 11)
    degrees = [0, 5, 3, 4] if rng.random() < 0.5 else [0, 3, 4, 0]
    timbre = str(rng.choice(["pluck", "pad"]))
    drums = bool(rng.random() < 0.7)
    harm = rng.uniform(0.2, 0.8, 8) ** np.arange(1, 9)

    def tone(freq: float, dur: float, amp: float, decay: float) -> np.ndarray:
        m = int(dur * sample_rate)
        t = np.arange(m) / sample_rate
        y = np.zeros(m)
        for h, a in enumerate(harm, start=1):
            if h * freq < 0.45 * sample_rate:
                y += a * np.sin(2 * np.pi * h * freq * t)
        env = np.exp(-t / decay) * np.minimum(1.0, t / 0.005) * np.minimum(1.0, (dur - t) / 0.02)
        return amp * y * env

    def put(y: np.ndarray, at: float) -> None:
        a = int(at * sample_rate)
        if a < n:
            b = min(n, a + len(y))
            out[a:b] += y[: b - a]

    hz = lambda midi: 440.0 * 2 ** ((midi - 69) / 12)  # noqa: E731
    t0 = -float(rng.uniform(0, 4 * beat))
    bar = 0
    while t0 + bar * 4 * beat < seconds:
        start = t0 + bar * 4 * beat
        d = degrees[bar % len(degrees)]
        chord = [root + major[(d + k) % 7] + 12 * ((d + k) // 7) for k in (0, 2, 4)]
        if timbre == "pad":
            for p in chord:
                y = tone(hz(p), 4 * beat, 0.15, 4 * beat)
                put(y[max(0, int(-start * sample_rate)):], max(0.0, start))
        else:
            for k in range(4):
                for p in chord:
                    if start + k * beat >= 0:
                        put(tone(hz(p), beat, 0.15, 0.25 * beat + 0.1), start + k * beat)
        step = beat / 2 if rng.random() < 0.5 else beat
        tt = 0.0
        while tt < 4 * beat:
            if start + tt >= 0 and rng.random() < 0.85:
                p = chord[int(rng.integers(3))] + 12 + (major[int(rng.integers(7))] if rng.random() < 0.3 else 0)
                put(tone(hz(p), step * 0.95, 0.2, step), start + tt)
            tt += step
        if drums:
            for k in range(8):
                at = start + k * beat / 2
                if at < 0:
                    continue
                m = int(0.12 * sample_rate)
                t = np.arange(m) / sample_rate
                if k % 4 == 0:  # kick
                    put(0.5 * np.sin(2 * np.pi * (50 * t + 60 * 0.03 * (1 - np.exp(-t / 0.03)))) * np.exp(-t / 0.06), at)
                if k % 4 == 2:  # snare
                    put(0.2 * rng.standard_normal(m) * np.exp(-t / 0.04), at)
                hh = rng.standard_normal(m // 3)
                hh = np.diff(hh, prepend=0.0)
                put(0.05 * hh * np.exp(-np.arange(m // 3) / (0.01 * sample_rate)), at)
        bar += 1
    settings = {"kind": "synthetic-music", "bpm": round(bpm, 2), "root_midi": root, "timbre": timbre, "drums": drums}
    return nz.set_rms_dbfs(out, -20.0), settings


def _fixture_clip(label: str, rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, dict]:
    if label == "music":
        x, gen = synth_music(rng, seconds)
        lo_hi = MUSIC_RMS_DBFS
    elif label == "speech":
        f0 = float(rng.uniform(90, 250))
        x = nz.formant_speech(rng, seconds, SR, f0)
        gen = {"kind": "formant-speech", "f0_hz": round(f0, 2), "syllable_rate_hz": 4.0}
        lo_hi = SPEECH_RMS_DBFS
    elif label == "noise":
        kind = str(rng.choice(nz.NOISE_KINDS))
        x, gen = nz.random_noise(kind, rng, seconds, SR, -30.0)
        lo_hi = NOISE_RMS_DBFS
    else:
        kind = str(rng.choice(nz.SILENCE_KINDS))
        x, gen = nz.random_silence(kind, rng, seconds, SR)
        return x, {"generator": gen, "gain_db": 0.0}
    x, gain_db, _ = _level(x, rng, lo_hi)
    return x, {"generator": gen, "gain_db": gain_db}


def make_fixture_clips(out_root: Path, seed: int = 0, per_split: int = 3, seconds: float = 2.0) -> None:
    """A tiny labelled set for tests, in seconds: ``per_split`` clips per label per split, numpy only.

    Music: :func:`synth_music`; speech: :func:`~.noise.formant_speech` (syllables at ~4 Hz with
    pitch contours and pauses); noise: :func:`~.noise.random_noise` kinds (babble of formant
    voices); silence: zeros and -90..-60 dBFS floors. Each clip is its own source
    ``fixture:<label>:<seed>:<n>``, placed by :func:`~.splits.split_of` (sources are drawn until
    every split has ``per_split`` of each label). Writes the manifest too. Same seed, same files.
    """
    out_root = Path(out_root)
    for label in CLASSES:
        counts = {s: 0 for s in SPLITS}
        n = 0
        while min(counts.values()) < per_split:
            source_id = f"fixture:{label}:{seed}:{n}"
            split = split_of(source_id)
            if counts[split] < per_split:
                counts[split] += 1
                rng = np.random.default_rng(job_seed(seed, "fixture", label, n))
                x, meta = _fixture_clip(label, rng, seconds)
                meta["sources"] = [_source("synthetic", source_id, "noisyneuron")]
                meta["seed"] = int(seed)
                meta["builder"] = "classification-fixture-v1"
                write_classification_clip(out_root, split, label, f"{label}-fx{n:04d}", x, meta)
            n += 1
    write_manifest(out_root, "classification", {"fixture": True, "seed": int(seed), "per_split": per_split, "seconds_per_clip": seconds})
