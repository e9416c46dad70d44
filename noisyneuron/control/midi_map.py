"""MIDI mappings: which CC or note drives which control, read from and written to TOML.

A map is two lists. **CC mappings** turn a knob or fader into a control's value; **note
mappings** turn a pad or key into an action. Channels are written 1..16 (as controllers and DAWs
show them). A standalone file::

    [[cc]]
    control = "separator.vocals"   # a control key (processor.param) or its OSC address
    channel = 1                    # 1..16 (default 1)
    cc = 7                         # 0..127; 14-bit: 0..31, the LSB on cc + 32
    bits = 7                       # 7 (default) or 14
    takeover = "pickup"            # "pickup" (default): the knob takes over when it reaches the
                                   # value; "jump": the value follows the knob at once

    [[note]]
    control = "separator.bypass"
    channel = 10
    note = 36                      # 0..127
    action = "toggle"              # "toggle" (any on/off control), "mute" (a level to its minimum
                                   # and back) or "solo" (set `value`, press again for the minimum)
    value = 1                      # solo only: e.g. separator.solo 1 = vocals, 2 drums, 3 bass, 4 other
    momentary = false              # true: note off undoes the action (hold to bypass)

In the config file the same tables live under ``[midi.mappings]`` (``[[midi.mappings.cc]]``,
``[[midi.mappings.note]]``); :meth:`MidiMap.load` reads either form. :meth:`MidiMap.to_dict` /
:meth:`MidiMap.from_dict` are what the config module stores. Every error is one line naming the
file and the entry, e.g. ``midi.toml: [[cc]] entry 2: cc 200 is out of range 0..127``.

Control names are checked against a chain only when the map is bound to a surface
(:meth:`MidiMap.bind`): a map written for the separator chain loads for the karaoke chain, and the
mappings whose controls that chain lacks are skipped (and listed).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from noisyneuron.control.tomlfile import atomic_write_text, read_toml
from noisyneuron.errors import UserError

__all__ = [
    "ACTIONS", "TAKEOVERS", "CCMapping", "NoteMapping", "MidiMap", "MidiMapError", "BoundMap",
]

#: note actions
ACTIONS = ("toggle", "mute", "solo")
#: CC takeover modes
TAKEOVERS = ("pickup", "jump")

_CC_KEYS = {"control", "channel", "cc", "bits", "takeover"}
_NOTE_KEYS = {"control", "channel", "note", "action", "value", "momentary"}


class MidiMapError(UserError):
    """A MIDI map that cannot be used: one line naming the file (or section) and the entry."""


@dataclass(frozen=True)
class CCMapping:
    """A knob or fader (control change) driving a control.

    Attributes:
        control: the control's key (``separator.vocals``) or address.
        channel: MIDI channel, 0..15 (written 1..16 in files).
        cc: controller number, 0..127; for 14 bits the MSB's number, 0..31 (LSB on ``cc + 32``).
        bits: 7 or 14.
        takeover: ``"pickup"`` or ``"jump"``.
    """

    control: str
    channel: int
    cc: int
    bits: int = 7
    takeover: str = "pickup"

    @property
    def lsb(self) -> int | None:
        """The LSB's controller number for 14 bits, else None."""
        return self.cc + 32 if self.bits == 14 else None

    @property
    def numbers(self) -> tuple[int, ...]:
        """The controller numbers this mapping uses (two for 14 bits)."""
        return (self.cc, self.cc + 32) if self.bits == 14 else (self.cc,)

    @property
    def max_value(self) -> int:
        return 16383 if self.bits == 14 else 127

    def describe(self) -> str:
        what = f"CC {self.cc}/{self.cc + 32} (14-bit)" if self.bits == 14 else f"CC {self.cc}"
        return f"{what} ch {self.channel + 1} -> {self.control}"

    def to_dict(self) -> dict:
        d: dict = {"control": self.control, "channel": self.channel + 1, "cc": self.cc}
        if self.bits != 7:
            d["bits"] = self.bits
        if self.takeover != "pickup":
            d["takeover"] = self.takeover
        return d


