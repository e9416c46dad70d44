"""The live audio engine: PortAudio streams, lock-free ring buffers and the processing thread.

Design (measured, see ``noisyneuron bench engine`` and the README):

- The PortAudio callback is rtmixer's, written in C. It copies input frames into a lock-free
  single-producer/single-consumer ring buffer and output frames out of another, and never takes
  Python's GIL, so nothing Python does (the UI, garbage collection, a slow model) can stall the
  audio server. On underrun it plays silence, never stale samples.
- A processing thread takes fixed blocks of ``blocksize`` frames from the input ring, runs the
  :class:`~noisyneuron.realtime.chain.Chain`, and writes them to the output ring, which starts
  with ``buffer_blocks * blocksize`` frames of silence: that prefill is the thread's margin for
  scheduling jitter.
- Latency is kept constant: between callbacks, (frames in the input ring) + (frames in the
  output ring) equals the prefill exactly while nothing goes wrong. If the output ran dry (the
  thread was late), the thread drops the excess input so the latency returns to the reported
  value instead of growing.
- What is lost is counted against the device's own clock (rtmixer's count of callbacks): input
  the device delivered that never reached the output, and silence the output played because its
  ring ran dry (:class:`EngineStats`). :class:`SlowMachineWatch` turns them into one plain
  warning when the machine is too slow for the chain.

A plain sounddevice callback that processes the chain inside the PortAudio callback is kept as
``backend="callback"``, as the measured peer: under Python load in other threads it makes the
audio server miss deadlines (xruns), because the callback must wait for the GIL.

Reported latency (:attr:`Engine.latency_samples`) = PortAudio's input latency + its output
latency + the ring prefill + the chain's latency; ``tests/test_engine_jack.py`` measures the
round trip through a real JACK server against it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass

import numpy as np
import sounddevice as sd

from noisyneuron.dsp.meters import LevelMeter
from noisyneuron.errors import DeviceError
from noisyneuron.realtime.chain import Chain
from noisyneuron.realtime.devices import DeviceInfo, check_stream_settings, resolve_device

__all__ = ["Engine", "EngineStats", "BACKENDS", "SlowMachineWatch", "centre_cut_would_help",
           "slow_machine_advice", "slow_run_verdict"]

BACKENDS = ("rtmixer", "callback")

#: Python's GIL hand-over interval while the engine runs, in seconds. The default 5 ms is as
#: long as a 256-frame block at 48 kHz; 0.5 ms lets the processing thread in on time even when
#: another thread runs pure Python (measured: 333 late blocks in 8 s at 5 ms, 0 at 0.5 ms).
SWITCH_INTERVAL_SECONDS = 0.0005

_HISTORY = 4096  # processing-time samples kept for percentiles
_PERSISTENT_SECONDS = 0.003  # a ring-fill deviation must last this long before it is corrected
_FINAL_FETCH_SECONDS = 0.5  # at stop, wait this long at most for the device's last callback count

#: the machine is "too slow for the chain" when more than this share of the last
#: :data:`SLOW_WINDOW_SECONDS` was lost (see :class:`SlowMachineWatch`)
SLOW_LOST_SHARE = 0.01
SLOW_WINDOW_SECONDS = 10.0
#: ... or when audio is being lost and the chain's processing time per block, at the 99th
#: percentile, is more than this many blocks, and more than the ring's margin (``buffer_blocks``):
#: then about one block in a hundred must come late. Over 1.0 alone is no sign: the neural
#: separator works a hop every other block, so its p99 is above one block by design and the
#: margin absorbs it
SLOW_P99_BLOCKS = 1.0


@dataclass
class EngineStats:
    """Counters of a running or stopped engine.

    What was lost is counted against the device's clock: rtmixer counts the stream's callbacks,
    so the frames the device delivered and asked for are known exactly (``blocksize`` per
    callback). While the stream runs, that count is fetched every 0.25 s, so the loss figures
    may trail the truth by up to about that much (never more than the truth); at :meth:`Engine.stop`
    they are counted once more, up to the moment processing stopped. The callback backend has no
    rings: its misses are its xruns, and its loss figures stay 0.

    Attributes:
        blocks: blocks processed by the chain.
        xruns: over/underflows PortAudio reported (the audio server missed a deadline).
        late_blocks: times the output ring ran dry because processing was late (silence played),
            or the input ring overflowed; a count of events, see the seconds below for how much.
        dropped_frames: input frames (samples per channel) dropped to bring latency back to its
            reported value (part of ``dropped_input_seconds``).
        callback_load: PortAudio's estimate of the audio callback's CPU load (0..1).
        processing_load_mean: mean processing time per block / block duration.
        processing_load_p99: 99th percentile of the same.
        processing_load_max: maximum of the same.
        nonfinite_replaced: NaN/Inf samples replaced with silence (input and output of the chain).
        errors: exceptions caught in the audio path (a bug if not 0; the first is ``first_error``),
            including the one that stopped the processing thread (see :attr:`Engine.failure`).
        first_error: text of the first such exception.
        seconds: seconds of audio processed by the chain (``blocks * blocksize / rate``).
        run_seconds: wall-clock seconds the stream has run (since it started; until processing
            stopped, once stopped).
        dropped_input_seconds: seconds of input the device delivered that never reached the
            output: dropped to keep latency constant (``dropped_frames``), flushed when the input
            ring overflowed (processing stalled for seconds), not recorded while the input was
            being restarted after that, or processed but discarded because the output ring was
            full. Input waiting in the ring (the normal latency) is not lost.
        late_output_seconds: seconds of silence the output played because its ring ran dry
            (processing was late), counted exactly: device frames asked for minus frames taken
            from the ring. The ring's prefill is not late.
        lost_seconds: the larger of the two (in a duplex run they are mostly the same gap seen
            from each end: while the output plays silence, the input it would have carried piles
            up and is dropped; so they are not added).
        lost_share: ``lost_seconds / run_seconds``, 0..1.

    The four loss figures come from the rtmixer backend's rings; ``backend="callback"`` (the
    benchmark's peer) has no rings, processes every block the device asks for in place, and
    its glitches show only as ``xruns`` (PortAudio's status flags), so it reports them as 0.
    """

    blocks: int = 0
    xruns: int = 0
    late_blocks: int = 0
    dropped_frames: int = 0
    callback_load: float = 0.0
    processing_load_mean: float = 0.0
    processing_load_p99: float = 0.0
    processing_load_max: float = 0.0
    nonfinite_replaced: int = 0
    errors: int = 0
    first_error: str = ""
    seconds: float = 0.0
    run_seconds: float = 0.0
    dropped_input_seconds: float = 0.0
    late_output_seconds: float = 0.0
    lost_seconds: float = 0.0
    lost_share: float = 0.0

    def as_dict(self) -> dict:
        """Every field (what ``live --stats-json`` writes under ``stats``); seconds in seconds,
        shares 0..1."""
        return asdict(self)

    def lost_text(self) -> str:
        """``lost 1.2 s (3.4%)``: :attr:`lost_seconds` and :attr:`lost_share` for status lines."""
        return f"lost {_seconds(self.lost_seconds)} ({self.lost_share * 100:.1f}%)"

    def summary(self) -> str:
        """One line for the CLI, e.g. ``ran 60.0 s (60.0 s of audio processed): 11250 blocks,
        xruns 0, late blocks 0, ..., nothing lost (input dropped 0.0 s, output late 0.0 s)``."""
        text = (
            f"ran {self.run_seconds:.1f} s ({self.seconds:.1f} s of audio processed): {self.blocks} blocks, "
            f"xruns {self.xruns}, late blocks "
            f"{self.late_blocks}, processing load mean {self.processing_load_mean * 100:.1f}% "
            f"p99 {self.processing_load_p99 * 100:.1f}% max {self.processing_load_max * 100:.1f}%"
        )
        if self.nonfinite_replaced:
            text += f", {self.nonfinite_replaced} NaN/Inf samples replaced"
        if self.errors:
            text += f", {self.errors} processing errors (first: {self.first_error})"
        lost = ("nothing lost" if self.lost_seconds <= 0 else
                f"lost {_seconds(self.lost_seconds)}, {self.lost_share * 100:.1f}% of the run")
        text += (f", {lost} (input dropped {_seconds(self.dropped_input_seconds)}, "
                 f"output late {_seconds(self.late_output_seconds)})")
        return text


def _seconds(x: float) -> str:
    """``1.2 s``; ``0.04 s`` below a second (a lost block is 5 ms: not ``0.0 s``)."""
    return f"{x:.1f} s" if x >= 1.0 or x == 0 else f"{x:.2f} s" if x >= 0.005 else f"{x * 1000:.1f} ms"


_LIGHT_PROCESSORS = frozenset({"karaoke", "classifier", "monitor"})  # the centre cut (kind and name), the monitor


def centre_cut_would_help(chain) -> bool:
    """False for a chain that is only the DSP centre cut and/or the monitor (nothing cheaper to
    suggest), True otherwise (the neural separator, anything else)."""
    processors = list(getattr(chain, "processors", []) or [])
    return not processors or not all(
        getattr(p, "kind", "") in _LIGHT_PROCESSORS or getattr(p, "name", "") in _LIGHT_PROCESSORS for p in processors
    )


def slow_machine_advice(stats: EngineStats, buffer_blocks: int | None = None, suggest_centre_cut: bool = True) -> str:
    """What to try when the machine is too slow for the chain, in one sentence."""
    lighter = suggest_centre_cut
    if stats.processing_load_mean >= 1.0:
        text = (f"the chain needs {stats.processing_load_mean * 100:.0f}% of real time on average here, "
                f"so no buffer can keep up: ")
        text += "try `--chain centre-cut`, or " if lighter else "try "
        return text + "stopping other work on this machine (`--buffer-blocks` only absorbs short stalls)"
    more = max(4, 2 * (buffer_blocks or 2))
    text = f"try a larger `--buffer-blocks {more}` (more margin for stalls, more latency)"
    if lighter:
        text += ", or `--chain centre-cut` (the DSP karaoke, far cheaper)"
    return text + ", or stopping other work on this machine"


def _chain_words(name: str) -> str:
    """``the karaoke chain``, or ``this chain`` when it has no name."""
    return f"the {name} chain" if name else "this chain"


def slow_run_verdict(stats: EngineStats, chain=None, buffer_blocks: int | None = None) -> str | None:
    """One line for the end of a run that lost more than :data:`SLOW_LOST_SHARE` of itself, or None."""
    if stats.lost_share <= SLOW_LOST_SHARE:
        return None
    name = _chain_words(str(getattr(chain, "name", "") or ""))
    return (f"warning: the machine was too slow for {name}: {_seconds(stats.lost_seconds)} of the "
            f"{stats.run_seconds:.1f} s run lost ({stats.lost_share * 100:.1f}%); "
            + slow_machine_advice(stats, buffer_blocks, chain is None or centre_cut_would_help(chain)))


class SlowMachineWatch:
    """Says, once, when the machine is too slow for the chain; again only if that comes back
    after the run has recovered (nothing lost for a whole window).

    Feed it :class:`EngineStats` snapshots (any rate, e.g. the status line's once a second). It
    is "too slow" while more than ``share`` of the last ``window_seconds`` of the run was lost,
    or while audio is being lost at all and the processing time per block at the 99th percentile
    is over ``p99_blocks`` and over the ring's margin of ``buffer_blocks`` blocks.

    Args:
        chain: the chain that runs (its name is in the message; ``--chain centre-cut`` is
            suggested unless it is that already, see :func:`centre_cut_would_help`).
        buffer_blocks: the ring margin in use (the message suggests more).
    """

    def __init__(self, chain=None, buffer_blocks: int | None = None, *,
                 window_seconds: float = SLOW_WINDOW_SECONDS, share: float = SLOW_LOST_SHARE,
                 p99_blocks: float = SLOW_P99_BLOCKS) -> None:
        self.chain_name = str(getattr(chain, "name", "") or "")
        self.suggest_centre_cut = chain is None or centre_cut_would_help(chain)
        self.buffer_blocks = buffer_blocks
        self.window_seconds = float(window_seconds)
        self.share = float(share)
        self.p99_blocks = max(float(p99_blocks), float(buffer_blocks or 2))
        #: True from the warning until the run has recovered (nothing lost for a whole window)
        self.warned = False
        self._history: deque[tuple[float, float]] = deque([(0.0, 0.0)])  # (run seconds, lost seconds)

    def check(self, stats: EngineStats) -> str | None:
        """The warning line when it is due now, else None."""
        now, lost = float(getattr(stats, "run_seconds", 0.0)), float(getattr(stats, "lost_seconds", 0.0))
        if now < self._history[-1][0] or lost < self._history[-1][1]:  # a new engine (device switch)
            self._history = deque([(0.0, 0.0)])
        self._history.append((now, lost))
        while len(self._history) > 2 and now - self._history[1][0] >= self.window_seconds:
            self._history.popleft()
        then, lost_then = self._history[0]
        span = now - then
        recent = lost - lost_then
        too_slow = span >= 1.0 and (
            recent > self.share * span or (recent > 0 and getattr(stats, "processing_load_p99", 0.0) > self.p99_blocks)
        )
        if not too_slow:
            if self.warned and recent <= 0 and span >= self.window_seconds:
                self.warned = False  # recovered: nothing lost for a whole window
            return None
        if self.warned:
            return None
        self.warned = True
        return (f"warning: this machine is too slow for {_chain_words(self.chain_name)}: {_seconds(recent)} of the last {span:.0f} s "
                f"lost ({recent / span * 100:.1f}%), processing p99 {stats.processing_load_p99 * 100:.0f}% "
                f"of a block; " + slow_machine_advice(stats, self.buffer_blocks, self.suggest_centre_cut))


@dataclass
class _Endpoint:
    device: DeviceInfo | None = None
    source: object | None = None  # FileSource for input
    sink: object | None = None  # FileSink for output
    device_channels: int = 0


class Engine:
    """Runs a chain live between an input and an output.

    Each end is a device (index, part of a name, or None for the default) or a file object
    (:class:`~noisyneuron.audio.files.FileSource` for the input,
    :class:`~noisyneuron.audio.files.FileSink` for the output). At least one end must be a
    device: it provides the clock.

    Args:
        chain: the chain to run (prepared by the engine).
        input: input device spec, or a FileSource.
        output: output device spec, or a FileSink.
        sample_rate: in Hz; default: the output device's (or the input device's) default rate.
        blocksize: frames per PortAudio callback and per chain block.
        channels: channels the chain processes (2: stereo). Mono inputs are duplicated.
        backend: ``"rtmixer"`` (default) or ``"callback"`` (the measured peer; devices only).
        buffer_blocks: output ring prefill in blocks (rtmixer backend): more is safer, later.
        lock_memory: lock the process's memory in RAM on Linux (``mlockall``) so the audio
            thread never waits on a page fault; skipped where the OS refuses.
    """

    def __init__(
        self,
        chain: Chain,
        input: object = None,
        output: object = None,
        sample_rate: float | None = None,
        blocksize: int = 256,
        channels: int = 2,
        backend: str = "rtmixer",
        buffer_blocks: int = 2,
        lock_memory: bool = True,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if blocksize < 16 or blocksize > 8192:
            raise DeviceError(f"blocksize {blocksize} out of range: use 16..8192 frames")
        if buffer_blocks < 1:
            raise ValueError("buffer_blocks must be >= 1")
        self.chain = chain
        self.blocksize = int(blocksize)
        self.channels = int(channels)
        self.backend = backend
        self.buffer_blocks = int(buffer_blocks)
        self.lock_memory = lock_memory
        self.memory_locked = False
        self._in = self._endpoint(input, "input")
        self._out = self._endpoint(output, "output")
        if self._in.device is None and self._out.device is None:
            raise DeviceError(
                "live needs at least one audio device (files in and out: use `noisyneuron process`)"
            )
        if backend == "callback" and (self._in.device is None or self._out.device is None):
            raise ValueError("the callback backend runs device to device only")
        clock = self._out.device or self._in.device
        self.sample_rate = float(sample_rate or clock.default_sample_rate)
        for end, kind in ((self._in, "input"), (self._out, "output")):
            if end.device is not None:
                end.device_channels = min(
                    2,
                    end.device.max_input_channels if kind == "input" else end.device.max_output_channels,
                )
                check_stream_settings(end.device, kind, self.sample_rate, end.device_channels)
        self._stream = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._ended = threading.Event()  # finished, or the processing thread stopped on an error
        self._failure: BaseException | None = None
        self._stats = EngineStats()
        self._proc_times = np.zeros(_HISTORY, dtype=np.float64)
        self._proc_count = 0
        self._device_latency = (0, 0)
        self._saved_switch_interval = None
        # what was lost, in frames, and how long the streams ran, in seconds: the streams of
        # earlier start()/stop() cycles, then the one running now (see _reset_stream_accounts)
        self._lost_in_before = self._late_out_before = 0
        self._run_before = 0.0
        self._reset_stream_accounts()
        self.on_block = None  # optional callable(block) in the processing thread, after the chain
        #: ballistic meters of the chain's input and output (dBFS arrays read by the UI and OSC
        #: feedback; updated in the processing thread, no locks: a reader may see one block old values)
        self.input_meter: LevelMeter | None = None
        self.output_meter: LevelMeter | None = None

    # ----- set-up ---------------------------------------------------------------------------
    @staticmethod
    def _endpoint(spec: object, kind: str) -> _Endpoint:
        if spec is not None and not isinstance(spec, (str, int)):
            return _Endpoint(source=spec) if kind == "input" else _Endpoint(sink=spec)
        return _Endpoint(device=resolve_device(spec, kind))

    @property
    def ring_latency_samples(self) -> int:
        """Frames of the output ring prefill (rtmixer backend), in samples."""
        if self.backend == "callback" or self._in.device is None or self._out.device is None:
            return 0
        return self.buffer_blocks * self.blocksize

    @property
    def latency_samples(self) -> int:
        """Input-to-output latency, in samples: device in + device out + ring + chain.

        Device latencies are known once the stream is open (after :meth:`start`).
        """
        return (
            self._device_latency[0]
            + self._device_latency[1]
            + self.ring_latency_samples
            + self.chain.latency_samples
        )

    @property
    def latency_seconds(self) -> float:
        """:attr:`latency_samples` in seconds."""
        return self.latency_samples / self.sample_rate

    def latency_breakdown(self) -> dict[str, int]:
        """Each part of :attr:`latency_samples`, in samples."""
        return {
            "device_input": self._device_latency[0],
            "device_output": self._device_latency[1],
            "ring_buffer": self.ring_latency_samples,
            "chain": self.chain.latency_samples,
            "total": self.latency_samples,
        }

    def describe_endpoints(self) -> tuple[str, str]:
        """Human-readable names of the input and output."""
        def name(end: _Endpoint) -> str:
            if end.device is not None:
                return f"{end.device.name} ({end.device.host_api}, {end.device_channels} ch)"
            obj = end.source if end.source is not None else end.sink
            return str(getattr(obj, "path", obj))
        return name(self._in), name(self._out)

    # ----- life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Prepare the chain, open the stream(s) and start processing."""
        self.chain.prepare(self.sample_rate, self.blocksize, self.channels)
        self._block = np.zeros((self.blocksize, self.channels), dtype=np.float32)
        self.input_meter = LevelMeter(self.channels, self.sample_rate)
        self.output_meter = LevelMeter(self.channels, self.sample_rate)
        for meter in (self.input_meter, self.output_meter):
            meter.update(self._block)  # compile the numba kernel now, not in the audio path
            meter.reset()
        # Warm up: the first calls load compiled numba code and touch every buffer (can take
        # a few hundred ms); do it now, not in the first audio block.
        for _ in range(4):
            self.chain.process(self._block)
        self.chain.reset()
        self._block.fill(0.0)
        _freeze_heap()
        self._in_buf = np.zeros((self.blocksize, max(1, self._in.device_channels)), dtype=np.float32)
        self._out_buf = np.zeros((self.blocksize, max(1, self._out.device_channels)), dtype=np.float32)
        self._stop.clear()
        self._finished.clear()
        self._ended.clear()
        self._failure = None
        if self.lock_memory and sys.platform.startswith("linux"):
            self.memory_locked = lock_process_memory()
        self._saved_switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        try:
            if self.backend == "rtmixer":
                self._open_rtmixer()
                self._thread = threading.Thread(
                    target=self._processing_loop, name="noisyneuron-processing", daemon=True
                )
                self._thread.start()
            else:
                self._open_callback_stream()
        except sd.PortAudioError as exc:
            self._restore_switch_interval()
            raise DeviceError(f"cannot open the audio stream: {exc}") from None

    def stop(self) -> None:
        """Stop processing and close the stream. Safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._stream is not None:
            if self._stream_started is not None and self._stream_ended is None:
                self._stream_ended = time.monotonic()  # the callback backend, or a thread that failed
            try:
                self._stream.stop()
                if self.backend == "rtmixer":
                    # a fetch that completed but was not yet read, then what came after it
                    if self._stats_action is not None and self._stats_action not in self._stream.actions:
                        self._add_xruns(self._stats_action.stats)
                    self._add_xruns(self._stream.stats)
            finally:
                self._stream.close()
            self._stream = None
            self._close_stream_accounts()
        self._restore_switch_interval()
        import gc

        gc.unfreeze()  # back to ordinary collection once the audio has stopped

    def _restore_switch_interval(self) -> None:
        if self._saved_switch_interval is not None:
            sys.setswitchinterval(self._saved_switch_interval)
            self._saved_switch_interval = None

    def __enter__(self) -> "Engine":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def finished(self) -> bool:
        """True when a file input has been played to its end."""
        return self._finished.is_set()

    @property
    def failure(self) -> BaseException | None:
        """The exception that stopped the processing thread (a file input that cannot be read, a
        file output that cannot be written: e.g. a full disk), or None while it runs or after a
        normal stop. Processing has ended then: nothing more is read or written."""
        if self._failure is None and self._thread is not None and not self._thread.is_alive() \
                and not self._stop.is_set():
            self._failure = RuntimeError("the processing thread ended unexpectedly")
            self._ended.set()
        return self._failure

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a file input has ended or processing stopped on an error (:attr:`failure`),
        or ``timeout`` seconds. Returns True in either case, False on timeout."""
        return self._ended.wait(timeout) or self.failure is not None

    def stats(self) -> EngineStats:
        """A snapshot of the counters (safe from any thread)."""
        s = EngineStats(**self._stats.as_dict())
        n = min(self._proc_count, _HISTORY)
        if n:
            loads = self._proc_times[:n] * (self.sample_rate / self.blocksize)
            s.processing_load_mean = float(loads.mean())
            s.processing_load_p99 = float(np.percentile(loads, 99))
            s.processing_load_max = float(loads.max())
        s.nonfinite_replaced = self.chain.nonfinite_in + self.chain.nonfinite_out
        s.seconds = s.blocks * self.blocksize / self.sample_rate
        s.run_seconds = self._run_before
        if self._stream_started is not None:
            s.run_seconds += (self._stream_ended or time.monotonic()) - self._stream_started
        lost_in = self._lost_in_before + max(self._lost_in, self._counted_input_losses())
        late_out = self._late_out_before + self._late_out
        s.dropped_input_seconds = lost_in / self.sample_rate
        s.late_output_seconds = late_out / self.sample_rate
        s.lost_seconds = max(s.dropped_input_seconds, s.late_output_seconds)
        s.lost_share = min(1.0, s.lost_seconds / s.run_seconds) if s.run_seconds > 0 else 0.0
        if self._stream is not None:
            try:
                s.callback_load = float(self._stream.cpu_load)
            except Exception:  # stream closing
                pass
        return s

    # ----- what was lost ----------------------------------------------------------------------
    def _reset_stream_accounts(self) -> None:
        """Counters of the stream about to open (frames unless named otherwise)."""
        self._stream_started: float | None = None  # time.monotonic() when the stream started
        self._stream_ended: float | None = None  # ... and when processing stopped
        self._device_blocks = 0  # callbacks the device made, as last fetched from rtmixer
        self._fetches = 0  # fetches of rtmixer's counters completed
        self._stop_asked: float | None = None
        self._fetches_at_stop = 0
        self._blocks_at_open = self._stats.blocks
        self._dropped_at_open = self._stats.dropped_frames
        self._flushed_frames = 0  # input thrown away when the input ring overflowed
        self._discarded_frames = 0  # processed, but the output ring was full
        self._played_dead = 0  # frames that output actions already ended had taken from the ring
        self._lost_in = 0  # input lost, from the device's count (only raised)
        self._late_out = 0  # silence played for want of frames in the ring (only raised)

    def _counted_input_losses(self) -> int:
        """Input frames this stream is known to have thrown away, each where it happened (exact
        at any moment, but blind to input that was never recorded: see :meth:`_account_losses`)."""
        return (self._stats.dropped_frames - self._dropped_at_open) + self._flushed_frames + self._discarded_frames

    def _account_losses(self) -> None:
        """Count input lost and output late on this stream from the device's own count of
        callbacks (processing thread, just after a fetch of that count completed).

        Input: the device delivered ``callbacks * blocksize`` frames; what was not processed
        (and kept) and is not waiting in the input ring is lost, however it went (dropped,
        flushed, never recorded while the input action was being restarted). Output: the device
        asked for as many; what the output actions did not take from the ring was silence. The
        frames the thread reads here may include a few callbacks after the fetch, so each figure
        is at most the truth at this moment; it is only ever raised."""
        device = self._device_blocks * self.blocksize
        if self._in_ring is not None:
            kept = (self._stats.blocks - self._blocks_at_open) * self.blocksize - self._discarded_frames
            lost = device - kept - self._in_ring.read_available
            self._lost_in = max(self._lost_in, lost, self._counted_input_losses())
        if self._play is not None:
            played = self._played_dead + int(self._play.done_frames)
            self._late_out = max(self._late_out, device - played)

    def _counted_to_the_end(self) -> bool:
        """Called by the processing thread once stop is asked, each time round: True when it may
        end. It keeps the audio flowing until rtmixer has counted the device's callbacks once more
        (at most :data:`_FINAL_FETCH_SECONDS`), so the losses are counted up to the stop: what
        the stream plays while it is being stopped (the ring running dry) is not the run's."""
        now = time.monotonic()
        if self._stop_asked is None:
            self._stop_asked = now
            self._fetches_at_stop = self._fetches
            self._next_stats_time = 0.0  # fetch at once (after the one in flight, if any)
        if self._fetches > self._fetches_at_stop or now - self._stop_asked > _FINAL_FETCH_SECONDS:
            self._stream_ended = now
            return True
        return False

    def _close_stream_accounts(self) -> None:
        """Fold the closed stream's figures into the totals of earlier streams."""
        if self._stream_started is None:
            return
        self._lost_in_before += max(self._lost_in, self._counted_input_losses())
        self._late_out_before += self._late_out
        self._run_before += (self._stream_ended or time.monotonic()) - self._stream_started
        self._reset_stream_accounts()

    # ----- rtmixer backend --------------------------------------------------------------------
    def _open_rtmixer(self) -> None:
        import rtmixer

        kwargs = dict(samplerate=self.sample_rate, blocksize=self.blocksize, latency="low")
        in_ch, out_ch = self._in.device_channels, self._out.device_channels
        if self._in.device is not None and self._out.device is not None:
            stream = rtmixer.MixerAndRecorder(
                device=(self._in.device.index, self._out.device.index), channels=(in_ch, out_ch), **kwargs
            )
            lat = stream.latency
        elif self._in.device is not None:
            stream = rtmixer.Recorder(device=self._in.device.index, channels=in_ch, **kwargs)
            lat = (stream.latency, 0.0)
        else:
            stream = rtmixer.Mixer(device=self._out.device.index, channels=out_ch, **kwargs)
            lat = (0.0, stream.latency)
        self._rtmixer = rtmixer
        self._stream = stream
        self._device_latency = (int(round(lat[0] * self.sample_rate)), int(round(lat[1] * self.sample_rate)))
        # Ring sizes: the input ring holds ~2 s so a stalled thread loses nothing for a while;
        # the output ring holds the prefill plus a few blocks.
        self._in_ring = self._out_ring = None
        self._record = self._play = None
        if in_ch:
            self._in_ring = _prefaulted_ring(rtmixer, in_ch, _pow2(int(2 * self.sample_rate)))
        if out_ch:
            # The prefill: the thread's margin. With a file input it is not part of the latency
            # (there is none to speak of), but the stream must not start on an empty ring either:
            # its first callbacks would play silence for want of frames (late output).
            prefill = self.buffer_blocks * self.blocksize
            self._out_ring = _prefaulted_ring(rtmixer, out_ch, _pow2((self.buffer_blocks + 8) * self.blocksize))
            self._silence = np.zeros((prefill + self.blocksize, out_ch), np.float32)
            self._out_ring.write(self._silence[:prefill])
        # Queue both actions before the stream starts: they begin in the same callback.
        if self._in_ring is not None:
            self._record = stream.record_ringbuffer(self._in_ring)
        if self._out_ring is not None:
            self._play = stream.play_ringbuffer(self._out_ring)
        self._stats_action = None
        self._next_stats_time = 0.0
        self._pending_excess = 0
        self._pending_since = 0.0
        self._reset_stream_accounts()
        stream.start()
        self._stream_started = time.monotonic()

    def _restart_dead_actions(self) -> None:
        """Re-issue a ring-buffer action that rtmixer ended (its ring ran dry or full)."""
        actions = self._stream.actions
        if self._play is not None and self._play not in actions:
            self._stats.late_blocks += 1
            self._played_dead += int(self._play.done_frames)
            self._play = self._stream.play_ringbuffer(self._out_ring)
        if self._record is not None and self._record not in actions:
            # The input ring was full: processing stalled for seconds. Start afresh (what is in
            # the ring is lost; so is what the device delivers until the new action starts).
            self._stats.late_blocks += 1
            self._flushed_frames += self._in_ring.read_available
            self._in_ring.flush()
            self._record = self._stream.record_ringbuffer(self._in_ring)

    def _keep_latency_constant(self) -> None:
        """Drop input or add silence so that in-ring + out-ring frames equal the prefill."""
        target = self.ring_latency_samples
        for _ in range(4):  # read both fills between two callbacks
            in1 = self._in_ring.read_available
            out1 = self._out_ring.read_available
            in2 = self._in_ring.read_available
            out2 = self._out_ring.read_available
            if in1 == in2 and out1 == out2:
                break
        else:
            return
        excess = in1 + out1 - target
        # A read can land inside a callback, between its input write and its output read; that
        # state lasts microseconds. Correct only a deviation that persists for a few ms.
        if excess == 0:
            self._pending_excess = 0
            return
        now = time.perf_counter()
        if excess != self._pending_excess:
            self._pending_excess = excess
            self._pending_since = now
            return
        if now - self._pending_since < _PERSISTENT_SECONDS:
            return
        self._pending_excess = 0
        if excess > 0:
            drop = min(excess, in1)
            self._in_ring.advance_read_index(drop)
            self._stats.dropped_frames += drop
        else:
            self._out_ring.write(self._silence[: min(-excess, len(self._silence))])

    def _add_xruns(self, stats) -> None:
        self._stats.xruns += int(
            stats.input_overflows + stats.input_underflows + stats.output_overflows + stats.output_underflows
        )

    def _take_fetched(self, action) -> None:
        """Add what a completed fetch of rtmixer's counters says: xruns and callbacks."""
        self._add_xruns(action.stats)
        self._device_blocks += int(action.stats.blocks)
        self._fetches += 1

    def _poll_stream_stats(self) -> None:
        """Fetch rtmixer's over/underflow and callback counters every 0.25 s, and count the
        losses when a fetch has completed (processing thread)."""
        action = self._stats_action
        if action is not None and action not in self._stream.actions:
            self._take_fetched(action)
            self._stats_action = None
            self._account_losses()
        if self._stats_action is None:
            now = time.monotonic()
            if now >= self._next_stats_time:
                self._stats_action = self._stream.fetch_and_reset_stats()
                self._next_stats_time = now + 0.25

    def _processing_loop(self) -> None:
        """The processing thread. An error in a processor is counted and its block silenced;
        any other error (reading the input file, writing the output file, the rings) stops
        processing: it is counted, kept in :attr:`failure`, and :meth:`wait` returns."""
        try:
            self._process_blocks()
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread, not lost
            self._note_error(exc)
            self._failure = exc
            self._ended.set()

    def _process_blocks(self) -> None:
        _limit_torch_threads()
        block = self._block
        bs = self.blocksize
        duplex = self._in_ring is not None and self._out_ring is not None
        idle = min(0.001, 0.25 * bs / self.sample_rate)
        prefill = self.buffer_blocks * bs
        perf = time.perf_counter
        while not (self._stop.is_set() and self._counted_to_the_end()):
            self._restart_dead_actions()
            self._poll_stream_stats()
            if duplex:
                self._keep_latency_constant()
            if self._in_ring is not None:
                if self._in_ring.read_available < bs:
                    time.sleep(idle)
                    continue
                self._in_ring.readinto(self._in_buf)
                _to_chain_channels(self._in_buf, block)
            else:
                if self._out_ring.read_available > prefill:
                    time.sleep(idle)
                    continue
                if self._in.source.finished:
                    self._finished.set()
                    self._ended.set()
                    time.sleep(idle)
                    continue
                frames = self._in.source.read_into(block)
                if frames < bs:
                    block[frames:] = 0.0
            t0 = perf()
            try:
                self.input_meter.update(block)
                self.chain.process(block)
                self.output_meter.update(block)
                if self.on_block is not None:
                    self.on_block(block)
            except Exception as exc:  # a bug in a processor must not kill the audio
                self._note_error(exc)
                block.fill(0.0)
            self._proc_times[self._proc_count % _HISTORY] = perf() - t0
            self._proc_count += 1
            self._stats.blocks += 1
            if self._out_ring is not None:
                _from_chain_channels(block, self._out_buf)
                written = self._out_ring.write(self._out_buf)
                if written < bs:  # the ring is full (a backlog after a stall): those frames are lost
                    self._discarded_frames += bs - written
            else:
                self._out.sink.write(block)

    def _note_error(self, exc: BaseException) -> None:
        self._stats.errors += 1
        if not self._stats.first_error:
            self._stats.first_error = f"{type(exc).__name__}: {exc}"

    # ----- callback backend (the measured peer) -----------------------------------------------
    def _open_callback_stream(self) -> None:
        self._torch_limited = False
        stream = sd.Stream(
            device=(self._in.device.index, self._out.device.index),
            channels=(self._in.device_channels, self._out.device_channels),
            samplerate=self.sample_rate,
            blocksize=self.blocksize,
            dtype="float32",
            latency="low",
            callback=self._callback,
        )
        self._stream = stream
        lat = stream.latency
        self._device_latency = (int(round(lat[0] * self.sample_rate)), int(round(lat[1] * self.sample_rate)))
        self._reset_stream_accounts()
        stream.start()
        self._stream_started = time.monotonic()

    def _callback(self, indata, outdata, frames, time_info, status) -> None:
        """PortAudio callback: process the chain in place. Never raises."""
        try:
            if status:
                self._stats.xruns += 1
            if not self._torch_limited:
                _limit_torch_threads()
                self._torch_limited = True
            block = self._block[:frames]
            _to_chain_channels(indata, block)
            t0 = time.perf_counter()
            self.input_meter.update(block)
            self.chain.process(block)
            self.output_meter.update(block)
            if self.on_block is not None:
                self.on_block(block)
            self._proc_times[self._proc_count % _HISTORY] = time.perf_counter() - t0
            self._proc_count += 1
            self._stats.blocks += 1
            _from_chain_channels(block, outdata)
        except BaseException as exc:  # noqa: BLE001 - nothing may escape the callback
            outdata.fill(0.0)
            self._note_error(exc)


def _freeze_heap() -> None:
    """Collect garbage once, then move every object alive now (torch, numba, the chain) into
    Python's permanent generation, so that later collections, triggered by any thread, never
    walk them while holding the GIL. Measured with the separator chain loaded: 262k objects,
    a full collection 0.4 s (the processing thread would wait that long for the GIL), and
    2 microseconds after the freeze."""
    import gc

    gc.collect()
    gc.freeze()


def _pow2(n: int) -> int:
    """Smallest power of two >= n (PortAudio ring buffers need one)."""
    return 1 << max(0, int(n - 1).bit_length())


def lock_process_memory() -> bool:
    """Lock this process's memory in RAM (``mlockall``), now and for future allocations, so the
    audio callback never waits on a page fault. Returns False where the OS refuses (no
    privilege or limit too low; the engine then runs without it)."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.mlockall(1 | 2) == 0  # MCL_CURRENT | MCL_FUTURE (Linux values)
    except (OSError, AttributeError):
        return False


def _prefaulted_ring(rtmixer, channels: int, frames: int):
    """A float32 ring buffer of ``frames`` frames whose memory has been written once.

    The buffer comes from calloc, i.e. pages the kernel maps on first write. Left untouched, the
    C callback would take those page faults (zero-filling up to 2 MB huge pages) inside the
    audio deadline; measured as occasional xruns on the JACK dummy server.
    """
    ring = rtmixer.RingBuffer(4 * channels, frames)
    ring.write(np.zeros((frames, channels), dtype=np.float32))
    ring.flush()
    return ring


def _to_chain_channels(device_block: np.ndarray, block: np.ndarray) -> None:
    """Copy device channels into chain channels: mono is duplicated, extra channels dropped."""
    if device_block.shape[1] == block.shape[1]:
        block[:] = device_block
    elif device_block.shape[1] == 1:
        block[:] = device_block[:, :1]
    else:
        block[:] = device_block[:, : block.shape[1]]


def _from_chain_channels(block: np.ndarray, device_block: np.ndarray) -> None:
    """Copy chain channels to device channels: to mono by averaging."""
    if device_block.shape[1] == block.shape[1]:
        device_block[:] = block
    elif device_block.shape[1] == 1:
        np.add(block[:, 0:1], block[:, 1:2], out=device_block)
        device_block *= 0.5
    else:
        device_block[:, : block.shape[1]] = block


def _limit_torch_threads() -> None:
    """One torch thread in the audio/processing thread (see ENVIRONMENT: OpenMP workers
    inheriting realtime priority stall the machine). Only if torch is already loaded."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
