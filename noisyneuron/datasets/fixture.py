"""A tiny data set made in seconds with no external tool, for tests and quick checks.

``build_separation_fixture`` writes a few short synthetic tracks per split (and one
instrumental track in the test split) through the same augmentation, mixing and writing code as
the real builder; ``noisyneuron data build separation --fixture`` does the same from the command
line. The classification fixture lives beside its builder (:mod:`.classification`).
"""

from __future__ import annotations

import os

from noisyneuron.datasets.build import BuildStats, Job, job_seed, run_jobs
from noisyneuron.datasets.layout import write_manifest
from noisyneuron.datasets.separation import maker, track_done
from noisyneuron.datasets.splits import SPLITS

__all__ = ["plan_separation_fixture", "build_separation_fixture"]


def plan_separation_fixture(seed: int = 0, tracks_per_split: int = 2, seconds: float = 3.0) -> list[Job]:
    """``tracks_per_split`` synthetic tracks of ``seconds`` per split, plus one instrumental
    track in the test split. Sources are named per split, so no source is in two splits."""
    jobs = []
    for split in SPLITS:
        for i in range(tracks_per_split):
            params = {"kind": "synthetic", "source": f"synthetic:{split}:{i}", "build_seed": seed}
            jobs.append(Job(split, f"{split}-{i:05d}", seconds, job_seed(seed, "fixture", split, i), params))
    params = {"kind": "synthetic", "source": "synthetic:test:instrumental", "vocals": False, "build_seed": seed}
    jobs.append(Job("test", "test-instrumental", seconds, job_seed(seed, "fixture", "test", "instrumental"), params))
    return jobs


def build_separation_fixture(out_root: str | os.PathLike, seed: int = 0, tracks_per_split: int = 2, seconds: float = 3.0, progress: bool = False) -> BuildStats:
    """Write the fixture set into ``out_root`` (resumable like any build) and its manifest."""
    jobs = plan_separation_fixture(seed, tracks_per_split, seconds)
    stats = run_jobs(jobs, maker(out_root, None), lambda j: track_done(j, out_root), workers=1, desc="fixture", progress=progress)
    if stats.failed:
        raise RuntimeError("fixture build failed: " + "; ".join(stats.errors))
    write_manifest(out_root, "separation", {"fixture": True, "seed": seed, "tracks_per_split": tracks_per_split, "track_seconds": seconds})
    return stats
