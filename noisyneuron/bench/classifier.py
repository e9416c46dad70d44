"""Classifier benchmark: real-time factor, per-decision time and peak memory, peers in the same run.

Every row runs in a fresh process pinned to one CPU core with one torch thread, on the same
input (the demo song with speech-like syllables and noise over parts of it, so the level gate
never skips the network: the worst case), after a warm-up:

- ``ours live 48 kHz``: the ``classifier`` chain processor
  (:class:`~noisyneuron.realtime.processors.classifier.ClassifierProcessor`) on stereo blocks of
  ``blocksize`` frames at 48 kHz, the product's live path (mono mix, front end at 48 kHz,
  network, smoothing, the lock-free publication);
- ``ours live 16 kHz``: the same at 16 kHz, mono (the evaluation's rate);
- ``ours offline``: :func:`~noisyneuron.models.classifier.batch_decisions` (``classify FILE``),
  the network on batches of windows;
- ``energy-baseline``: the evaluation's DSP baseline (16 kHz, blocks of 512);
- ``silero-vad``: Silero's speech detector (16 kHz, blocks of 512), when installed.

Real-time factor = compute seconds / audio seconds (lower is faster). Per-decision time is the
compute time of each decision (front end of its hop + network + smoothing), its median and 99th
percentile in ms; for the peers, one hop (their decision). Peak memory: the process's peak
resident set growth over its state after imports and model load (MB). Ratios are to the energy
baseline's real-time factor, measured in the same run.
"""

from __future__ import annotations

import time

import numpy as np

from noisyneuron.bench.common import error_line, error_result, measure_rows, note_lines, pin_one_core, rss_mb

__all__ = ["run_classifier_bench", "format_classifier_table", "TARGET_RTF", "ROWS"]

#: Goal: the live classifier's real-time factor on one core.
TARGET_RTF = 0.02
ROWS = ("ours live 48 kHz", "ours live 16 kHz", "ours offline", "energy-baseline", "silero-vad")


def _input(seconds: float, rate: int) -> np.ndarray:
    """(frames, 2) float32: the demo song, with speech-like syllables and pink noise over parts."""
    from noisyneuron.demo import make_demo_mix
    from noisyneuron.datasets import noise as nz

    x = make_demo_mix(rate, seconds, seed=1)["mix"].astype(np.float64)
    rng = np.random.default_rng(3)
    n = len(x)
    third = n // 3
    x[third : 2 * third] += nz.formant_speech(rng, (2 * third - third) / rate, rate, level_dbfs=-22.0)[: third, None]
    x[2 * third :] += nz.pink_noise(rng, (n - 2 * third) / rate, rate, -30.0)[: n - 2 * third, None]
    return np.ascontiguousarray(x, dtype=np.float32)


def _net():
    """The shipped classifier, or (speed only) an untrained one of the same size: ``(net, note)``."""
    from noisyneuron.errors import UserError
    from noisyneuron.models.classifier import ClassifierNet, load_classifier

    try:
        return load_classifier(use_profile=False), "shipped weights"
    except UserError:
        return ClassifierNet().eval(), "untrained weights of the shipped size (speed does not depend on them)"


def _ours_live(rate: int, channels: int, seconds: float, blocksize: int) -> dict:
    from noisyneuron.realtime.processors.classifier import ClassifierProcessor

    net, note = _net()
    proc = ClassifierProcessor(net=net)
    proc.prepare(rate, blocksize, channels)
    audio = _input(seconds, rate)[:, :channels].copy()
    warm = audio[: 2 * rate]
    for pos in range(0, len(warm) - blocksize + 1, blocksize):
        proc.process(warm[pos : pos + blocksize].copy())
    proc.reset()
    decide = proc.classifier._decide
    times: list[float] = []

    def timed():
        t0 = time.perf_counter()
        decide()
        times.append(time.perf_counter() - t0)

    proc.classifier._decide = timed
    rss0 = rss_mb()
    blocks = [audio[pos : pos + blocksize].copy() for pos in range(0, len(audio) - blocksize + 1, blocksize)]
    block_time = 0.0
    for block in blocks:
        t0 = time.perf_counter()
        proc.process(block)
        block_time += time.perf_counter() - t0
    audio_s = len(blocks) * blocksize / rate
    gated = proc.classifier.gated
    t = np.array(times)
    return {
        "rtf": block_time / audio_s, "decisions": len(times), "decision_ms": proc.classifier.decision_seconds * 1e3,
        "p50_ms": float(np.percentile(t, 50) * 1e3), "p99_ms": float(np.percentile(t, 99) * 1e3),
        "peak_mb": rss_mb() - rss0, "note": note, "last_gated": bool(gated), "blocksize": blocksize,
        "labels": "/".join(proc.labels),
    }