@dataclass(frozen=True)
class NoteMapping:
    """A pad or key (note on) acting on a control.

    Attributes:
        control: the control's key or address.
        channel: MIDI channel, 0..15 (written 1..16 in files).
        note: note number, 0..127.
        action: ``"toggle"``, ``"mute"`` or ``"solo"``.
        value: for ``"solo"``: the value set (in the control's unit).
        momentary: note off undoes the action.
    """

    control: str
    channel: int
    note: int
    action: str = "toggle"
    value: float | None = None
    momentary: bool = False

    def describe(self) -> str:
        what = f"{self.action} {self.control}" + (f"={self.value:g}" if self.value is not None else "")
        return f"note {self.note} ch {self.channel + 1} -> {what}" + (" (momentary)" if self.momentary else "")

    def to_dict(self) -> dict:
        d: dict = {"control": self.control, "channel": self.channel + 1, "note": self.note, "action": self.action}
        if self.value is not None:
            d["value"] = int(self.value) if float(self.value).is_integer() else self.value
        if self.momentary:
            d["momentary"] = True
        return d


Mapping = CCMapping | NoteMapping


@dataclass
class BoundMap:
    """A map checked against a control surface (what :meth:`MidiMap.bind` returns).

    Attributes:
        cc: (mapping, control) for the CC mappings whose control exists.
        notes: (mapping, control) for the note mappings whose control exists.
        skipped: one line per mapping whose control this chain does not have.
    """

    cc: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class MidiMap:
    """CC and note mappings (mutable: MIDI learn adds to it).

    Args:
        cc: CC mappings.
        notes: note mappings.
        path: the file it was read from (where :meth:`save` writes by default).
    """

    def __init__(self, cc: list[CCMapping] | None = None, notes: list[NoteMapping] | None = None,
                 path: str | os.PathLike | None = None) -> None:
        self.cc: list[CCMapping] = list(cc or [])
        self.notes: list[NoteMapping] = list(notes or [])
        self.path = Path(path) if path is not None else None
        _check_conflicts(self.cc, self.notes, str(self.path) if self.path else "midi map")

    def __len__(self) -> int:
        return len(self.cc) + len(self.notes)

    def __iter__(self):
        return iter([*self.cc, *self.notes])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MidiMap) and self.cc == other.cc and self.notes == other.notes

    def __repr__(self) -> str:
        return f"MidiMap({len(self.cc)} cc, {len(self.notes)} notes{', ' + str(self.path) if self.path else ''})"

    def copy(self) -> "MidiMap":
        return MidiMap(self.cc, self.notes, self.path)

    # ----- editing (MIDI learn) ---------------------------------------------------------------------
    def add(self, mapping: Mapping, *, replace_control: bool = True, aliases: tuple[str, ...] = ()) -> list[Mapping]:
        """Add ``mapping``, removing what it replaces; returns the removed mappings.

        A CC mapping replaces every CC mapping using one of its controller numbers on its channel
        (both numbers of a 14-bit pair) and, with ``replace_control``, the control's other CC
        mappings (one knob per control). A note mapping replaces the mappings of the same note and
        channel and, with ``replace_control``, other notes doing the same action on the control.
        ``aliases``: other names of the same control (its address for a key).
        """
        names = {mapping.control, *aliases}
        removed: list[Mapping] = []
        if isinstance(mapping, CCMapping):
            used = set(mapping.numbers)
            keep = []
            for m in self.cc:
                clash = m.channel == mapping.channel and used & set(m.numbers)
                same_control = replace_control and m.control in names
                (removed if clash or same_control else keep).append(m)
            self.cc = keep + [mapping]
        else:
            keep = []
            for m in self.notes:
                clash = m.channel == mapping.channel and m.note == mapping.note
                same = replace_control and m.control in names and m.action == mapping.action and m.value == mapping.value
                (removed if clash or same else keep).append(m)
            self.notes = keep + [mapping]
        return removed

    def remove_control(self, control: str) -> list[Mapping]:
        """Remove every mapping of ``control`` (key or address as written); returns them."""
        removed = [m for m in self if m.control == control]
        self.cc = [m for m in self.cc if m.control != control]
        self.notes = [m for m in self.notes if m.control != control]
        return removed

    # ----- checking against a chain ----------------------------------------------------------------
    def bind(self, surface) -> BoundMap:
        """Resolve every mapping's control on ``surface`` (a
        :class:`~noisyneuron.control.surface.ControlSurface`).

        Mappings naming controls the chain lacks are skipped (listed in ``skipped``).

        Raises:
            MidiMapError: an action that does not suit its control (``toggle`` on a level, ``mute``
                on an on/off control, a ``solo`` value outside the control's range).
        """
        from noisyneuron.control.surface import UnknownControl

        where = str(self.path) if self.path else "midi map"
        bound = BoundMap()
        for kind, mappings, out in (("cc", self.cc, bound.cc), ("note", self.notes, bound.notes)):
            for i, m in enumerate(mappings, 1):
                try:
                    control = surface.find(m.control)
                except UnknownControl:
                    bound.skipped.append(f"{m.describe()}: no control {m.control!r} in chain {surface.chain.name!r}")
                    continue
                if isinstance(m, NoteMapping):
                    _check_action(m, control, f"{where}: [[{kind}]] entry {i}")
                out.append((m, control))
        return bound

    # ----- dict / TOML ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """``{"cc": [...], "note": [...]}`` with channels 1..16 (what the config's
        ``[midi.mappings]`` holds); defaults are left out."""
        d: dict = {}
        if self.cc:
            d["cc"] = [m.to_dict() for m in self.cc]
        if self.notes:
            d["note"] = [m.to_dict() for m in self.notes]
        return d

    @classmethod
    def from_dict(cls, data, *, source: str = "midi map", path: str | os.PathLike | None = None) -> "MidiMap":
        """Read what :meth:`to_dict` wrote.

        ``data`` may be that table, a list of tables (each with ``cc`` or ``note``), a config
        document holding ``midi.mappings``, or None (an empty map).

        Raises:
            MidiMapError: one line naming ``source`` and the bad entry.
        """
        if data is None:
            return cls(path=path)
        if isinstance(data, dict) and isinstance(data.get("midi"), dict):
            data = data["midi"].get("mappings")
            if data is None:
                return cls(path=path)
            source = f"{source}: [midi.mappings]"
        if isinstance(data, list):
            cc_entries = [e for e in data if isinstance(e, dict) and "cc" in e]
            note_entries = [e for e in data if isinstance(e, dict) and "note" in e]
            for i, e in enumerate(data, 1):
                if not isinstance(e, dict) or ("cc" in e) == ("note" in e):
                    raise MidiMapError(f"{source}: mapping {i}: each mapping needs either cc or note")
            data = {"cc": cc_entries, "note": note_entries}
        if not isinstance(data, dict):
            raise MidiMapError(f"{source}: expected tables [[cc]] and [[note]], got {_kind(data)}")
        unknown = set(data) - {"cc", "note"}
        if unknown:
            raise MidiMapError(f"{source}: unknown key {sorted(unknown)[0]!r} (a map holds [[cc]] and [[note]] tables)")
        cc_list = _list_of_tables(data.get("cc", []), source, "cc")
        note_list = _list_of_tables(data.get("note", []), source, "note")
        cc = [_read_cc(e, f"{source}: [[cc]] entry {i}") for i, e in enumerate(cc_list, 1)]
        notes = [_read_note(e, f"{source}: [[note]] entry {i}") for i, e in enumerate(note_list, 1)]
        _check_conflicts(cc, notes, source)
        return cls(cc, notes, path=path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MidiMap":
        """Read a TOML map file (a standalone map or a config file with ``[midi.mappings]``).

        Raises:
            MidiMapError: missing file, bad TOML or a bad entry: one line naming the file.
        """
        p = Path(path).expanduser()
        doc = read_toml(p, MidiMapError, "MIDI map")
        return cls.from_dict(doc, source=str(p), path=p)

    def to_toml(self, table: str | None = None) -> str:
        """The map as TOML: ``cc`` and ``note`` arrays of tables, at the top level or under the
        dotted ``table`` (e.g. ``midi.mappings``)."""
        import tomlkit

        doc: dict = {kind: [m.to_dict() for m in entries] for kind, entries in (("cc", self.cc), ("note", self.notes)) if entries}
        for part in reversed(table.split(".") if table else []):
            doc = {part: doc}
        return "# NoisyNeuron MIDI map: channels 1..16; see the README's MIDI section\n" + tomlkit.dumps(doc)

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the map as TOML, atomically (a temporary file, then a rename). Returns the path.

        Raises:
            MidiMapError: no path given and none remembered, or the file cannot be written.
        """
        target = Path(path).expanduser() if path is not None else self.path
        if target is None:
            raise MidiMapError("no file to save the MIDI map to: give a path")
        try:
            atomic_write_text(target, self.to_toml())
        except OSError as exc:
            raise MidiMapError(f"{target}: cannot write MIDI map: {exc.strerror or exc}") from None
        self.path = target
        return target


