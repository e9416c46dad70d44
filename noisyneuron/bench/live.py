"""``noisyneuron bench live``: what the terminal UI costs the audio, three ways in one run.

The same chain runs live on the current output device (the JACK dummy server where one runs),
fed with the bundled demo song (looping, so meters, spectrum and classifier move as they would
with music), once per mode:

- ``headless``: the engine alone (what ``noisyneuron live --headless`` runs);
- ``tui``: the Textual UI in the engine's process (``noisyneuron live --ui-in-process``), polling
  readings 30 times a second and drawing every frame at 80x24 into a driver that renders the full
  terminal output (escape sequences and all) and counts it instead of writing it to a terminal:
  the UI's whole Python work, GIL included;
- ``tui-process``: what ``noisyneuron live`` runs: the engine in its own process
  (:mod:`noisyneuron.control.host`, with its OSC server), the same UI in this one, controls over OSC,
  meters and the spectrum's samples through shared memory.

For each: xruns (PortAudio over/underflows; and the JACK server's own count when the JACK-Client
package is there) and late blocks in the measured window (after a warm-up), PortAudio's callback
load, the processing thread's load (time per block / block duration, mean / p99 / max over the
engine's last 4096 blocks: the run), and for the UI modes the frame rate it reached (it polls 30 times a second) and the time
of one readings poll + update. The OSC set-and-query round trip (p50 / p99) is measured last with
:func:`noisyneuron.control.osc.bench_osc_roundtrip`.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time

__all__ = ["MODES", "run_live_bench", "format_live_table"]

MODES = ("headless", "tui", "tui-process")
UI_SIZE = (80, 24)


# ----- measuring a window of a running engine -----------------------------------------------------------
class _Mark:
    def __init__(self, session, server_xruns: int) -> None:
        self.stats = session.stats()  # a LiveSession's engine, or the engine host's (RemoteSession)
        self.time = time.perf_counter()
        self.server_xruns = server_xruns


def _window(a: _Mark, b: _Mark) -> dict:
    """Counters between two marks; loads as the engine reports them at the end (its last 4096
    blocks: the whole run at the default lengths)."""
    return {
        "seconds": b.time - a.time,
        "blocks": b.stats.blocks - a.stats.blocks,
        "xruns": b.stats.xruns - a.stats.xruns,
        "late_blocks": b.stats.late_blocks - a.stats.late_blocks,
        "errors": b.stats.errors - a.stats.errors,
        "server_xruns": (b.server_xruns - a.server_xruns) if a.server_xruns >= 0 else None,
        "callback_load": b.stats.callback_load,
        "processing_load_mean": b.stats.processing_load_mean,
        "processing_load_p99": b.stats.processing_load_p99,
        "processing_load_max": b.stats.processing_load_max,
    }


class _ServerXruns:
    """The JACK server's xrun count, from a JACK-Client callback (-1 when not on JACK or the
    package is missing)."""

    def __init__(self) -> None:
        self.count = 0
        self._client = None
        try:
            import jack

            client = jack.Client("noisyneuron-bench", no_start_server=True)
            client.set_xrun_callback(self._on_xrun)
            client.activate()
            self._client = client
        except Exception:  # noqa: BLE001 - no JACK here, or no JACK-Client: the engine's count stands
            self._client = None

    def _on_xrun(self, delay) -> None:
        self.count += 1

    def value(self) -> int:
        return self.count if self._client is not None else -1

    def close(self) -> None:
        if self._client is not None:
            self._client.deactivate()
            self._client.close()
            self._client = None


# ----- the UI without a terminal ----------------------------------------------------------------------
def _counting_driver_class():
    """A Textual driver that renders every frame like a terminal driver and counts the bytes."""
    from textual.drivers.headless_driver import HeadlessDriver

    class CountingDriver(HeadlessDriver):
        bytes_written = 0
        frames = 0

        @property
        def is_headless(self) -> bool:  # render the full terminal output, as for a real terminal
            return False

        def write(self, data: str) -> None:
            type(self).bytes_written += len(data)
            type(self).frames += 1

    return CountingDriver


def _run_tui(session, warmup: float, seconds: float, server: _ServerXruns) -> tuple[dict, dict]:
    """The app in this (main) thread; a timer thread takes the marks and ends it."""
    from noisyneuron.tui.app import NoisyNeuronApp

    driver = _counting_driver_class()
    app = NoisyNeuronApp(session, driver_class=driver)  # at the product's rate
    marks: list[_Mark] = []
    counts: list[tuple[int, int, int]] = []

    def timing() -> None:
        time.sleep(warmup)
        marks.append(_Mark(session, server.value()))
        counts.append((app.ticks, driver.frames, driver.bytes_written))
        app.tick_seconds.clear()
        time.sleep(seconds)
        marks.append(_Mark(session, server.value()))
        counts.append((app.ticks, driver.frames, driver.bytes_written))
        app.call_from_thread(app.exit)

    timer = threading.Thread(target=timing, daemon=True)
    timer.start()
    app.run(size=UI_SIZE)
    timer.join(5)
    if len(marks) < 2:
        raise RuntimeError("the TUI ended before the measurement did")
    window = _window(marks[0], marks[1])
    (t0, f0, b0), (t1, f1, b1) = counts
    span = window["seconds"]
    ticks = sorted(app.tick_seconds)
    ui = {
        "ui_fps": (t1 - t0) / span,
        "ui_frames_per_second": (f1 - f0) / span,
        "ui_kbytes_per_second": (b1 - b0) / 1024 / span,
        "ui_tick_ms_p50": 1000 * ticks[len(ticks) // 2] if ticks else 0.0,
        "ui_tick_ms_p99": 1000 * ticks[min(len(ticks) - 1, int(0.99 * len(ticks)))] if ticks else 0.0,
    }
    return window, ui


def _run_tui_process(spec, warmup: float, seconds: float, server: _ServerXruns) -> tuple[dict, dict]:
    """The product's architecture: the engine host in a child process, the UI here over OSC."""
    from noisyneuron.control.host import RemoteSession

    session = RemoteSession(spec)
    try:
        return _run_tui(session, warmup, seconds, server)
    finally:
        session.stop()


