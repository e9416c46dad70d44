"""Configuration and presets: one TOML file, and named parameter snapshots beside it.

The file is ``$XDG_CONFIG_HOME/noisyneuron/config.toml`` (``~/.config/noisyneuron/config.toml``
when ``XDG_CONFIG_HOME`` is not set); ``noisyneuron live --config FILE`` reads another one.
Every section and key is optional; command-line flags override the file::

    [devices]
    input = "USB"            # index or part of a name ("default": the system default)
    output = 3
    samplerate = 48000       # Hz (default: the device's)
    blocksize = 256          # frames per block
    buffer_blocks = 2        # ring-buffer margin in blocks

    [chain]
    name = "separator"       # see `noisyneuron live --help`

    [chain.parameters]       # applied when the chain above is the one running; unit values
    "separator.vocals" = -12.0
    "separator.drums" = "off"
    "chain.mix" = 100.0

    [osc]
    enabled = true
    host = "127.0.0.1"
    port = 9000
    allow = ["127.0.0.1"]    # client addresses accepted when bound to another address
    feedback_hz = 20

    [midi]
    enabled = true
    inputs = ["nanoKONTROL2"]  # input ports by (part of) name
    virtual = true             # also open a virtual input port called NoisyNeuron
    feedback = ""              # output port for LED rings ("" or false: none)
    # mappings: what MIDI learn writes (see the README's MIDI section)

Presets are ``presets/NAME.toml`` in the same folder: the chain's name and every control's value
by key (``karaoke.vocals``, ``karaoke.bypass``, ``chain.mix``), written by the TUI (``s``) and read
back (``o``). Files are written atomically (a temporary file in the same folder, then
``os.replace``), so a crash never leaves half a config.

A bad file raises :class:`ConfigError`: one line naming the file and the key.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import tomlkit

from noisyneuron import paths
from noisyneuron.control.tomlfile import atomic_write_text, read_toml
from noisyneuron.errors import UserError

__all__ = [
    "Config",
    "ConfigError",
    "DevicesConfig",
    "ChainConfig",
    "OscConfig",
    "MidiConfig",
    "Preset",
    "atomic_write_text",
    "config_dir",
    "default_config_path",
    "load_config",
    "save_config",
    "presets_dir",
    "list_presets",
    "save_preset",
    "load_preset",
    "preset_file_name",
    "apply_chain_parameters",
]

CONFIG_FILE_NAME = "config.toml"
PRESETS_DIR_NAME = "presets"
DEFAULT_OSC_PORT = 9000


class ConfigError(UserError):
    """A config or preset file that cannot be used (one line: the file, the key, the problem)."""


# ----- where -------------------------------------------------------------------------------------
def config_dir() -> Path:
    """NoisyNeuron's user config folder (:func:`noisyneuron.paths.config_dir`: on Linux
    ``$XDG_CONFIG_HOME/noisyneuron``, or ``~/.config/noisyneuron``)."""
    return paths.config_dir()


def default_config_path() -> Path:
    return config_dir() / CONFIG_FILE_NAME


def presets_dir(config_path: Path | None = None) -> Path:
    """The presets folder beside ``config_path`` (default: beside the default config)."""
    base = Path(config_path).parent if config_path is not None else config_dir()
    return base / PRESETS_DIR_NAME


# ----- the sections ------------------------------------------------------------------------------
@dataclass
class DevicesConfig:
    input: str | int | None = None
    output: str | int | None = None
    samplerate: float | None = None
    blocksize: int | None = None
    buffer_blocks: int | None = None


@dataclass
class ChainConfig:
    name: str | None = None
    #: control key -> value in its unit (``float('-inf')`` for "off")
    parameters: dict[str, float] = field(default_factory=dict)


@dataclass
class OscConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = DEFAULT_OSC_PORT
    allow: list[str] = field(default_factory=list)
    feedback_hz: float = 20.0


@dataclass
class MidiConfig:
    enabled: bool = False
    inputs: list[str] = field(default_factory=list)
    virtual: bool = False
    feedback: str = ""
    #: the ``mappings`` value as read (handed to the MIDI map's ``from_dict``), or None
    mappings: object = None


@dataclass
class Config:
    """A whole config file. ``path`` is where it was read from (None: defaults only)."""

    devices: DevicesConfig = field(default_factory=DevicesConfig)
    chain: ChainConfig = field(default_factory=ChainConfig)
    osc: OscConfig = field(default_factory=OscConfig)
    midi: MidiConfig = field(default_factory=MidiConfig)
    path: Path | None = None

    def to_dict(self) -> dict:
        """The TOML document (keys left at their defaults are omitted)."""
        doc: dict = {}
        devices = {k: v for k, v in vars(self.devices).items() if v is not None}
        if devices:
            doc["devices"] = devices
        chain: dict = {}
        if self.chain.name:
            chain["name"] = self.chain.name
        if self.chain.parameters:
            chain["parameters"] = {k: _value_to_toml(v) for k, v in self.chain.parameters.items()}
        if chain:
            doc["chain"] = chain
        doc["osc"] = {
            "enabled": self.osc.enabled, "host": self.osc.host, "port": self.osc.port,
            "allow": list(self.osc.allow), "feedback_hz": self.osc.feedback_hz,
        }
        midi = {
            "enabled": self.midi.enabled, "inputs": list(self.midi.inputs),
            "virtual": self.midi.virtual, "feedback": self.midi.feedback,
        }
        if self.midi.mappings is not None:
            midi["mappings"] = self.midi.mappings
        doc["midi"] = midi
        return doc


# ----- reading -----------------------------------------------------------------------------------
class _Reader:
    """Checks one table of a parsed document; every problem names the file and the key."""

    def __init__(self, path: Path | str) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {problem}")

    def table(self, doc: dict, key: str, allowed: set[str]) -> dict:
        value = doc.get(key.rpartition(".")[2], {})
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table ([{key}]), got {_kind(value)}")
        for name in value:
            if name not in allowed:
                raise self.fail(f"{key}.{name}", f"unknown key; known: {', '.join(sorted(allowed))}")
        return value

    def string(self, table: dict, key: str, name: str, default):
        value = table.get(name, default)
        if value is not default and not isinstance(value, str):
            raise self.fail(f"{key}.{name}", f"must be a string, got {_kind(value)}")
        return value

    def boolean(self, table: dict, key: str, name: str, default: bool) -> bool:
        value = table.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(f"{key}.{name}", f"must be true or false, got {_kind(value)}")
        return value

    def number(self, table: dict, key: str, name: str, default, *, integer: bool = False,
               minimum: float | None = None, maximum: float | None = None):
        value = table.get(name, default)
        if value is default:
            return value
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or (isinstance(value, float) and not math.isfinite(value)):
            raise self.fail(f"{key}.{name}", f"must be {'an integer' if integer else 'a number'}, got {_kind(value)} {value!r}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self.fail(f"{key}.{name}", f"{value} is out of range {minimum:g}..{maximum:g}")
        return value

    def strings(self, table: dict, key: str, name: str) -> list[str]:
        value = table.get(name, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise self.fail(f"{key}.{name}", "must be a list of strings")
        return list(value)

    def device(self, table: dict, name: str):
        value = table.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(f"devices.{name}", f"must be a device index or part of a name, got {_kind(value)}")
        if isinstance(value, int) and value < 0:
            raise self.fail(f"devices.{name}", "a device index is 0 or more")
        return value


def _kind(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def parameter_value(value, where: str, path) -> float:
    """A parameter value from a file: a number, a number with its unit (``"-12 dB"``), or
    ``"off"`` / ``"-inf"`` (the minimum): :func:`~noisyneuron.control.values.parse_value`."""
    from noisyneuron.control.values import BadValue, parse_value

    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{path}: {where}: must be a number (or \"off\"), got {_kind(value)} {value!r}")
    try:
        return parse_value(value, unit=None)
    except BadValue as exc:
        raise ConfigError(f"{path}: {where}: {exc}") from None


def _value_to_toml(value: float):
    return "off" if value == -math.inf else float(value)


def parse_config(doc: dict, path: Path | str = "<config>") -> Config:
    """A :class:`Config` from a parsed TOML document (raises :class:`ConfigError`)."""
    r = _Reader(path)
    sections = {"devices", "chain", "osc", "midi"}
    for name in doc:
        if name not in sections:
            raise r.fail(name, f"unknown section; known: {', '.join(sorted(sections))}")
    d = r.table(doc, "devices", {"input", "output", "samplerate", "blocksize", "buffer_blocks"})
    devices = DevicesConfig(
        input=r.device(d, "input"),
        output=r.device(d, "output"),
        samplerate=r.number(d, "devices", "samplerate", None, minimum=1000, maximum=768000),
        blocksize=r.number(d, "devices", "blocksize", None, integer=True, minimum=16, maximum=8192),
        buffer_blocks=r.number(d, "devices", "buffer_blocks", None, integer=True, minimum=1, maximum=64),
    )
    c = r.table(doc, "chain", {"name", "parameters"})
    name = r.string(c, "chain", "name", None)
    if name is not None:
        from noisyneuron.realtime.chains import CHAINS

        if name not in CHAINS:
            raise r.fail("chain.name", f"unknown chain {name!r}; choose one of: {', '.join(sorted(CHAINS))}")
    params_doc = c.get("parameters", {})
    if not isinstance(params_doc, dict):
        raise r.fail("chain.parameters", f"must be a table of KEY = value, got {_kind(params_doc)}")
    parameters = {}
    for key, value in _flatten(params_doc).items():
        parameters[key] = parameter_value(value, f"chain.parameters.{key}", path)
    o = r.table(doc, "osc", {"enabled", "host", "port", "allow", "feedback_hz"})
    osc = OscConfig(
        enabled=r.boolean(o, "osc", "enabled", "port" in o),
        host=r.string(o, "osc", "host", "127.0.0.1"),
        port=r.number(o, "osc", "port", DEFAULT_OSC_PORT, integer=True, minimum=0, maximum=65535),
        allow=r.strings(o, "osc", "allow"),
        feedback_hz=float(r.number(o, "osc", "feedback_hz", 20.0, minimum=0, maximum=1000)),
    )
    m = r.table(doc, "midi", {"enabled", "inputs", "virtual", "feedback", "mappings"})
    feedback = m.get("feedback", "")
    if feedback is False:
        feedback = ""
    if not isinstance(feedback, str):
        raise r.fail("midi.feedback", f"must be an output port name (or false), got {_kind(feedback)}")
    mappings = m.get("mappings")
    if mappings is not None and not isinstance(mappings, (dict, list)):
        raise r.fail("midi.mappings", f"must be a table or a list of tables, got {_kind(mappings)}")
    inputs = r.strings(m, "midi", "inputs")
    virtual = r.boolean(m, "midi", "virtual", False)
    midi = MidiConfig(
        enabled=r.boolean(m, "midi", "enabled", bool(inputs or virtual)),
        inputs=inputs, virtual=virtual, feedback=feedback, mappings=mappings,
    )
    return Config(devices=devices, chain=ChainConfig(name, parameters), osc=osc, midi=midi,
                  path=Path(path) if not str(path).startswith("<") else None)


def _flatten(table: dict, prefix: str = "") -> dict:
    """``{"karaoke": {"vocals": -12}}`` and ``{"karaoke.vocals": -12}`` both give the latter
    (an unquoted dotted TOML key is a nested table)."""
    out = {}
    for key, value in table.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, full + "."))
        else:
            out[full] = value
    return out


def load_config(path: str | Path | None = None) -> Config:
    """Read the config file: ``path`` (must exist), or the default one (defaults when absent).

    Raises:
        ConfigError: one line naming the file and the key.
    """
    if path is None:
        path = default_config_path()
        if not path.exists():
            return Config(path=None)
    path = Path(path)
    return parse_config(read_toml(path, ConfigError), path)


# ----- writing -----------------------------------------------------------------------------------
def save_config(config: Config, path: str | Path | None = None) -> Path:
    """Write ``config`` as TOML to ``path`` (default: where it was read from, else the default
    location), atomically. Returns the path."""
    path = Path(path) if path is not None else (config.path or default_config_path())
    data = config.to_dict()
    doc = None
    if path.is_file():  # keep the user's comments, order and layout: change only what changed
        try:
            doc = tomlkit.parse(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomlkit.exceptions.TOMLKitError):
            doc = None  # unreadable or not TOML: written afresh (it could not have been loaded anyway)
    if doc is None:
        doc = tomlkit.document()
        doc.add(tomlkit.comment("NoisyNeuron configuration (see the README: Configuration and presets)"))
    _merge_into(doc, data)
    atomic_write_text(path, tomlkit.dumps(doc))
    config.path = path
    return path


def _merge_into(table, data: dict) -> None:
    """Make the tomlkit ``table`` hold ``data``: keys it lacks are added, values that differ are
    replaced, keys ``data`` no longer has are removed; comments and untouched keys stay."""
    for key in [k for k in table.keys() if k not in data]:
        del table[key]
    for key, value in data.items():
        if isinstance(value, dict) and key in table and isinstance(table[key], dict):
            _merge_into(table[key], value)
        elif key not in table or table[key] != value:
            table[key] = value


# ----- presets -----------------------------------------------------------------------------------
@dataclass
class Preset:
    """A named snapshot of control values (by key, in each control's unit)."""

    name: str
    chain: str
    values: dict[str, float]
    path: Path | None = None


_SAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def preset_file_name(name: str) -> str:
    """A file name for preset ``name`` (unsafe characters become ``_``)."""
    clean = _SAFE.sub("_", name.strip()).strip(". ")
    if not clean:
        raise ConfigError(f"preset name {name!r}: give a name with letters or digits")
    return f"{clean}.toml"


def list_presets(directory: str | Path | None = None) -> list[str]:
    """Preset names in ``directory`` (default: the presets folder), sorted."""
    directory = Path(directory) if directory is not None else presets_dir()
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.toml") if not p.name.startswith("."))


def save_preset(name: str, values: dict[str, float], chain: str, directory: str | Path | None = None) -> Path:
    """Write preset ``name`` (atomically) and return its path."""
    directory = Path(directory) if directory is not None else presets_dir()
    path = directory / preset_file_name(name)
    doc = {"name": name, "chain": chain,
           "parameters": {k: _value_to_toml(float(v)) for k, v in values.items()}}
    atomic_write_text(path, "# NoisyNeuron preset\n" + tomlkit.dumps(doc))
    return path


def load_preset(name: str | Path, directory: str | Path | None = None) -> Preset:
    """Read a preset by name (from the presets folder) or by path.

    Raises:
        ConfigError: missing file, bad TOML, or a bad value (naming the file and the key).
    """
    candidate = Path(name)
    if candidate.suffix == ".toml" and (candidate.exists() or os.sep in str(name)):
        path = candidate
    else:
        directory = Path(directory) if directory is not None else presets_dir()
        path = directory / preset_file_name(str(name))
        if not path.exists():
            known = list_presets(directory)
            raise ConfigError(f"{path}: no such preset" + (f"; saved presets: {', '.join(known)}" if known else ""))
    doc = read_toml(path, ConfigError)
    for key in doc:
        if key not in ("name", "chain", "parameters"):
            raise ConfigError(f"{path}: {key}: unknown key; known: chain, name, parameters")
    params = doc.get("parameters", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: parameters: must be a table of KEY = value")
    values = {k: parameter_value(v, f"parameters.{k}", path) for k, v in _flatten(params).items()}
    chain = doc.get("chain", "")
    if not isinstance(chain, str):
        raise ConfigError(f"{path}: chain: must be a string")
    preset_name = doc.get("name", path.stem)
    return Preset(name=str(preset_name), chain=chain, values=values, path=path)


def apply_chain_parameters(surface, config: Config, chain_name: str) -> bool:
    """Set the config's ``[chain.parameters]`` on ``surface`` (source ``"config"``) when the
    config's chain is ``chain_name`` (or names none). Returns whether they were applied.

    Raises:
        ConfigError: a key that is not a control of this chain (naming the file and the key).
    """
    from noisyneuron.control.surface import UnknownControl

    params = config.chain.parameters
    if not params or (config.chain.name is not None and config.chain.name != chain_name):
        return False
    for key, value in params.items():
        try:
            surface.set(key, value, source="config")
        except UnknownControl:
            known = ", ".join(c.key for c in surface)
            raise ConfigError(
                f"{config.path or 'config'}: chain.parameters.{key}: no such control in chain {chain_name!r}; known: {known}"
            ) from None
    return True
