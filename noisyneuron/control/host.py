"""The engine and the terminal UI in two processes: the UI is just another control client.

``noisyneuron live`` with its terminal UI starts the engine in a child process, the *engine host*
(``python -m noisyneuron.control.host``), and draws the UI in its own process. Measured with
``noisyneuron bench live`` (README, "Terminal UI"): Python UI code in the engine's process holds
the GIL that the processing thread needs between its numba and torch calls, and the neural
separator then delivers blocks late; in its own process the UI costs the audio only its CPU time.

How they talk:

- **controls** go over OSC, the way a DAW talks to the host: the UI keeps a mirror of the chain's
  controls (same ranges, units and display strings), sends every change it makes (keys, MIDI,
  presets) as ``<address>/f <value>`` and registers for feedback, so changes from other clients
  (a DAW, TouchOSC) show up in it. The host runs the OSC server the user configured, or a private
  one on ``127.0.0.1`` with a free port when OSC is off;
- **what is drawn** at frame rate (meters, engine figures, the classifier's reading, the recent
  output for the spectrum) is in a small file mapped into both processes (:class:`DisplayBlock`):
  the host's processing thread fills the sample ring (one numba call per block, no GIL held), its
  main thread copies meters and counters 30 times a second; the UI only reads;
- **life**: the host reads its stdin, a pipe from the UI: when the UI exits (or dies), the pipe
  closes and the host stops. It writes one JSON line when ready (controls, devices, latency)
  and one when it stops (final counters). Choosing another device restarts the host with the
  controls' current values.

MIDI runs in the UI process, on the mirror (its reader thread polls the ports every 2 ms: better
kept away from the GIL the audio needs); its changes reach the host over OSC like the UI's own.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from noisyneuron.errors import UserError

__all__ = ["DisplayBlock", "EngineHostError", "RemoteSession", "host_main"]

TAP_SAMPLES = 8192
READING_BYTES = 2048
HOST_TICK_HZ = 30.0

# stats slots (float64)
(LATENCY_MS, SAMPLE_RATE, BLOCKSIZE, BLOCKS, XRUNS, LATE, DROPPED, CALLBACK_LOAD, LOAD_MEAN, LOAD_P99,
 LOAD_MAX, NONFINITE, ERRORS, SECONDS, FINISHED, HEARTBEAT, OSC_RECEIVED, OSC_REJECTED, OSC_CLIENTS,
 OSC_PORT, METERS_VALID, RUN_SECONDS, DROPPED_INPUT_SECONDS, LATE_OUTPUT_SECONDS, LOST_SECONDS, LOST_SHARE) = range(26)
_N_STATS = 32


class EngineHostError(UserError):
    """The engine host could not start (a device error, a bad setting): its one-line message."""


class DisplayBlock:
    """What the UI draws, in a file mapped into both processes.

    Layout: 32 float64 counters (:data:`LATENCY_MS` ...), the meters (float32, side x kind x
    channel: input/output x peak/hold/rms x 2), the sample ring's write index (int64) and ring
    (float32, :data:`TAP_SAMPLES`), and the classifier's latest reading as JSON behind a sequence
    number (odd while being written).

    Args:
        path: the file; ``create`` makes it (the UI does; the host maps the existing one).
    """

    def __init__(self, path: str | os.PathLike, create: bool = False) -> None:
        self.path = Path(path)
        offsets = {}
        size = 0
        for name, nbytes in (("stats", 8 * _N_STATS), ("meters", 4 * 12), ("tap_index", 8),
                             ("tap_ring", 4 * TAP_SAMPLES), ("reading_seq", 8), ("reading_len", 8),
                             ("reading", READING_BYTES)):
            size = (size + 7) // 8 * 8
            offsets[name] = size
            size += nbytes
        if create:
            with open(self.path, "wb") as f:
                f.truncate(size)
        self._file = open(self.path, "r+b")
        self._map = mmap.mmap(self._file.fileno(), size)
        buf = self._map

        def view(name, dtype, shape):
            return np.ndarray(shape, dtype=dtype, buffer=buf, offset=offsets[name])

        self.stats = view("stats", np.float64, (_N_STATS,))
        self.meters = view("meters", np.float32, (2, 3, 2))
        self.tap_index = view("tap_index", np.int64, (1,))
        self.tap_ring = view("tap_ring", np.float32, (TAP_SAMPLES,))
        self.reading_seq = view("reading_seq", np.int64, (1,))
        self.reading_len = view("reading_len", np.int64, (1,))
        self.reading_bytes = view("reading", np.uint8, (READING_BYTES,))
        if create:
            self.meters.fill(-120.0)

    def close(self) -> None:
        for name in ("stats", "meters", "tap_index", "tap_ring", "reading_seq", "reading_len", "reading_bytes"):
            setattr(self, name, None)
        try:
            self._map.close()
        except BufferError:  # a view still alive somewhere: the mapping goes with the process
            pass
        self._file.close()

    # ----- the classifier's reading (host writes, UI reads) ----------------------------------------------
    def write_reading(self, payload: dict) -> None:
        data = json.dumps(payload).encode()[:READING_BYTES]
        self.reading_seq[0] += 1  # odd: being written
        self.reading_bytes[: len(data)] = np.frombuffer(data, dtype=np.uint8)
        self.reading_len[0] = len(data)
        self.reading_seq[0] += 1

    def read_reading(self) -> tuple[int, dict | None]:
        for _ in range(3):
            seq = int(self.reading_seq[0])
            if seq == 0:
                return 0, None
            if seq % 2:
                time.sleep(0.0002)
                continue
            n = int(self.reading_len[0])
            data = bytes(self.reading_bytes[:n])
            if int(self.reading_seq[0]) == seq:
                try:
                    return seq, json.loads(data)
                except ValueError:
                    return seq, None
        return 0, None


# ======================================================================================================
# the host (child process)
# ======================================================================================================
def _describe_controls(surface) -> list[dict]:
    out = []
    for c in surface:
        p = c.parameter
        out.append({
            "processor": c.processor, "name": c.name, "minimum": p.minimum, "maximum": p.maximum,
            "default": p.default, "unit": p.unit, "description": p.description,
            "smoothing_seconds": p.smoothing_seconds, "off_at_minimum": p.off_at_minimum, "step": p.step,
            "value": p.value,
        })
    return out


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _build_host_session(spec, block: DisplayBlock):
    """The session :func:`~noisyneuron.control.live.build_live_session` builds for ``spec`` (not
    started), its display tap on the shared block."""
    from noisyneuron.control.live import build_live_session
    from noisyneuron.realtime.tap import SampleTap

    build = build_live_session(spec, display=True)
    session = build.session
    session.tap = SampleTap(ring=block.tap_ring, index=block.tap_index)
    session.engine.on_block = session.tap.write
    return build


def _publish(block: DisplayBlock, session, reader, last_seq: list) -> None:
    """Copy meters, counters and the classifier's reading into the display block (host main thread)."""
    engine = session.engine
    st = block.stats
    for side, meter in enumerate((engine.input_meter, engine.output_meter)):
        if meter is None:
            continue
        for kind, values in enumerate((meter.peak_dbfs, meter.hold_dbfs, meter.rms_dbfs)):
            n = min(2, len(values))
            block.meters[side, kind, :n] = values[:n]
            if n == 1:
                block.meters[side, kind, 1] = values[0]
    st[METERS_VALID] = 1.0
    s = engine.stats()
    st[LATENCY_MS] = engine.latency_seconds * 1000.0
    st[SAMPLE_RATE] = engine.sample_rate
    st[BLOCKSIZE] = engine.blocksize
    st[BLOCKS] = s.blocks
    st[XRUNS] = s.xruns
    st[LATE] = s.late_blocks
    st[DROPPED] = s.dropped_frames
    st[CALLBACK_LOAD] = s.callback_load
    st[LOAD_MEAN] = s.processing_load_mean
    st[LOAD_P99] = s.processing_load_p99
    st[LOAD_MAX] = s.processing_load_max
    st[NONFINITE] = s.nonfinite_replaced
    st[ERRORS] = s.errors
    st[SECONDS] = s.seconds
    _publish_losses(st, s)
    st[FINISHED] = 1.0 if engine.finished else 0.0
    osc = session.osc
    if osc is not None:
        o = osc.stats()
        st[OSC_RECEIVED] = o.received
        st[OSC_REJECTED] = o.rejected_total
        st[OSC_CLIENTS] = len(osc.clients())
        st[OSC_PORT] = osc.port
    if reader is not None:
        r = reader.reading()
        if r is not None and getattr(r, "label", None) is not None:
            seq = getattr(r, "sequence", None)
            if seq is None or seq != last_seq[0]:
                last_seq[0] = seq
                block.write_reading({
                    "label": str(getattr(r, "label", "")),
                    "confidences": {str(k): float(v) for k, v in dict(getattr(r, "confidences", {}) or {}).items()},
                    "level_dbfs": _finite(getattr(r, "level_dbfs", None)),
                    "sequence": seq,
                    "stream_seconds": _finite(getattr(r, "stream_seconds", None)),
                    "gated": bool(getattr(r, "gated", False)),
                })
    st[HEARTBEAT] += 1


