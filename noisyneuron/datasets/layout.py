"""The on-disk format of NoisyNeuron's data sets: what every builder writes and every reader reads.

Separation (``kind == "separation"``), stereo, 44.1 kHz, 16-bit FLAC::

    ROOT/manifest.json                         the build: seed, hours, sources, licences, tracks
    ROOT/<split>/<track_id>/track.json         one track: sources, seeds, augmentation, stems
    ROOT/<split>/<track_id>/mixture.flac
    ROOT/<split>/<track_id>/<stem>.flac        "vocals" plus "drums", "bass", "other"
                                               (rendered) or "accompaniment" (real recordings)

The mixture equals the sum of the stem files exactly, sample for sample: stems are quantised to
16-bit integers first and the mixture is their integer sum, and ``int / 32768`` sums exactly in
float32. An instrumental track (``"instrumental": true``) has an all-zero vocals stem.

A *packed* set (``noisyneuron data pack``, ``"packed": true`` in ``track.json``) is a compact
lossy copy for moving training data to another machine: stems as OGG Vorbis, no mixture file
(``load("mixture")`` sums the decoded stems, so the sum stays exact there too).

Classification (``kind == "classification"``), mono, 16 kHz, 24-bit FLAC (low noise floors
survive)::

    ROOT/manifest.json
    ROOT/<split>/<label>/<clip_id>.flac
    ROOT/<split>/<label>/<clip_id>.json        label, sources, licence, seed, generator settings

A track or clip appears only complete: it is written under a ``.partial`` name and renamed, so an
interrupted build resumes by skipping what exists (:func:`track_exists`, :func:`clip_exists`).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from noisyneuron.audio.atomic import atomic_path, atomic_write_text, partial_sibling
from noisyneuron.audio.resampling import fit_length

__all__ = [
    "SEPARATION_RATE",
    "CLASSIFICATION_RATE",
    "STEMS",
    "CLASSES",
    "SeparationTrack",
    "ClassificationClip",
    "write_separation_track",
    "separation_tracks",
    "check_track",
    "track_exists",
    "write_classification_clip",
    "classification_clips",
    "clip_exists",
    "write_manifest",
    "read_manifest",
    "write_json_atomic",
]

#: Sample rate of separation tracks, Hz.
SEPARATION_RATE = 44100
#: Sample rate of classification clips, Hz.
CLASSIFICATION_RATE = 16000
#: Separation stems of rendered tracks, in order. "accompaniment" is every stem but vocals.
STEMS = ("vocals", "drums", "bass", "other")
#: Classification labels, in order.
CLASSES = ("music", "speech", "noise", "silence")

_FULL_SCALE = 32767
_PEAK_TARGET = 0.98  # the mixture's peak after quantisation, full scale = 1


def write_json_atomic(path: str | os.PathLike, data: object) -> None:
    """Write ``data`` as indented JSON to ``path`` via a temporary file and a rename."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


# ----- separation -----------------------------------------------------------------------------
@dataclass
class _StoredItem:
    """An item on disk: where it is and its JSON metadata (id, split, seconds, sources...)."""

    path: Path
    meta: dict = field(repr=False)

    @property
    def id(self) -> str:
        return self.meta["id"]

    @property
    def split(self) -> str:
        return self.meta["split"]

    @property
    def seconds(self) -> float:
        """Length, seconds."""
        return float(self.meta["seconds"])


class SeparationTrack(_StoredItem):
    """One separation track on disk. ``load(name)`` gives float32 audio, shape (frames, 2)."""

    @property
    def stems(self) -> tuple[str, ...]:
        """The stem files this track has (their sum is the mixture)."""
        return tuple(self.meta["stems"])

    @property
    def instrumental(self) -> bool:
        """True when the track has no vocals (its vocals stem is all zeros)."""
        return bool(self.meta.get("instrumental", False))

    def has(self, name: str) -> bool:
        """Whether :meth:`load` can give ``name`` ("mixture", "accompaniment" or a stem)."""
        return name in ("mixture", "accompaniment") or name in self.stems

    def load(self, name: str) -> np.ndarray:
        """``"mixture"``, ``"accompaniment"`` (all stems but vocals, summed) or a stem name."""
        if name == "accompaniment" and "accompaniment" not in self.stems:
            parts = [self.load(s) for s in self.stems if s != "vocals"]
            return np.sum(parts, axis=0, dtype=np.float32)
        if name == "mixture" and self.meta.get("packed"):
            return np.sum([self.load(s) for s in self.stems], axis=0, dtype=np.float32)
        if not self.has(name):
            raise KeyError(f"track {self.id} has no stem {name!r} (it has {', '.join(self.stems)})")
        audio, _ = sf.read(self.stem_path(name), dtype="float32", always_2d=True)
        frames = int(round(self.seconds * SEPARATION_RATE))
        return fit_length(audio, frames)

    def stem_path(self, name: str) -> Path:
        """The file of a stem: FLAC in a built set, OGG Vorbis in a packed one (``data pack``)."""
        flac = self.path / f"{name}.flac"
        return flac if flac.is_file() or not self.meta.get("packed") else self.path / f"{name}.ogg"

    @classmethod
    def from_dir(cls, path: str | os.PathLike) -> SeparationTrack:
        path = Path(path)
        return cls(path, json.loads((path / "track.json").read_text()))


