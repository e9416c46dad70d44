"""What ``noisyneuron data build`` runs: plan a build, make what is missing, write the manifest."""

from __future__ import annotations

import functools
import os
import platform
import time
from pathlib import Path

from noisyneuron.errors import UserError
from noisyneuron.datasets.build import BuildStats, run_jobs
from noisyneuron.datasets.layout import write_manifest

__all__ = ["build_dataset"]

KINDS = ("separation", "realworld", "classification")
#: The layout each kind writes (``realworld`` is a separation data set of held-out sources).
_LAYOUT = {"separation": "separation", "realworld": "separation", "classification": "classification"}


def _plan(kind: str, hours: float, seed: int, track_seconds: float | None, tracks: int | None = None):
    if kind == "realworld":
        from noisyneuron.datasets import realworld

        jobs = realworld.plan_realworld(tracks or realworld.DEFAULT_TRACKS, seed, track_seconds or realworld.TRACK_SECONDS)
        return jobs, realworld.maker, realworld.track_done
    if kind == "separation":
        from noisyneuron.datasets import separation

        jobs = separation.plan_separation(hours, seed, track_seconds or separation.DEFAULT_TRACK_SECONDS)
        return jobs, separation.maker, separation.track_done
    from noisyneuron.datasets import classification

    jobs = classification.plan_classification(hours, seed, track_seconds or 4.0)
    make = lambda out, cache: functools.partial(classification.make_clip, out_root=Path(out))  # noqa: E731
    return jobs, make, lambda job, out: classification.exists(job, Path(out))


def build_dataset(
    kind: str,
    out: str | os.PathLike,
    hours: float,
    seed: int,
    workers: int,
    item_seconds: float | None = None,
    fixture: bool = False,
    progress: bool = True,
    splits: tuple[str, ...] | None = None,
    tracks: int | None = None,
) -> tuple[BuildStats, dict]:
    """Build (or resume) a data set of ``kind`` in ``out``; returns the stats and the manifest.

    Args:
        kind: "separation", "realworld" (the held-out-source evaluation set, a separation
            data set: :mod:`.realworld`) or "classification".
        out: output folder (created; an existing build there is resumed).
        hours: audio to make, hours (split 80/10/10 by source).
        seed: build seed: equal seeds give identical data.
        workers: processes.
        item_seconds: track (separation) or clip (classification) length, seconds.
        fixture: the tiny, numpy-only set for tests (ignores ``hours``).
        progress: tqdm progress bar on stderr.
        splits: build only these splits of the plan (the same items a full build makes there).
        tracks: realworld only: test tracks (valid gets half as many; ``hours`` is ignored).
    """
    if kind not in KINDS:
        raise UserError(f"unknown data set kind {kind!r}; choose one of {', '.join(KINDS)}")
    out = Path(out).resolve()  # tools run in their own folders (festival): paths must be absolute
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        import json

        previous = json.loads(manifest_path.read_text())
        if previous.get("kind") != _LAYOUT[kind] or previous.get("build", {}).get("kind", kind) != kind:
            raise UserError(f"{out} holds a {previous.get('kind')} data set; choose another --out for {kind}")
        old_seed = previous.get("build", {}).get("seed")
        if old_seed is not None and old_seed != seed:
            raise UserError(f"{out} was built with --seed {old_seed}; resume with that seed or choose another --out")
    if fixture:
        if kind == "separation":
            from noisyneuron.datasets.fixture import build_separation_fixture

            stats = build_separation_fixture(out, seed=seed, progress=progress)
        else:
            from noisyneuron.datasets.classification import make_fixture_clips

            start = time.perf_counter()
            make_fixture_clips(out, seed=seed)
            stats = BuildStats(built=1, wall_seconds=time.perf_counter() - start)
        import json

        return stats, json.loads(manifest_path.read_text())
    jobs, make, done = _plan(kind, hours, seed, item_seconds, tracks)
    if splits:
        jobs = [j for j in jobs if j.split in splits]
    cache = out / ".cache"
    stats = run_jobs(jobs, make(out, cache), lambda j: done(j, out), workers=workers, desc=f"{kind} data", progress=progress)
    build = {
        "kind": kind,
        "seed": seed,
        "hours_requested": hours,
        "item_seconds": jobs[0].seconds if jobs else item_seconds,
        "planned_items": len(jobs),
        "splits": list(splits) if splits else "all",
        "last_run": {
            "built": stats.built,
            "skipped": stats.skipped,
            "failed": stats.failed,
            "wall_seconds": round(stats.wall_seconds, 1),
            "audio_hours": round(stats.audio_seconds / 3600.0, 4),
            "throughput_hours_per_hour": round(stats.realtime_factor, 2),
            "workers": workers,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        },
        "errors": stats.errors[:50],
    }
    manifest = write_manifest(out, _LAYOUT[kind], build)
    return stats, manifest