def _publish_losses(st: np.ndarray, s) -> None:
    st[RUN_SECONDS] = s.run_seconds
    st[DROPPED_INPUT_SECONDS] = s.dropped_input_seconds
    st[LATE_OUTPUT_SECONDS] = s.late_output_seconds
    st[LOST_SECONDS] = s.lost_seconds
    st[LOST_SHARE] = s.lost_share


def _finite(x):
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def host_main(argv: list[str] | None = None) -> int:
    """The engine host: ``python -m noisyneuron.control.host SPEC_JSON DISPLAY_FILE``."""
    argv = sys.argv[1:] if argv is None else argv
    from noisyneuron.control.live import LiveSpec

    spec = LiveSpec.from_json(argv[0])
    block = DisplayBlock(argv[1])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the UI (it quits through the pipe)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *a: stop.set())
    session = None
    files: list = []
    osc_error = ""
    try:
        build = _build_host_session(spec, block)
        session, files, unknown, note = build.session, build.files, build.unknown_preset_keys, build.note
        session.start()
        osc = spec.osc
        private = not osc.enabled
        bind = "127.0.0.1" if private else osc.host
        allow = list(osc.allow)
        if allow:  # the UI is a client too: from loopback, or from the address it was bound to
            allow += [a for a in ("127.0.0.1", "::1", bind) if a not in allow and a not in ("0.0.0.0", "::")]
        # the UI needs feedback (changes made by others): 0 ("none") becomes 20 Hz here
        feedback_hz = float(osc.feedback_hz or 20.0)
        try:
            session.start_osc(host=bind, port=0 if private else int(osc.port), allow=allow,
                              feedback_hz=feedback_hz)
        except UserError as exc:
            # what the command line asked for must start; what only the config file asked for is
            # reported (the UI's OSC line) and the UI gets its private link, as in one process
            if private or osc.asked:
                raise
            osc_error = str(exc)
            private = True
            session.start_osc(host="127.0.0.1", port=0, allow=[], feedback_hz=feedback_hz)
    except UserError as exc:
        if session is not None:
            session.stop()
        _emit({"error": str(exc), "exit_code": exc.exit_code})
        return exc.exit_code
    engine = session.engine
    reader = next((p for p in session.chain.processors if callable(getattr(p, "reading", None))), None)
    in_name, out_name = engine.describe_endpoints()
    in_name = spec.input_file or in_name
    out_name = spec.output_file or out_name
    _publish(block, session, reader, [None])
    _emit({
        "ready": True, "pid": os.getpid(), "chain": session.chain.name, "note": note,
        "controls": _describe_controls(session.surface), "reader": reader.name if reader else None,
        "osc_host": session.osc.host, "osc_port": session.osc.port, "osc_private": private,
        "osc_error": osc_error,
        "osc_describe": session.osc.describe(), "input": in_name, "output": out_name,
        "sample_rate": engine.sample_rate, "blocksize": engine.blocksize,
        "latency": engine.latency_breakdown(), "latency_ms": engine.latency_seconds * 1000.0,
        "preset_unknown": unknown, "memory_locked": getattr(engine, "memory_locked", False),
    })
    last_seq: list = [None]
    stdin = sys.stdin.fileno()
    period = 1.0 / HOST_TICK_HZ
    try:
        while not stop.is_set():
            ready, _, _ = select.select([stdin], [], [], period)
            if ready and not os.read(stdin, 4096):
                break  # the UI went away
            if session.engine.finished or session.failure is not None:
                break  # a file input ended (the UI sees FINISHED and says so), or processing failed
            _publish(block, session, reader, last_seq)
    finally:
        osc_summary = session.osc.stats().summary() if session.osc is not None else ""
        session.stop()
        failed, exit_code = _close_files(files, session, bool(spec.output_file))
        _publish_final(block, session)
        stats = session.engine.stats()
        _emit({"final": stats.as_dict(), "summary": stats.summary(), "osc_summary": osc_summary,
               "latency": session.engine.latency_breakdown(), "sample_rate": session.engine.sample_rate,
               "blocksize": session.engine.blocksize, "backend": session.engine.backend,
               "wrote": str(getattr(files[0], "path", "")) if files and spec.output_file and not failed else "",
               "failed": failed, "exit_code": exit_code})
        block.close()
    return 0


