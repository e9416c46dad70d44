"""Running a data build: resumable, deterministic, in parallel, with a progress bar.

A build is a list of :class:`Job` s planned up front from the seed. Each job knows where its
item lands and draws all its randomness from its own seed (``Job.seed``), so an item is the same
whichever worker makes it, in whatever order, and a resumed build skips the items on disk.
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["Job", "BuildStats", "job_seed", "run_jobs", "default_workers"]


@dataclass(frozen=True)
class Job:
    """One item to build.

    Attributes:
        split: "train", "valid" or "test".
        item_id: the item's name on disk (unique in the build).
        seconds: audio length, seconds.
        seed: the item's own seed (from :func:`job_seed`).
        params: what the builder needs beyond that (sources, kind...), JSON-serialisable.
    """

    split: str
    item_id: str
    seconds: float
    seed: int
    params: dict = field(default_factory=dict, hash=False, compare=False)

    def rng(self) -> np.random.Generator:
        """A generator seeded by this job alone."""
        return np.random.default_rng(self.seed)


def job_seed(build_seed: int, *keys: object) -> int:
    """A 63-bit seed from the build seed and any keys (stable across runs, processes, machines)."""
    digest = hashlib.sha256(repr((int(build_seed),) + tuple(str(k) for k in keys)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass
class BuildStats:
    """What a build did. ``realtime_factor`` is audio seconds made per wall-clock second."""

    built: int = 0
    skipped: int = 0
    failed: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def realtime_factor(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def summary(self) -> str:
        hours_per_hour = self.realtime_factor
        return (
            f"built {self.built} items ({self.audio_seconds / 3600:.2f} h of audio) in {self.wall_seconds / 60:.1f} min, "
            f"skipped {self.skipped} already on disk, {self.failed} failed; "
            f"throughput {hours_per_hour:.1f} h of audio per hour ({hours_per_hour / max(1, self._workers):.1f} per worker)"
        )

    _workers: int = 1


def default_workers() -> int:
    """One worker per available CPU."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_jobs(
    jobs: list[Job],
    make: Callable[[Job], None],
    exists: Callable[[Job], bool],
    workers: int = 1,
    desc: str = "building",
    progress: bool = True,
) -> BuildStats:
    """Make every job whose item is not on disk yet.

    Args:
        jobs: the planned items.
        make: builds and writes one item (a module-level function: it runs in worker processes).
        exists: whether a job's item is already complete on disk.
        workers: processes; 1 runs in this process.
        desc: progress bar label.
        progress: show a tqdm bar (on stderr) counting audio hours.

    A job that raises is counted as failed, its error kept (one line each); the others go on.
    """
    from tqdm import tqdm

    stats = BuildStats(_workers=workers)
    todo = []
    for job in jobs:
        if exists(job):
            stats.skipped += 1
        else:
            todo.append(job)
    total_h = sum(j.seconds for j in todo) / 3600.0
    bar = tqdm(total=round(total_h, 3), unit="h", desc=desc, disable=not progress, dynamic_ncols=True, bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} h of audio [{elapsed} elapsed, {remaining} left]")
    start = time.perf_counter()

    def done(job: Job, error: BaseException | None) -> None:
        if error is None:
            stats.built += 1
            stats.audio_seconds += job.seconds
        else:
            stats.failed += 1
            stats.errors.append(f"{job.split}/{job.item_id}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
        bar.update(round(job.seconds / 3600.0, 6))

    try:
        if workers <= 1:
            for job in todo:
                try:
                    make(job)
                    done(job, None)
                except Exception as e:  # noqa: BLE001 - one bad item must not stop a long build
                    done(job, e)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(make, job): job for job in todo}
                for fut in as_completed(futures):
                    done(futures[fut], fut.exception())
    finally:
        bar.close()
        stats.wall_seconds = time.perf_counter() - start
    return stats
