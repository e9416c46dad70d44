"""One way to build a live run: :class:`LiveSpec` says what to run, :func:`build_live_session`
builds it, :func:`start_control` wires OSC and MIDI to it.

``noisyneuron live`` runs in two shapes: headless (or with the UI in the engine's process) it
builds the session here; with the terminal UI the engine runs in its own process
(:mod:`noisyneuron.control.host`), which gets the same spec as JSON and builds the session with the
same function. So the chain, its values and the endpoints come out the same either way.

Precedence, from weakest to strongest (each step overrides the ones before):

1. the chain's defaults (``--chain``, else the config's ``[chain] name``, else ``karaoke``);
2. the config file's ``[chain.parameters]`` (when the config names this chain, or none);
3. a preset (``--preset``);
4. ``--set KEY=VALUE`` on the command line.

Devices, rate, block size and buffer come from the command line, else the config's
``[devices]``, else the defaults (256 frames, 2 blocks). OSC and MIDI: what the command line asks
for must start (a one-line error otherwise); what only the config asks for is reported and
skipped when it cannot start.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from noisyneuron.errors import UserError

__all__ = ["LiveSpec", "OscSpec", "MidiSpec", "LiveBuild", "looks_like_file", "build_live_session", "start_control"]

#: Frames per block and ring margin in blocks when neither the command line nor the config says.
DEFAULT_BLOCKSIZE = 256
DEFAULT_BUFFER_BLOCKS = 2


def looks_like_file(spec: str | None) -> bool:
    """Whether an ``--input``/``--output`` value names a file (a path, or an audio extension)
    rather than a device (an index or part of a name)."""
    if spec is None:
        return False
    from noisyneuron.audio.files import READABLE_EXTENSIONS

    return os.sep in spec or Path(spec).suffix.lower() in READABLE_EXTENSIONS


@dataclass
class OscSpec:
    """OSC as asked: ``enabled`` (serve it), ``asked`` (the command line asked: failing to start
    is an error), bind ``host`` and UDP ``port``, ``allow`` (addresses allowed off loopback) and
    ``feedback_hz`` (feedback rate to registered clients, Hz)."""

    enabled: bool = False
    asked: bool = False
    host: str = "127.0.0.1"
    port: int = 9000
    allow: list[str] = field(default_factory=list)
    feedback_hz: float = 20.0


@dataclass
class MidiSpec:
    """MIDI as asked: ``enabled``, ``asked`` (by the command line), input port names, a
    ``virtual`` port, the ``feedback`` output port, the ``map_path`` (a TOML map; None: the
    config's mappings) and the rtmidi ``api``."""

    enabled: bool = False
    asked: bool = False
    inputs: list[str] = field(default_factory=list)
    virtual: bool = True
    feedback: str | None = None
    map_path: str | None = None
    api: str | None = None


@dataclass
class LiveSpec:
    """Everything a live run is built from, resolved (command line over config file).

    Attributes:
        chain: the chain's name (``karaoke``, ``separator``, ``centre-cut``, ``monitor``...).
        settings: ``--set`` values, ``KEY=VALUE`` in the parameter's unit, applied last.
        input, output: device specs (index or part of a name; None: the default device).
        input_file, output_file: a file at one end instead of a device (never both).
        loop: loop the input file.
        sample_rate: Hz (None: the device's).
        blocksize: frames per block.
        backend: ``rtmixer`` or ``callback``.
        buffer_blocks: ring margin, blocks.
        preset_name, preset_values: the preset's name and its ``{control key: value}``.
        config_chain, config_parameters, config_path: the config file's ``[chain]`` name and
            parameters, and where it was read from (for error messages).
        osc, midi: :class:`OscSpec`, :class:`MidiSpec`.
    """

    chain: str = "karaoke"
    settings: list[str] = field(default_factory=list)
    input: str | None = None
    output: str | None = None
    input_file: str | None = None
    output_file: str | None = None
    loop: bool = False
    sample_rate: float | None = None
    blocksize: int = DEFAULT_BLOCKSIZE
    backend: str = "rtmixer"
    buffer_blocks: int = DEFAULT_BUFFER_BLOCKS
    preset_name: str | None = None
    preset_values: dict[str, float] = field(default_factory=dict)
    config_chain: str | None = None
    config_parameters: dict[str, float] = field(default_factory=dict)
    config_path: str | None = None
    osc: OscSpec = field(default_factory=OscSpec)
    midi: MidiSpec = field(default_factory=MidiSpec)

    @classmethod
    def resolve(cls, options, config, preset=None) -> "LiveSpec":
        """The spec for ``noisyneuron live``'s parsed ``options`` (its argparse namespace: input,
        output, samplerate, blocksize, buffer_blocks, chain, set, loop, backend, osc*, midi*),
        the :class:`~noisyneuron.control.config.Config` and an optional
        :class:`~noisyneuron.control.config.Preset`: the command line over the config file over
        the defaults."""
        d = config.devices
        inp = options.input if options.input is not None else (str(d.input) if d.input is not None else None)
        out = options.output if options.output is not None else (str(d.output) if d.output is not None else None)
        in_file, out_file = looks_like_file(inp), looks_like_file(out)
        osc_asked = bool(options.osc) or options.osc_port is not None or options.osc_host is not None or bool(options.osc_allow)
        osc = OscSpec(
            enabled=options.osc is not False and (osc_asked or config.osc.enabled),
            asked=osc_asked,
            host=options.osc_host or config.osc.host,
            port=int(options.osc_port if options.osc_port is not None else config.osc.port),
            allow=list(options.osc_allow or config.osc.allow),
            feedback_hz=float(config.osc.feedback_hz),
        )
        midi_asked = (bool(options.midi_in) or options.midi_virtual is not None or bool(options.midi_map)
                      or options.midi_feedback is not None)
        from_config = config.midi if config.midi.enabled else None
        if options.midi_virtual is not None:
            virtual = bool(options.midi_virtual)
        else:
            virtual = bool(from_config.virtual) if from_config is not None and not options.midi_in else True
        midi = MidiSpec(
            enabled=midi_asked or config.midi.enabled,
            asked=midi_asked,
            inputs=list(options.midi_in or (from_config.inputs if from_config else [])),
            virtual=virtual,
            feedback=options.midi_feedback if options.midi_feedback is not None else (from_config.feedback if from_config else None),
            map_path=str(Path(options.midi_map).expanduser()) if options.midi_map else None,
            api=getattr(options, "midi_api", None),
        )
        return cls(
            chain=options.chain or config.chain.name or "karaoke",
            settings=list(options.set or []),
            input=None if in_file else inp,
            output=None if out_file else out,
            input_file=inp if in_file else None,
            output_file=out if out_file else None,
            loop=bool(options.loop),
            sample_rate=options.samplerate if options.samplerate is not None else d.samplerate,
            blocksize=int(options.blocksize or d.blocksize or DEFAULT_BLOCKSIZE),
            backend=options.backend,
            buffer_blocks=int(options.buffer_blocks or d.buffer_blocks or DEFAULT_BUFFER_BLOCKS),
            preset_name=preset.name if preset is not None else None,
            preset_values=dict(preset.values) if preset is not None else {},
            config_chain=config.chain.name,
            config_parameters={k: float(v) for k, v in config.chain.parameters.items()},
            config_path=str(config.path) if config.path else None,
            osc=osc,
            midi=midi,
        )

    def to_json(self) -> str:
        """The spec as one JSON object (what the engine host process is started with)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "LiveSpec":
        """The spec :meth:`to_json` wrote."""
        data = json.loads(text)
        data["osc"] = OscSpec(**data.get("osc") or {})
        data["midi"] = MidiSpec(**data.get("midi") or {})
        return cls(**data)

    def with_devices(self, input: object = ..., output: object = ..., values: dict[str, float] | None = None) -> "LiveSpec":
        """A copy on other devices (``...``: unchanged; a device replaces a file at that end),
        carrying ``values`` (the running chain's) as its only chain values."""
        changes: dict = {}
        if input is not ...:
            changes.update(input=input, input_file=None)
        if output is not ...:
            changes.update(output=output, output_file=None)
        if values is not None:
            changes.update(preset_values=dict(values), settings=[], config_parameters={})
        return replace(self, **changes)


@dataclass
class LiveBuild:
    """What :func:`build_live_session` made: the session (not started), the file ends it opened
    (``source``: a :class:`~noisyneuron.audio.files.FileSource`, ``sink``: a
    :class:`~noisyneuron.audio.files.FileSink`, or None), the preset keys the chain does not
    have, and the chain's note (why karaoke chose what it chose)."""

    session: object
    source: object | None
    sink: object | None
    unknown_preset_keys: list[str]
    note: str

    @property
    def files(self) -> list:
        """The file ends, to close after the run."""
        return [f for f in (self.sink, self.source) if f is not None]


def build_live_session(spec: LiveSpec, *, display: bool) -> LiveBuild:
    """The chain with its values (precedence in the module docstring) and a
    :class:`~noisyneuron.control.session.LiveSession` on the spec's endpoints, not started.

    Raises:
        UserError: one line: an unknown chain, a bad ``--set``, a config key the chain lacks, an
            unreadable input file, a missing device.
    """
    from noisyneuron.audio.files import FileSink, FileSource
    from noisyneuron.control.config import ChainConfig, Config, apply_chain_parameters
    from noisyneuron.control.session import LiveSession
    from noisyneuron.control.surface import ControlSurface
    from noisyneuron.realtime.chains import build_chain, source_channels
    from noisyneuron.realtime.devices import resolve_device

    if spec.input_file and spec.output_file:
        raise UserError("both --input and --output are files: use `noisyneuron process IN OUT`")
    if spec.input_file:
        channels = source_channels(spec.input_file, is_file=True)
    else:
        channels = source_channels(spec.input, is_file=False)
    chain = build_chain(spec.chain, channels)
    surface = ControlSurface(chain)
    if spec.config_parameters:
        config = Config(chain=ChainConfig(spec.config_chain, dict(spec.config_parameters)),
                        path=Path(spec.config_path) if spec.config_path else None)
        apply_chain_parameters(surface, config, chain.name)
    unknown = surface.restore({k: float(v) for k, v in spec.preset_values.items()}, source="preset") if spec.preset_values else []
    surface.apply_settings(spec.settings)  # the command line wins
    rate = spec.sample_rate
    endpoint_in, endpoint_out = spec.input, spec.output
    source = sink = None
    # with a file at one end, the device at the other sets the clock and the sample rate
    if spec.output_file:
        rate = rate or resolve_device(spec.input, "input").default_sample_rate
        sink = endpoint_out = FileSink(spec.output_file, rate, 2)
    elif spec.input_file:
        rate = rate or resolve_device(spec.output, "output").default_sample_rate
        source = endpoint_in = FileSource(spec.input_file, rate, 2, spec.blocksize, loop=spec.loop)
    try:
        session = LiveSession(chain, input=endpoint_in, output=endpoint_out, sample_rate=rate, blocksize=spec.blocksize,
                              backend=spec.backend, buffer_blocks=spec.buffer_blocks, display=display)
    except BaseException:  # no half-made file is left behind (an empty recording is removed)
        if sink is not None:
            sink.abort(announce=False)
        if source is not None:
            source.close()
        raise
    session.preset_name = spec.preset_name or ""
    return LiveBuild(session, source, sink, list(unknown or []), getattr(chain, "note", "") or "")


def start_control(session, spec: LiveSpec, config=None, *, osc: bool = True, say=print) -> None:
    """Start OSC (unless ``osc`` is False: the engine host serves it) and MIDI on ``session`` as
    ``spec`` asks; ``config`` gives the MIDI mappings when the spec names no map file. What the
    command line asked for must start (its UserError propagates); what only the config asked for
    is reported with ``say`` and skipped (``session.osc_error`` / ``session.midi_error``)."""
    if osc and spec.osc.enabled:
        try:
            session.start_osc(host=spec.osc.host, port=spec.osc.port, allow=list(spec.osc.allow),
                              feedback_hz=spec.osc.feedback_hz)
        except UserError as exc:
            if spec.osc.asked:
                raise
            session.osc_error = str(exc)
            say(f"OSC not started: {exc}")
    if spec.midi.enabled:
        if spec.midi.map_path:
            from noisyneuron.control.midi_map import MidiMap

            path = Path(spec.midi.map_path)
            mapping = MidiMap.load(path) if path.exists() else MidiMap(path=path)
        else:
            mapping = config.midi.mappings if config is not None else None
        try:
            session.start_midi(inputs=list(spec.midi.inputs), virtual=spec.midi.virtual, feedback=spec.midi.feedback,
                               mapping=mapping, api=spec.midi.api)
        except UserError as exc:
            if spec.midi.asked:
                raise
            session.midi_error = str(exc)
            say(f"MIDI not started: {exc}")