def _close_files(files: list, session, output_file: bool) -> tuple[str, int]:
    """Close the file ends after the engine stopped: a recording gets its final name only when
    processing did not fail and the file closed cleanly (else it is kept as incomplete).
    Returns (one line saying what failed, or "", the exit status for it)."""
    failure = session.failure
    failed = ""
    if failure is not None:
        failed = f"live stopped after {session.engine.stats().seconds:.1f} s: {' '.join(str(failure).split())}"
    for f in files:
        if output_file and failure is not None:
            f.abort(announce=False)
            failed = f.kept_message(failed)
            continue
        try:
            f.close()
        except UserError as exc:
            failure, failed = exc, str(exc)
    if failure is None:
        return "", 0
    return failed, failure.exit_code if isinstance(failure, UserError) else 1


def _publish_final(block: DisplayBlock, session) -> None:
    try:
        s = session.engine.stats()
        block.stats[XRUNS] = s.xruns
        block.stats[LATE] = s.late_blocks
        block.stats[BLOCKS] = s.blocks
        _publish_losses(block.stats, s)
        block.stats[FINISHED] = 1.0 if session.engine.finished else 0.0
    except Exception:  # noqa: BLE001
        pass


# ======================================================================================================
# the UI side
# ======================================================================================================
class _SharedMeter:
    """A meter's readings as views of the display block (what poll_readings reads)."""

    def __init__(self, block: DisplayBlock, side: int) -> None:
        self.peak_dbfs = block.meters[side, 0]
        self.hold_dbfs = block.meters[side, 1]
        self.rms_dbfs = block.meters[side, 2]