# ----- the run --------------------------------------------------------------------------------------------
def _demo_file(directory: str, sample_rate: float) -> str:
    import soundfile as sf

    from noisyneuron.demo import make_demo_mix

    path = os.path.join(directory, "demo.wav")
    sf.write(path, make_demo_mix(sample_rate=int(sample_rate), seconds=10.0)["mix"], int(sample_rate), subtype="FLOAT")
    return path


def run_live_bench(seconds: float = 10.0, chain: str = "separator", blocksize: int = 256,
                   modes: tuple[str, ...] = MODES, warmup: float = 2.0, osc_roundtrips: int = 1000,
                   output: str | int | None = None) -> dict:
    """Run ``chain`` live for ``seconds`` (after ``warmup``) per mode on the output device.

    Returns a JSON-able dict: ``{"modes": {mode: {...}}, "osc_roundtrip": {...}, ...}``.

    Raises:
        DeviceError: no output device (one line).
    """
    from noisyneuron.control.session import LiveSession
    from noisyneuron.realtime.chains import build_chain
    from noisyneuron.realtime.devices import resolve_device
    from noisyneuron.audio.files import FileSource
    from noisyneuron.tui.app import DEFAULT_POLL_HZ

    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
    device = resolve_device(output, "output")  # DeviceError when there is none
    rate = device.default_sample_rate
    result: dict = {"chain": chain, "device": f"{device.name} ({device.host_api})", "sample_rate": rate,
                    "blocksize": blocksize, "seconds": seconds, "warmup": warmup, "input": "demo song (looping)",
                    "ui_size": list(UI_SIZE), "poll_hz": DEFAULT_POLL_HZ, "modes": {}}
    server = _ServerXruns()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            demo = _demo_file(tmp, rate)
            for mode in modes:
                if mode == "tui-process":
                    from noisyneuron.control.live import LiveSpec

                    spec = LiveSpec(chain=chain, input_file=demo, loop=True, output=device.index, sample_rate=rate,
                                    blocksize=blocksize)
                    window, ui = _run_tui_process(spec, warmup, seconds, server)
                    result["modes"][mode] = {**window, **ui}
                    continue
                source = FileSource(demo, rate, 2, blocksize, loop=True)
                session = LiveSession(build_chain(chain), input=source, output=device.index, sample_rate=rate,
                                      blocksize=blocksize, display=(mode == "tui"))
                session.start()
                try:
                    result["latency_ms"] = session.latency_seconds * 1000
                    if mode == "headless":
                        time.sleep(warmup)
                        a = _Mark(session, server.value())
                        time.sleep(seconds)
                        window, ui = _window(a, _Mark(session, server.value())), {}
                    else:
                        window, ui = _run_tui(session, warmup, seconds, server)
                finally:
                    session.stop()
                    close = getattr(source, "close", None)
                    if callable(close):
                        close()
                result["modes"][mode] = {**window, **ui}
    finally:
        server.close()
    if osc_roundtrips:
        try:
            from noisyneuron.control.osc import bench_osc_roundtrip
        except ImportError as exc:  # pragma: no cover - OSC ships with the package
            result["osc_roundtrip"] = {"skipped": str(exc)}
        else:
            result["osc_roundtrip"] = bench_osc_roundtrip(osc_roundtrips)
    result["verdict"] = _verdict(result["modes"])
    return result