# ----- reading helpers ------------------------------------------------------------------------------
def _kind(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _list_of_tables(value, source: str, kind: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise MidiMapError(f"{source}: {kind} must be written as [[{kind}]] tables, got {_kind(value)}")
    return value


def _int(entry: dict, key: str, where: str, lo: int, hi: int, default: int | None = None) -> int:
    if key not in entry:
        if default is None:
            raise MidiMapError(f"{where}: missing {key}")
        return default
    v = entry[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise MidiMapError(f"{where}: {key} must be an integer, got {_kind(v)} {v!r}")
    if not lo <= v <= hi:
        raise MidiMapError(f"{where}: {key} {v} is out of range {lo}..{hi}")
    return v


def _control(entry: dict, where: str) -> str:
    v = entry.get("control")
    if v is None:
        raise MidiMapError(f"{where}: missing control (a key like \"separator.vocals\")")
    if not isinstance(v, str) or not v.strip():
        raise MidiMapError(f"{where}: control must be a non-empty string, got {_kind(v)} {v!r}")
    return v.strip()


def _check_keys(entry: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise MidiMapError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _read_cc(entry: dict, where: str) -> CCMapping:
    _check_keys(entry, _CC_KEYS, where)
    control = _control(entry, where)
    channel = _int(entry, "channel", where, 1, 16, default=1) - 1
    bits = _int(entry, "bits", where, 7, 14, default=7)
    if bits not in (7, 14):
        raise MidiMapError(f"{where}: bits must be 7 or 14, got {bits}")
    cc = _int(entry, "cc", where, 0, 31 if bits == 14 else 127)
    takeover = entry.get("takeover", "pickup")
    if takeover not in TAKEOVERS:
        raise MidiMapError(f"{where}: takeover must be one of {', '.join(TAKEOVERS)}, got {takeover!r}")
    return CCMapping(control, channel, cc, bits, takeover)


def _read_note(entry: dict, where: str) -> NoteMapping:
    _check_keys(entry, _NOTE_KEYS, where)
    control = _control(entry, where)
    channel = _int(entry, "channel", where, 1, 16, default=1) - 1
    note = _int(entry, "note", where, 0, 127)
    action = entry.get("action", "toggle")
    if action not in ACTIONS:
        raise MidiMapError(f"{where}: action must be one of {', '.join(ACTIONS)}, got {action!r}")
    value = entry.get("value")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MidiMapError(f"{where}: value must be a number, got {_kind(value)} {value!r}")
        if action != "solo":
            raise MidiMapError(f"{where}: value is only for action = \"solo\"")
        if not math.isfinite(value):
            raise MidiMapError(f"{where}: value must be finite, got {value!r}")
        value = float(value)
    elif action == "solo":
        raise MidiMapError(f"{where}: action \"solo\" needs a value (e.g. value = 1 for separator.solo: vocals)")
    momentary = entry.get("momentary", False)
    if not isinstance(momentary, bool):
        raise MidiMapError(f"{where}: momentary must be true or false, got {_kind(momentary)}")
    return NoteMapping(control, channel, note, action, value, momentary)


def _check_conflicts(cc: list[CCMapping], notes: list[NoteMapping], source: str) -> None:
    seen: dict[tuple[int, int], int] = {}
    for i, m in enumerate(cc, 1):
        for number in m.numbers:
            other = seen.get((m.channel, number))
            if other is not None:
                raise MidiMapError(
                    f"{source}: [[cc]] entry {i}: CC {number} on channel {m.channel + 1} is already used by entry {other}"
                )
            seen[(m.channel, number)] = i
    seen = {}
    for i, m in enumerate(notes, 1):
        other = seen.get((m.channel, m.note))
        if other is not None:
            raise MidiMapError(
                f"{source}: [[note]] entry {i}: note {m.note} on channel {m.channel + 1} is already used by entry {other}"
            )
        seen[(m.channel, m.note)] = i


def _check_action(m: NoteMapping, control, where: str) -> None:
    p = control.parameter
    if m.action == "toggle" and not control.is_toggle:
        raise MidiMapError(f"{where}: toggle needs an on/off control; {control.key} is a level (use mute or solo)")
    if m.action == "mute" and control.is_toggle:
        raise MidiMapError(f"{where}: mute needs a level; {control.key} is on/off (use toggle)")
    if m.action == "solo":
        if not p.minimum < m.value <= p.maximum:
            raise MidiMapError(
                f"{where}: solo value {m.value:g} is outside {control.key}'s range above its minimum "
                f"({p.minimum:g}..{p.maximum:g}]"
            )


def with_control(mapping: Mapping, control: str) -> Mapping:
    """``mapping`` for another control name (e.g. an address resolved to its key)."""
    return replace(mapping, control=control)