@dataclass(frozen=True)
class RemoteReading:
    """The classifier's reading as the host published it."""

    label: str
    confidences: dict
    level_dbfs: float | None
    sequence: int | None
    stream_seconds: float | None
    gated: bool


def _mirror_chain(ready: dict, current_block):
    """A chain of parameter-only processors with the host's controls (never processes audio)."""
    from noisyneuron.realtime.chain import Chain
    from noisyneuron.realtime.parameters import Parameter
    from noisyneuron.realtime.processor import Processor

    class MirrorProcessor(Processor):
        kind = "mirror"

        def process(self, block) -> None:  # pragma: no cover - the mirror never runs audio
            raise RuntimeError("a mirror of the engine host's chain does not process audio")

    class MirrorReader(MirrorProcessor):
        def reading(self):
            seq, payload = current_block().read_reading()
            if not payload:
                return None
            return RemoteReading(payload.get("label", ""), payload.get("confidences", {}), payload.get("level_dbfs"),
                                 payload.get("sequence", seq), payload.get("stream_seconds"), bool(payload.get("gated")))

    processors: dict[str, Processor] = {}
    chain_values = {}
    for d in ready["controls"]:
        name = d["processor"]
        if name == "chain" or d["name"] == "bypass":
            chain_values[(name, d["name"])] = d["value"]
            if name != "chain" and name not in processors:
                processors[name] = (MirrorReader if name == ready.get("reader") else MirrorProcessor)(name)
            continue
        if name not in processors:
            processors[name] = (MirrorReader if name == ready.get("reader") else MirrorProcessor)(name)
        p = Parameter(d["name"], d["minimum"], d["maximum"], d["default"], d["unit"], d["description"],
                      smoothing_seconds=d["smoothing_seconds"], off_at_minimum=d["off_at_minimum"], step=d["step"])
        p.set(d["value"])
        processors[name].add_parameter(p)
    chain = Chain(list(processors.values()), name=ready["chain"])
    for (name, param), value in chain_values.items():
        (chain.mix if name == "chain" else chain.bypass[name]).set(value)
    return chain