def _verdict(modes: dict) -> str:
    base = modes.get("headless")
    tui = modes.get("tui")
    if base is None or tui is None:
        return ""
    extra = (tui["xruns"] - base["xruns"], tui["late_blocks"] - base["late_blocks"])
    p99 = (tui["processing_load_p99"] - base["processing_load_p99"]) * 100
    if extra[0] <= 0 and extra[1] <= 0:
        return (f"in-process TUI: no xruns or late blocks beyond headless; processing p99 {p99:+.1f} points "
                f"at {tui.get('ui_fps', 0):.0f} fps")
    return (f"in-process TUI added {max(0, extra[0])} xruns and {max(0, extra[1])} late blocks "
            f"(p99 {p99:+.1f} points) in {tui['seconds']:.0f} s")


def format_live_table(result: dict) -> str:
    """The report as a plain-text table."""
    lines = [
        f"live: {result['chain']} chain on {result['device']}, {result['sample_rate']:g} Hz, block {result['blocksize']}, "
        f"{result['seconds']:g} s per mode after {result['warmup']:g} s warm-up, input: {result['input']}",
        f"{'mode':<12} {'xruns':>5} {'srv':>4} {'late':>4} {'cb load':>7} {'proc mean':>9} {'p99':>6} {'max':>7} "
        f"{'ui fps':>6} {'tick p99':>8}",
    ]
    for mode, r in result["modes"].items():
        srv = "-" if r.get("server_xruns") is None else str(r["server_xruns"])
        fps = f"{r['ui_fps']:.1f}" if "ui_fps" in r else "-"
        tick = f"{r['ui_tick_ms_p99']:.2f}ms" if "ui_tick_ms_p99" in r else "-"
        lines.append(
            f"{mode:<12} {r['xruns']:>5} {srv:>4} {r['late_blocks']:>4} {r['callback_load'] * 100:>6.1f}% "
            f"{r['processing_load_mean'] * 100:>8.1f}% {r['processing_load_p99'] * 100:>5.1f}% "
            f"{r['processing_load_max'] * 100:>6.1f}% {fps:>6} {tick:>8}"
        )
    rt = result.get("osc_roundtrip")
    if rt and "p50_ms" in rt:
        lines.append(f"OSC set + query round trip on loopback ({rt['n']}): p50 {rt['p50_ms']:.3f} ms, p99 {rt['p99_ms']:.3f} ms")
    elif rt:
        lines.append(f"OSC round trip: skipped ({rt.get('skipped')})")
    if result.get("verdict"):
        lines.append(result["verdict"])
    lines.append("xruns: PortAudio over/underflows (srv: the JACK server's count); late: blocks the processing thread "
                 "delivered too late; proc: chain time per block / block duration; tick: one readings poll + panel update")
    return "\n".join(lines)
