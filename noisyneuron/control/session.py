"""A live session: the engine running a chain, its control surface, the display tap, OSC and MIDI.

``noisyneuron live`` builds one :class:`LiveSession` whether or not the terminal UI runs, so the
headless host and the TUI have the same controls. The session also stands in for the engine
wherever something polls readings (OSC feedback, the TUI): it has the engine's reading attributes
(``chain``, ``input_meter``, ``output_meter``, ``latency_seconds``, ``stats()``) and forwards them
to whichever engine runs now, so switching devices (a new :class:`Engine`) does not leave a
listener holding a stopped one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from noisyneuron.control.surface import ControlSurface
from noisyneuron.errors import UserError
from noisyneuron.realtime.chain import Chain

__all__ = ["LiveSession", "describe_osc", "describe_midi"]


class LiveSession:
    """A chain live between an input and an output, and everything that controls or shows it.

    Args:
        chain: the chain to run.
        input, output: device specs (index, part of a name, None: default) or file objects,
            as :class:`~noisyneuron.realtime.engine.Engine` takes them.
        sample_rate, blocksize, backend, buffer_blocks: as the engine takes them.
        engine_factory: builds the engine (default :class:`Engine`); tests pass their own.
        display: keep a copy of the recent output for a spectrum display (the engine's
            ``on_block`` hook fills :attr:`tap`); off for headless runs.
        tap_size: samples of recent output kept for the spectrum display.
    """

    def __init__(
        self,
        chain: Chain,
        *,
        input: object = None,
        output: object = None,
        sample_rate: float | None = None,
        blocksize: int = 256,
        backend: str = "rtmixer",
        buffer_blocks: int = 2,
        engine_factory: Callable | None = None,
        display: bool = True,
        tap_size: int = 8192,
    ) -> None:
        self.chain = chain
        self.surface = ControlSurface(chain)
        #: the recent output for displays (None when ``display`` is off)
        self.tap = None
        if display:
            from noisyneuron.realtime.tap import SampleTap

            self.tap = SampleTap(tap_size)
        self.input_spec = input
        self.output_spec = output
        self.requested_sample_rate = sample_rate
        self.blocksize = int(blocksize)
        self.backend = backend
        self.buffer_blocks = int(buffer_blocks)
        if engine_factory is None:
            from noisyneuron.realtime.engine import Engine

            engine_factory = Engine
        self._factory = engine_factory
        self._lock = threading.Lock()  # device switches
        self.engine = self._make_engine(input, output)
        #: the OSC server and MIDI controller when started (None: off)
        self.osc = None
        self.midi = None
        #: one line when OSC/MIDI could not start (shown by the TUI)
        self.osc_error = ""
        self.midi_error = ""
        #: the last preset loaded or saved (shown by the TUI)
        self.preset_name = ""
        self.running = False

    # ----- engine ------------------------------------------------------------------------------
    def _make_engine(self, input, output):
        engine = self._factory(
            self.chain, input=input, output=output, sample_rate=self.requested_sample_rate,
            blocksize=self.blocksize, backend=self.backend, buffer_blocks=self.buffer_blocks,
        )
        if self.tap is not None:
            engine.on_block = self.tap.write
        return engine

    def start(self) -> None:
        """Start the engine (OSC and MIDI are started by :meth:`start_osc` / :meth:`start_midi`)."""
        self.engine.start()
        self.running = True

    def stop(self) -> None:
        """Stop MIDI, OSC and the engine. Safe to call twice."""
        for name in ("midi", "osc"):
            server = getattr(self, name)
            if server is not None:
                try:
                    server.stop()
                except Exception:  # noqa: BLE001 - stopping must always reach the engine
                    pass
                setattr(self, name, None)
        self.engine.stop()
        self.running = False

    def switch_devices(self, input: object = ..., output: object = ...) -> None:
        """Restart the engine on other devices (``...``: keep that side). Same chain, same
        control values. If the new devices fail, the old ones are started again and the
        :class:`UserError` is raised (one line for the user)."""
        with self._lock:
            new_in = self.input_spec if input is ... else input
            new_out = self.output_spec if output is ... else output
            old = self.engine
            was_running = self.running
            old.stop()
            try:
                engine = self._make_engine(new_in, new_out)
                if was_running:
                    engine.start()
            except UserError:
                if was_running:
                    old.start()
                raise
            self.engine = engine
            self.input_spec, self.output_spec = new_in, new_out

    # ----- the engine's reading attributes (for poll_readings and OSC feedback) ----------------------
    @property
    def input_meter(self):
        return self.engine.input_meter

    @property
    def output_meter(self):
        return self.engine.output_meter

    @property
    def latency_seconds(self) -> float:
        return self.engine.latency_seconds

    @property
    def sample_rate(self) -> float:
        return self.engine.sample_rate

    def stats(self):
        return self.engine.stats()

    def latency_breakdown(self) -> dict:
        return self.engine.latency_breakdown()

    def describe_endpoints(self) -> tuple[str, str]:
        return self.engine.describe_endpoints()

    @property
    def finished(self) -> bool:
        return bool(getattr(self.engine, "finished", False))

    @property
    def failure(self) -> BaseException | None:
        """The error that stopped the engine's processing (see ``Engine.failure``), or None."""
        return getattr(self.engine, "failure", None)

    def end_reason(self) -> str | None:
        """Why the audio stopped by itself (one line), or None while it runs."""
        failure = self.failure
        if failure is not None:
            return f"the audio stopped: {' '.join(str(failure).split()) or type(failure).__name__}"
        return "input file finished" if self.finished else None

    def device_names(self) -> tuple[str | None, str | None]:
        """The input and output device names (None for an end that is a file)."""
        names = self.describe_endpoints()
        return tuple(
            name.split(" (")[0] if spec is None or isinstance(spec, (str, int)) else None
            for spec, name in zip((self.input_spec, self.output_spec), names)
        )

    # ----- OSC and MIDI --------------------------------------------------------------------------------
    def start_osc(self, host: str = "127.0.0.1", port: int = 9000, allow: list[str] | None = None,
                  feedback_hz: float = 20.0) -> object:
        """Start the OSC server on ``host:port`` (:mod:`noisyneuron.control.osc`).

        Raises:
            UserError: the port is taken, the host is not an address here, or OSC is missing.
        """
        try:
            from noisyneuron.control import osc as osc_module
        except ImportError as exc:
            raise UserError(f"OSC is not available in this build ({exc})") from None
        kwargs = dict(host=host, port=int(port), allow=list(allow or []), feedback_hz=float(feedback_hz))
        try:
            if hasattr(osc_module, "start_osc"):
                server = osc_module.start_osc(self.surface, engine=self, **kwargs)
            else:
                server = osc_module.OscServer(self.surface, engine=self, **kwargs)
                server.start()
        except UserError:
            raise
        except OSError as exc:
            raise UserError(f"cannot start OSC on {host}:{port}: {exc.strerror or exc}") from None
        self.osc = server
        return server

    def start_midi(self, inputs: list[str] | None = None, virtual: bool = False, feedback: str | bool | None = None,
                   mapping: object = None, api: str | None = None) -> object:
        """Open MIDI inputs (and the virtual ``NoisyNeuron`` port) with ``mapping`` (a ``MidiMap``,
        a TOML file's path, or what ``MidiMap.to_dict`` wrote, e.g. the config's [midi] mappings).

        Raises:
            UserError: one line: no MIDI system, a port that does not exist, a bad mapping.
        """
        from noisyneuron.control.midi import MidiController

        controller = MidiController(self.surface, inputs=list(inputs or []), virtual=bool(virtual),
                                    mapping=mapping, feedback=feedback or None, api=api)
        controller.start()
        self.midi = controller
        return controller

    def midi_mappings(self) -> object:
        """The MIDI mappings now (``MidiMap.to_dict``), for the config file; None without MIDI."""
        mapping = getattr(self.midi, "mapping", None) if self.midi is not None else None
        to_dict = getattr(mapping, "to_dict", None)
        return to_dict() if callable(to_dict) else None