def _quantise(stems: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """Integer stems and their integer-sum mixture, scaled so nothing clips; also the gain used."""
    mix = np.sum([np.asarray(s, dtype=np.float64) for s in stems.values()], axis=0)
    peak = max([float(np.max(np.abs(mix)))] + [float(np.max(np.abs(s))) for s in stems.values()])
    gain = 1.0 if peak <= _PEAK_TARGET else _PEAK_TARGET / peak
    while True:
        ints = {k: np.round(np.asarray(v, dtype=np.float64) * gain * _FULL_SCALE).astype(np.int32) for k, v in stems.items()}
        total = np.sum(list(ints.values()), axis=0)
        if int(np.max(np.abs(total), initial=0)) <= _FULL_SCALE:
            return {k: v.astype(np.int16) for k, v in ints.items()}, total.astype(np.int16), gain
        gain *= 0.99  # rounding pushed a sample over full scale: rare, retry a little lower
        if gain < 1e-3:  # cannot happen with finite stems (checked by the caller)
            raise ValueError("stems cannot be quantised without clipping")


def write_separation_track(root: str | os.PathLike, split: str, track_id: str, stems: dict[str, np.ndarray], meta: dict) -> SeparationTrack:
    """Write a track whose mixture is exactly the sum of ``stems`` (each float, (frames, 2)).

    Stems are scaled together when their sum would clip (the gain lands in ``track.json`` as
    ``quantise_gain``). The track appears atomically: written under ``<track_id>.partial`` and
    renamed. Returns the written track.
    """
    bad = [k for k, v in stems.items() if not np.all(np.isfinite(v))]
    if bad:
        raise ValueError(f"non-finite samples in stem(s) {', '.join(bad)}")
    frames = {np.asarray(s).shape for s in stems.values()}
    if len(frames) != 1 or len(next(iter(frames))) != 2 or next(iter(frames))[1] != 2:
        raise ValueError(f"stems must share one (frames, 2) shape, got {sorted(frames)}")
    if "vocals" not in stems:
        raise ValueError("a separation track needs a vocals stem (zeros for instrumental tracks)")
    ints, mixture, gain = _quantise(stems)
    final = Path(root) / split / track_id
    # a folder: staged under the fixed name <track_id>.partial (a rerun clears a killed one's) and
    # renamed by hand, since os.replace cannot replace a folder that holds files
    tmp = partial_sibling(final, unique=False)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, data in list(ints.items()) + [("mixture", mixture)]:
        sf.write(tmp / f"{name}.flac", data, SEPARATION_RATE, subtype="PCM_16", format="FLAC")
    meta = dict(meta)
    meta.update(
        id=track_id,
        split=split,
        sample_rate=SEPARATION_RATE,
        seconds=round(len(mixture) / SEPARATION_RATE, 6),
        stems=list(ints),
        instrumental=bool(not np.any(ints["vocals"])),
        quantise_gain=gain,
    )
    write_json_atomic(tmp / "track.json", meta)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return SeparationTrack(final, meta)


def track_exists(root: str | os.PathLike, split: str, track_id: str) -> bool:
    """Whether a complete track ``track_id`` is on disk (a resumed build skips it)."""
    return (Path(root) / split / track_id / "track.json").is_file()


def check_track(track: SeparationTrack) -> list[str]:
    """Problems with a track on disk (empty when it is sound): unreadable or mismatched stem
    files, or a mixture that is not exactly the sum of its stems."""
    problems = []
    try:
        stems = {s: track.load(s) for s in track.stems}
        mix = track.load("mixture")
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return [f"unreadable: {type(exc).__name__}: {exc}"]
    frames = int(round(track.seconds * SEPARATION_RATE))
    for name, audio in list(stems.items()) + [("mixture", mix)]:
        if audio.shape != (frames, 2):
            problems.append(f"{name}: shape {audio.shape}, expected ({frames}, 2)")
    if not problems:
        diff = mix - np.sum(list(stems.values()), axis=0, dtype=np.float32)
        bad = int(np.count_nonzero(diff))
        if bad:
            problems.append(f"mixture differs from the sum of the stems in {bad} samples (max {float(np.max(np.abs(diff))):.3g})")
    if track.instrumental and np.any(stems["vocals"]):
        problems.append("marked instrumental but the vocals stem is not silent")
    return problems


def separation_tracks(root: str | os.PathLike, split: str | None = None) -> list[SeparationTrack]:
    """Every complete track under ``root`` (of one split, or all), sorted by split and id."""
    root = Path(root)
    splits = [split] if split else sorted(p.name for p in root.iterdir() if p.is_dir())
    tracks = []
    for s in splits:
        base = root / s
        if not base.is_dir():
            continue
        for d in sorted(base.iterdir()):
            if d.is_dir() and not d.name.endswith(".partial") and (d / "track.json").is_file():
                tracks.append(SeparationTrack.from_dir(d))
    return tracks


# ----- classification -------------------------------------------------------------------------
class ClassificationClip(_StoredItem):
    """One labelled clip on disk. ``load()`` gives float32 mono audio, shape (frames,)."""

    @property
    def label(self) -> str:
        return self.meta["label"]

    def load(self) -> np.ndarray:
        audio, _ = sf.read(self.path, dtype="float32", always_2d=False)
        return audio

    @classmethod
    def from_json(cls, json_path: str | os.PathLike) -> ClassificationClip:
        json_path = Path(json_path)
        return cls(json_path.with_suffix(".flac"), json.loads(json_path.read_text()))


def write_classification_clip(root: str | os.PathLike, split: str, label: str, clip_id: str, audio: np.ndarray, meta: dict) -> ClassificationClip:
    """Write a mono clip (float, (frames,), 16 kHz, clipped to +-1) and its JSON, atomically.

    The JSON is written last: a clip counts as present (:func:`clip_exists`) only once both are.
    """
    if label not in CLASSES:
        raise ValueError(f"label must be one of {CLASSES}, got {label!r}")
    audio = np.clip(np.asarray(audio, dtype=np.float64).reshape(-1), -1.0, 1.0 - 2.0**-23)
    base = Path(root) / split / label
    base.mkdir(parents=True, exist_ok=True)
    flac = base / f"{clip_id}.flac"
    with atomic_path(flac, keep_suffix=True) as tmp:
        sf.write(tmp, audio, CLASSIFICATION_RATE, subtype="PCM_24", format="FLAC")
    meta = dict(meta)
    meta.update(id=clip_id, split=split, label=label, sample_rate=CLASSIFICATION_RATE, seconds=round(len(audio) / CLASSIFICATION_RATE, 6))
    write_json_atomic(base / f"{clip_id}.json", meta)
    return ClassificationClip(flac, meta)


def clip_exists(root: str | os.PathLike, split: str, label: str, clip_id: str) -> bool:
    base = Path(root) / split / label
    return (base / f"{clip_id}.json").is_file() and (base / f"{clip_id}.flac").is_file()


def classification_clips(root: str | os.PathLike, split: str | None = None) -> list[ClassificationClip]:
    """Every complete clip under ``root`` (of one split, or all), sorted by split, label, id."""
    root = Path(root)
    splits = [split] if split else sorted(p.name for p in root.iterdir() if p.is_dir())
    clips = []
    for s in splits:
        for label in CLASSES:
            base = root / s / label
            if base.is_dir():
                for j in sorted(base.glob("*.json")):
                    if not j.name.endswith(".partial") and j.with_suffix(".flac").is_file():
                        clips.append(ClassificationClip.from_json(j))
    return clips


# ----- manifest -------------------------------------------------------------------------------
def write_manifest(root: str | os.PathLike, kind: str, build: dict) -> dict:
    """Collect every track (or clip) under ``root`` into ``manifest.json``, with ``build`` info.

    The manifest lists each item's id, split, seconds and sources, every licence met per
    package (one package may hold files under several), and totals per split; it is rewritten whole (atomically) at the end of each build.
    """
    if kind == "separation":
        items = [dict(t.meta, path=str(t.path.relative_to(root))) for t in separation_tracks(root)]
    elif kind == "classification":
        items = [dict(c.meta, path=str(c.path.relative_to(root))) for c in classification_clips(root)]
    else:
        raise ValueError(f"kind must be separation or classification, got {kind!r}")
    found: dict[str, set[str]] = {}
    for item in items:
        for src in item.get("sources", []):
            if src.get("licence"):
                found.setdefault(src.get("package") or src.get("kind", "?"), set()).add(src["licence"])
    licences = {package: "; ".join(sorted(ls)) for package, ls in sorted(found.items())}
    totals: dict[str, dict] = {}
    for item in items:
        t = totals.setdefault(item["split"], {"items": 0, "hours": 0.0})
        t["items"] += 1
        t["hours"] += item["seconds"] / 3600.0
    manifest = {"kind": kind, "build": build, "totals": totals, "licences": licences, "items": items}
    write_json_atomic(Path(root) / "manifest.json", manifest)
    return manifest


def read_manifest(root: str | os.PathLike) -> dict:
    """The manifest of a built data set; a one-line error when ``root`` is not one."""
    path = Path(root) / "manifest.json"
    if not path.is_file():
        from noisyneuron.errors import UserError

        raise UserError(f"{root}: not a NoisyNeuron data set (no manifest.json); build one with `noisyneuron data build`")
    return json.loads(path.read_text())