def _ours_offline(seconds: float) -> dict:
    from noisyneuron.models.classifier import batch_decisions

    net, note = _net()
    audio = _input(seconds, 16000)[:, 0].copy()
    batch_decisions(net, audio[:32000], 16000)
    rss0 = rss_mb()
    t0 = time.perf_counter()
    batch_decisions(net, audio, 16000)
    elapsed = time.perf_counter() - t0
    return {"rtf": elapsed / seconds, "peak_mb": rss_mb() - rss0, "note": note}


def _peer(name: str, seconds: float) -> dict:
    from noisyneuron.evaluation.classifier import make_system

    system = make_system(name)
    audio = _input(seconds, 16000)[:, 0].copy()
    block = 512
    for pos in range(0, 32000, block):
        system.process(audio[pos : pos + block])
    system.reset()
    rss0 = rss_mb()
    times = []
    total = 0.0
    for pos in range(0, len(audio) - block + 1, block):
        t0 = time.perf_counter()
        system.process(audio[pos : pos + block])
        dt = time.perf_counter() - t0
        total += dt
        times.append(dt)
    t = np.array(times)
    audio_s = len(times) * block / 16000
    return {"rtf": total / audio_s, "decision_ms": system.hop / system.sample_rate * 1e3,
            "p50_ms": float(np.percentile(t, 50) * 1e3), "p99_ms": float(np.percentile(t, 99) * 1e3), "peak_mb": rss_mb() - rss0}


def _row(name: str, seconds: float, blocksize: int, queue) -> None:
    """Child process: measure one row, put ``(name, result or error)`` on the queue."""
    try:
        pin_one_core()
        if name == "ours live 48 kHz":
            result = _ours_live(48000, 2, seconds, blocksize)
        elif name == "ours live 16 kHz":
            result = _ours_live(16000, 1, seconds, 512)
        elif name == "ours offline":
            result = _ours_offline(seconds)
        elif name in ("energy-baseline", "silero-vad"):
            result = _peer(name, seconds)
        else:
            raise ValueError(name)
        queue.put((name, result))
    except Exception as exc:  # noqa: BLE001 - reported as the row's result
        queue.put((name, error_result(exc)))


def run_classifier_bench(seconds: float = 10.0, blocksize: int = 256, rows: tuple[str, ...] = ROWS) -> dict:
    """Measure each row in its own one-core process; returns ``{"rows": {row: result}, ...}``
    with ``vs_energy`` / ``vs_silero`` ratios of real-time factors."""
    results = measure_rows(_row, rows, seconds, blocksize)
    energy = results.get("energy-baseline", {}).get("rtf")
    silero = results.get("silero-vad", {}).get("rtf")
    for r in results.values():
        if "rtf" in r:
            if energy:
                r["vs_energy"] = r["rtf"] / energy
            if silero:
                r["vs_silero"] = r["rtf"] / silero
    return {"seconds": seconds, "blocksize": blocksize, "rows": results, "targets": {"rtf": TARGET_RTF}}


def format_classifier_table(result: dict) -> str:
    """A markdown table of :func:`run_classifier_bench`'s result."""
    lines = [
        f"{result['seconds']:g} s of music / speech / noise, one core, one torch thread; ours live at 48 kHz in stereo blocks of {result['blocksize']}",
        "",
        "| path | RTF | vs energy baseline | vs silero-vad | per decision p50 / p99 (ms) | decision every | peak MB |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for name, r in result["rows"].items():
        if "error" in r:
            lines.append(error_line(name, r["error"], 7))
            continue
        per = f"{r['p50_ms']:.3f} / {r['p99_ms']:.3f}" if "p50_ms" in r else ""
        every = f"{r['decision_ms']:.0f} ms" if "decision_ms" in r else "offline"
        ve = f"{r['vs_energy']:.2f}" if "vs_energy" in r else ""
        vs = f"{r['vs_silero']:.2f}" if "vs_silero" in r else ""
        lines.append(f"| {name} | {r['rtf']:.4f} | {ve} | {vs} | {per} | {every} | {r['peak_mb']:.0f} |")
    lines += note_lines(result, "ours")
    lines.append(f"target: live RTF <= {result['targets']['rtf']} on one core")
    return "\n".join(lines)