def _get(obj, name: str, default=None):
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def describe_osc(session: LiveSession) -> str:
    """One short line about OSC, e.g. ``OSC :9000 · 1 client · rx 12 bad 0`` (the host shown
    when it is not loopback)."""
    osc = session.osc
    if osc is None:
        return f"OSC error: {session.osc_error}" if session.osc_error else "OSC off (--osc)"
    if _get(osc, "private", False):
        if session.osc_error:
            return f"OSC error: {session.osc_error}"
        return f"OSC off (--osc); UI link :{_get(osc, 'port', '?')}"
    host = _get(osc, "host", "?")
    text = f"OSC {'' if host in ('127.0.0.1', '::1', 'localhost') else host}:{_get(osc, 'port', '?')}"
    try:
        clients = osc.clients() if callable(getattr(osc, "clients", None)) else None
        stats = osc.stats() if callable(getattr(osc, "stats", None)) else None
    except Exception:  # noqa: BLE001 - a display must not fail
        return text
    if clients is not None:
        text += f" · {len(clients)} client{'s' if len(clients) != 1 else ''}"
    if stats is not None:
        received = _get(stats, "received", None)
        rejected = _get(stats, "rejected_total", None)
        if received is not None:
            text += f" · rx {received}"
        if rejected is not None:
            text += f" bad {rejected}"
    return text


def describe_midi(session: LiveSession) -> str:
    """One short line about MIDI, e.g. ``MIDI NoisyNeuron (virtual) · rx 12``."""
    midi = session.midi
    if midi is None:
        return f"MIDI error: {session.midi_error}" if session.midi_error else "MIDI off (--midi-in/--midi-virtual)"
    try:
        status = midi.status()
    except Exception:  # noqa: BLE001 - a display must not fail
        return "MIDI on"
    ports = ", ".join(str(p) for p in _get(status, "inputs", ()) or ()) or "no inputs"
    text = f"MIDI {ports}"
    received = _get(status, "received", None)
    if received is not None:
        text += f" · rx {received}"
    error = _get(status, "error", "")
    if error:
        text += f" · {error}"
    return text