class _HostProcess:
    """One engine host child: started with a spec, read until ready, stopped through its stdin."""

    def __init__(self, spec, display_path: Path, timeout: float = 120.0) -> None:
        self.stderr_lines: deque[str] = deque(maxlen=200)
        self.final: dict | None = None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "noisyneuron.control.host", spec.to_json(), str(display_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,  # the terminal's signals (tmux closing) go to the UI, which stops us
        )
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.ready = self._read_ready(timeout)
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _drain_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr_lines.append(line.rstrip("\n"))

    def _read_ready(self, timeout: float) -> dict:
        result: list = []

        def read() -> None:
            for line in self.proc.stdout:
                try:
                    msg = json.loads(line)
                except ValueError:
                    self.stderr_lines.append(line.rstrip("\n"))
                    continue
                result.append(msg)
                return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not result:
            self.kill()
            tail = " | ".join(list(self.stderr_lines)[-3:])
            raise EngineHostError(f"the audio engine process did not start{': ' + tail if tail else ''}")
        msg = result[0]
        if "error" in msg:
            self.proc.wait(10)
            err = EngineHostError(msg["error"])
            err.exit_code = int(msg.get("exit_code", 2))
            raise err
        return msg

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "final" in msg:
                self.final = msg

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> dict | None:
        """Close the pipe (the host stops), wait, return its final counters."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        deadline = time.monotonic() + 2.0
        while self.final is None and time.monotonic() < deadline and self.proc.stdout and not self.proc.stdout.closed:
            time.sleep(0.01)
        return self.final

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _start_host(spec, timeout: float = 120.0) -> tuple["_HostProcess", DisplayBlock]:
    """Start an engine host with a new display file; the file is unlinked as soon as the host has
    it mapped (or failed), so nothing is left behind however either process ends."""
    fd, path = tempfile.mkstemp(prefix="noisyneuron-display-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.close(fd)
    try:
        block = DisplayBlock(path, create=True)
        try:
            host = _HostProcess(spec, Path(path), timeout)
        except BaseException:
            block.close()
            raise
    finally:
        os.unlink(path)
    return host, block


class RemoteSession:
    """What the UI needs of a live session, with the engine in a host process.

    It has the attributes of :class:`~noisyneuron.control.session.LiveSession` that the app and
    :func:`~noisyneuron.control.readings.poll_readings` use: a mirror ``chain`` and ``surface``
    (changes are sent to the host over OSC), ``tap``, meters, ``stats()``, ``switch_devices``...

    Args:
        spec: what the host runs, a :class:`~noisyneuron.control.live.LiveSpec` (sent to it as
            JSON; it builds the session with the same builder as a run in one process).
        timeout: seconds to wait for the host to be ready.

    Raises:
        EngineHostError: the host could not start (its one-line message).
    """

    def __init__(self, spec, timeout: float = 120.0) -> None:
        from noisyneuron.control.surface import ControlSurface

        self.spec = spec
        self.host, self.block = _start_host(self.spec, timeout)
        ready = self.host.ready
        self.ready = ready
        self.chain = _mirror_chain(ready, lambda: self.block)
        self.surface = ControlSurface(self.chain)
        self._use_block(self.block)
        self.blocksize = int(ready["blocksize"])
        self.input_spec = spec.input
        self.output_spec = spec.output
        self.midi = None
        #: one line when the config file's OSC server could not start (the UI then has its private link)
        self.osc_error = str(ready.get("osc_error") or "")
        self.midi_error = ""
        self.preset_name = spec.preset_name or ""
        self.final: dict | None = None
        self._sent: dict[str, deque] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connect()
        self._unsubscribe = self.surface.subscribe(self._forward)
        self.osc = _RemoteOscStatus(self)

    # ----- controls: mirror <-> host over OSC -------------------------------------------------------------
    def _forward(self, control, value: float, source: str) -> None:
        if source == "engine":
            return
        sent = self._sent.setdefault(control.address, deque(maxlen=16))
        sent.append((time.monotonic(), float(value)))
        try:
            self._client.send(control.address + "/f", float(value))
        except OSError:
            pass

    def _connect(self) -> None:
        """Register with the host's OSC server for feedback, take the values it replies with, and
        start the thread that applies later feedback."""
        from noisyneuron.control.osc import OscClient

        host = self.ready["osc_host"]
        self._client = OscClient("127.0.0.1" if host in ("0.0.0.0", "::", "") else host, int(self.ready["osc_port"]))
        self._client.send("/noisyneuron/register")
        last = list(self.surface.controls)[-1] + "/s"  # the registration dump ends with this
        for m in self._client.receive(5.0, until=last):
            self._apply_feedback(m)
        self._stop = threading.Event()
        self._receiver = threading.Thread(target=self._receive, name="noisyneuron-ui-osc", daemon=True)
        self._receiver.start()

    def _apply_feedback(self, m) -> None:
        if not m.address.endswith("/f") or not m.args:
            return
        address = m.address[:-2]
        control = self.surface.controls.get(address)
        if control is None:
            return
        try:
            value = float(m.args[0])
        except (TypeError, ValueError):
            return
        if self._is_echo(address, value):
            return
        try:
            self.surface.set(control, value, source="engine")
        except ValueError:
            pass

    def _receive(self) -> None:
        client = self._client
        while not self._stop.is_set():
            try:
                messages = client.receive(0.1)
            except OSError:
                return
            for m in messages:
                self._apply_feedback(m)

    def _is_echo(self, address: str, value: float) -> bool:
        """True for feedback of a value this UI sent in the last half second (its own echo, which
        may arrive after a newer local change)."""
        sent = self._sent.get(address)
        if not sent:
            return False
        now = time.monotonic()
        return any(now - t < 0.5 and abs(v - value) <= 1e-6 * max(1.0, abs(v)) for t, v in sent)

    # ----- readings (the engine's reading attributes) --------------------------------------------------------
    @property
    def latency_seconds(self) -> float:
        return float(self.block.stats[LATENCY_MS]) / 1000.0

    @property
    def sample_rate(self) -> float:
        return float(self.block.stats[SAMPLE_RATE]) or float(self.ready["sample_rate"])

    @property
    def buffer_blocks(self) -> int:
        """The ring margin the host runs with, in blocks."""
        return int(self.spec.buffer_blocks or 2)

    def stats(self):
        from noisyneuron.realtime.engine import EngineStats

        st = self.block.stats
        return EngineStats(
            blocks=int(st[BLOCKS]), xruns=int(st[XRUNS]), late_blocks=int(st[LATE]), dropped_frames=int(st[DROPPED]),
            callback_load=float(st[CALLBACK_LOAD]), processing_load_mean=float(st[LOAD_MEAN]),
            processing_load_p99=float(st[LOAD_P99]), processing_load_max=float(st[LOAD_MAX]),
            nonfinite_replaced=int(st[NONFINITE]), errors=int(st[ERRORS]), seconds=float(st[SECONDS]),
            run_seconds=float(st[RUN_SECONDS]), dropped_input_seconds=float(st[DROPPED_INPUT_SECONDS]),
            late_output_seconds=float(st[LATE_OUTPUT_SECONDS]), lost_seconds=float(st[LOST_SECONDS]),
            lost_share=float(st[LOST_SHARE]),
        )

    def latency_breakdown(self) -> dict:
        return dict(self.ready["latency"])

    def describe_endpoints(self) -> tuple[str, str]:
        return self.ready["input"], self.ready["output"]

    def device_names(self) -> tuple[str | None, str | None]:
        """The input and output device names (None for an end that is a file)."""
        return (None if self.spec.input_file else self.ready["input"].split(" (")[0],
                None if self.spec.output_file else self.ready["output"].split(" (")[0])

    @property
    def finished(self) -> bool:
        return bool(self.block.stats[FINISHED]) or not self.host.alive

    @property
    def running(self) -> bool:
        return self.host.alive

    def end_reason(self) -> str | None:
        """Why the audio stopped by itself (one line), or None while it runs."""
        if self.block.stats[FINISHED]:
            return "input file finished"
        if not self.host.alive and not self._lock.locked():
            tail = " | ".join(list(self.host.stderr_lines)[-2:])
            return f"the audio engine process stopped (exit status {self.host.proc.returncode})" + (f": {tail}" if tail else "")
        return None

    # ----- devices -------------------------------------------------------------------------------------------
    def switch_devices(self, input: object = ..., output: object = ...) -> None:
        """Restart the host on other devices with the controls' current values. If that fails, the
        old devices are started again and the error is raised."""
        with self._lock:
            values = self.surface.snapshot()
            old_spec = self.spec.with_devices(values=values)
            spec = self.spec.with_devices(input, output, values=values)
            self.host.stop()
            try:
                host, block = _start_host(spec)
            except UserError:
                host, block = _start_host(old_spec)
                self._adopt(host, block, old_spec)
                raise
            self._adopt(host, block, spec)

    def _use_block(self, block: DisplayBlock) -> None:
        from noisyneuron.realtime.tap import SampleTap

        self.block = block
        self.tap = SampleTap(ring=block.tap_ring, index=block.tap_index)
        self.input_meter = _SharedMeter(block, 0)
        self.output_meter = _SharedMeter(block, 1)

    def _adopt(self, host: "_HostProcess", block: DisplayBlock, spec) -> None:
        old = self.block
        self.host = host
        self._use_block(block)
        old.close()
        self.ready = host.ready
        self.osc_error = str(self.ready.get("osc_error") or "")
        self.spec = spec
        self.input_spec = spec.input
        self.output_spec = spec.output
        self._stop.set()
        self._receiver.join(2)
        self._client.close()
        self._connect()

    # ----- MIDI (in this process, on the mirror) ------------------------------------------------------------
    def start_midi(self, inputs=None, virtual: bool = False, feedback=None, mapping=None, api=None):
        from noisyneuron.control.midi import MidiController

        controller = MidiController(self.surface, inputs=list(inputs or []), virtual=bool(virtual),
                                    mapping=mapping, feedback=feedback or None, api=api)
        controller.start()
        self.midi = controller
        return controller

    def midi_mappings(self):
        mapping = getattr(self.midi, "mapping", None) if self.midi is not None else None
        to_dict = getattr(mapping, "to_dict", None)
        return to_dict() if callable(to_dict) else None

    # ----- life ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        """The host starts the engine by itself; nothing to do."""

    def stop(self) -> dict | None:
        """Stop MIDI, the host (its final counters are kept in :attr:`final`) and the OSC client."""
        if self.midi is not None:
            try:
                self.midi.stop()
            except Exception:  # noqa: BLE001
                pass
            self.midi = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.final = self.host.stop()
        self._stop.set()
        self._receiver.join(2)
        self._client.close()
        self.tap = None
        self.input_meter = self.output_meter = None
        self.block.close()
        return self.final

    @property
    def stderr_lines(self) -> list[str]:
        return list(self.host.stderr_lines)


class _RemoteOscStatus:
    """The host's OSC server as the UI's status line shows it."""

    def __init__(self, session: RemoteSession) -> None:
        self._session = session

    @property
    def host(self) -> str:
        return self._session.ready["osc_host"]

    @property
    def port(self) -> int:
        return int(self._session.ready["osc_port"])

    @property
    def private(self) -> bool:
        return bool(self._session.ready.get("osc_private"))

    def clients(self) -> list:
        # this UI is one of the registered clients; the others are what a user would count
        return [None] * max(0, int(self._session.block.stats[OSC_CLIENTS]) - 1)

    def stats(self):
        st = self._session.block.stats

        class _S:
            received = int(st[OSC_RECEIVED])
            rejected_total = int(st[OSC_REJECTED])

        return _S()


if __name__ == "__main__":
    raise SystemExit(host_main())
