"""What the separator and classifier benchmarks share: one process per row, pinned to one core
with one torch thread, its peak memory, and the table's error and note lines."""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
from typing import Callable

__all__ = ["rss_mb", "pin_one_core", "error_result", "measure_rows", "error_line", "note_lines"]


def rss_mb() -> float:
    """The process's peak resident set size so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def pin_one_core() -> None:
    """One torch thread, and (on Linux) this process on one CPU core."""
    import torch

    torch.set_num_threads(1)
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        pass


def error_result(exc: BaseException) -> dict:
    """A row's result when measuring it failed: ``{"error": "Type: first line"}``."""
    return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}


def measure_rows(row: Callable, names: tuple[str, ...], seconds: float, blocksize: int) -> dict[str, dict]:
    """Run ``row(name, seconds, blocksize, queue)`` (a module-level function) in a fresh spawned
    process per name; returns ``{name: result}`` in order."""
    ctx = mp.get_context("spawn")
    results: dict[str, dict] = {}
    for name in names:
        queue = ctx.Queue()
        proc = ctx.Process(target=row, args=(name, seconds, blocksize, queue))
        proc.start()
        got = queue.get(timeout=900)
        proc.join()
        results[got[0]] = got[1]
    return results


def error_line(name: str, error: str, columns: int) -> str:
    """The markdown table line of a row that could not be measured (``columns`` cells in all)."""
    return f"| {name} | not measured: {error}" + " |" * (columns - 1)


def note_lines(result: dict, prefix: str) -> list[str]:
    """A blank line, then one ``prefix: note`` line per distinct row note (sorted)."""
    notes = {r["note"] for r in result["rows"].values() if r.get("note")}
    return [""] + [f"{prefix}: {note}" for note in sorted(notes)]
