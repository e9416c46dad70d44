"""Engine benchmark: xruns, late blocks and load of the live engine, rtmixer against a plain
sounddevice callback, with and without a Python thread competing for the GIL, in one run.

The competing thread stands in for a UI or anything else Python does while audio runs. It is the
measurement behind the engine's design (see :mod:`noisyneuron.realtime.engine`).
"""

from __future__ import annotations

import threading
import time

from noisyneuron.errors import DeviceError

__all__ = ["run_engine_bench", "format_engine_table"]


def _python_load(stop: threading.Event) -> None:
    """Pure Python arithmetic: holds the GIL in switch-interval slices until ``stop``."""
    x = 0
    while not stop.is_set():
        for i in range(20000):
            x += i * i


def run_engine_bench(
    seconds: float = 5.0, blocksizes: tuple[int, ...] = (128, 256), chain_name: str = "karaoke"
) -> dict:
    """Run the ``chain_name`` chain live on the default devices for each backend, blocksize and
    load condition, ``seconds`` each. Returns ``{"rows": [...]}`` or ``{"skipped": reason}``."""
    from noisyneuron.realtime.chains import build_chain
    from noisyneuron.realtime.engine import Engine

    rows = []
    try:
        for blocksize in blocksizes:
            for backend in ("rtmixer", "callback"):
                for loaded in (False, True):
                    engine = Engine(build_chain(chain_name), blocksize=blocksize, backend=backend)
                    stop = threading.Event()
                    loader = threading.Thread(target=_python_load, args=(stop,), daemon=True)
                    with engine:
                        if loaded:
                            loader.start()
                        time.sleep(seconds)
                        stop.set()
                        if loaded:
                            loader.join()
                        stats = engine.stats()
                    rows.append({
                        "backend": backend,
                        "blocksize": blocksize,
                        "python_load": loaded,
                        "seconds": stats.seconds,
                        "xruns": stats.xruns,
                        "late_blocks": stats.late_blocks,
                        "processing_load_mean": stats.processing_load_mean,
                        "processing_load_p99": stats.processing_load_p99,
                        "callback_load": stats.callback_load,
                        "latency_ms": engine.latency_seconds * 1000,
                        "sample_rate": engine.sample_rate,
                    })
    except DeviceError as exc:
        return {"skipped": str(exc)}
    return {"rows": rows, "seconds_each": seconds, "chain": chain_name}


def format_engine_table(result: dict) -> str:
    """The engine rows as a plain-text table."""
    if "skipped" in result:
        return f"engine: skipped ({result['skipped']})"
    lines = [
        f"engine: {result['chain']} chain live on the default device, {result['seconds_each']:g} s each",
        f"{'backend':<9} {'block':>5} {'py load':>7} {'xruns':>5} {'late':>5} {'proc load':>9} {'p99':>6} {'cb load':>7} {'latency':>9}",
    ]
    for r in result["rows"]:
        lines.append(
            f"{r['backend']:<9} {r['blocksize']:>5} {'yes' if r['python_load'] else 'no':>7} "
            f"{r['xruns']:>5} {r['late_blocks']:>5} {r['processing_load_mean'] * 100:>8.1f}% "
            f"{r['processing_load_p99'] * 100:>5.1f}% {r['callback_load'] * 100:>6.1f}% {r['latency_ms']:>7.1f}ms"
        )
    lines.append("proc load: chain time / block duration; xruns: deadlines the audio server missed; "
                 "late: blocks the processing thread delivered too late (silence played)")
    return "\n".join(lines)
