"""The control surface: one path for every parameter change, from any source.

Every parameter of a running chain gets an address, ``/noisyneuron/<processor>/<param>``:

- each processor parameter, e.g. ``/noisyneuron/separator/vocals`` (dB);
- each processor's bypass, ``/noisyneuron/<processor>/bypass`` (0 or 1);
- the chain's dry/wet mix, ``/noisyneuron/chain/mix`` (%).

A :class:`Control` reads its value in the parameter's unit, normalised to 0..1, and as a display
string. The TUI, OSC, MIDI and presets all change values through :meth:`ControlSurface.set`,
which clamps, stores the new target in the :class:`~noisyneuron.realtime.parameters.Parameter`
(the audio thread ramps toward it, so every change is smoothed) and then tells the listeners
(OSC feedback, MIDI LED rings, the UI), naming the source so a source can skip its own echo.

Thread contract: :meth:`ControlSurface.set` may be called from any thread except the audio
thread. Listeners run on the caller's thread, must be quick and must not call ``set`` again;
an exception in a listener is counted (:attr:`ControlSurface.listener_errors`) and never reaches
the caller. Reading sources (meters, the classifier) are polled by whoever displays them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from noisyneuron.control.values import BadValue, parse_value
from noisyneuron.errors import UserError
from noisyneuron.realtime.chain import Chain
from noisyneuron.realtime.parameters import Parameter

__all__ = ["ADDRESS_PREFIX", "CHAIN_CONTROLS", "Control", "ControlState", "ControlSurface", "UnknownControl"]

#: The first part of every address.
ADDRESS_PREFIX = "/noisyneuron"
#: The pseudo-processor that holds the chain's own parameters (``/noisyneuron/chain/mix``).
CHAIN_CONTROLS = "chain"

Listener = Callable[["Control", float, str], None]


class UnknownControl(UserError):
    """No control answers to that name or address."""


@dataclass(frozen=True)
class ControlState:
    """A control's value at one moment.

    Attributes:
        value: in the parameter's unit (dB, %, Hz...).
        normalized: the same value mapped to 0..1.
        display: human-readable, e.g. ``"-12.0 dB"`` or ``"off"``.
    """

    value: float
    normalized: float
    display: str


@dataclass(frozen=True)
class Control:
    """One addressable parameter.

    Attributes:
        processor: the processor's name in the chain, or ``"chain"`` for the mix.
        name: the parameter's name (``"vocals"``, ``"bypass"``, ``"mix"``).
        parameter: the parameter itself (range, unit, smoothing).
    """

    processor: str
    name: str
    parameter: Parameter

    @property
    def address(self) -> str:
        """OSC-style address, e.g. ``/noisyneuron/separator/vocals``."""
        return f"{ADDRESS_PREFIX}/{self.processor}/{self.name}"

    @property
    def key(self) -> str:
        """Short name, e.g. ``separator.vocals`` (used by ``--set``, presets and MIDI maps)."""
        return f"{self.processor}.{self.name}"

    @property
    def is_toggle(self) -> bool:
        """True for on/off controls (bypass and other 0..1 parameters stepped by 1)."""
        p = self.parameter
        return bool(p.step) and p.minimum == 0.0 and p.maximum == 1.0

    def state(self) -> ControlState:
        p = self.parameter
        return ControlState(p.value, p.normalized, p.display())


class ControlSurface:
    """The addressable parameters of a chain, and the one way to change them.

    Args:
        chain: the chain whose processors' parameters, bypasses and mix are exposed.
    """

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        controls: list[Control] = []
        for processor in chain.processors:
            if processor.name == CHAIN_CONTROLS:
                raise ValueError(f"a processor may not be called {CHAIN_CONTROLS!r}: that name holds the chain's mix")
            for parameter in processor.parameters.values():
                controls.append(Control(processor.name, parameter.name, parameter))
            controls.append(Control(processor.name, "bypass", chain.bypass[processor.name]))
        controls.append(Control(CHAIN_CONTROLS, "mix", chain.mix))
        #: every control, by address, in chain order
        self.controls: dict[str, Control] = {c.address: c for c in controls}
        self._by_key = {c.key: c for c in controls}
        #: other addresses that reach a control: a one-processor chain named for what it does
        #: (``karaoke``, which picks the centre cut or the neural separator) answers to
        #: ``karaoke.<param>`` / ``/noisyneuron/karaoke/<param>`` whichever it picked, so examples
        #: and presets written for it work either way
        self.aliases: dict[str, Control] = {}
        names = {p.name for p in chain.processors}
        if len(chain.processors) == 1 and chain.name not in names and chain.name != CHAIN_CONTROLS:
            for c in controls:
                if c.processor != CHAIN_CONTROLS:
                    alias = Control(chain.name, c.name, c.parameter)
                    self.aliases[alias.address] = c
                    self._by_key.setdefault(alias.key, c)
        self._listeners: tuple[Listener, ...] = ()
        #: exceptions raised by listeners (each one is a bug in that listener)
        self.listener_errors = 0

    # ----- lookup ------------------------------------------------------------------------------
    def find(self, name: str) -> Control:
        """The control called ``name``: an address (``/noisyneuron/separator/vocals``), a key
        (``separator.vocals``) or a bare parameter name when only one processor has it (``vocals``).

        Raises:
            UnknownControl: with the known keys, when nothing (or more than one control) matches.
        """
        control = self.controls.get(name) or self._by_key.get(name) or self.aliases.get(name)
        if control is not None:
            return control
        if name.startswith(ADDRESS_PREFIX + "/"):
            raise UnknownControl(f"unknown address {name!r}; known: {', '.join(self.controls)}")
        matches = [c for c in self.controls.values() if c.name == name]  # each control once, not its aliases
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UnknownControl(f"{name!r} is ambiguous: write one of {', '.join(c.key for c in matches)}")
        raise UnknownControl(f"no control {name!r} in chain {self.chain.name!r}; known: {', '.join(c.key for c in self.controls.values())}")

    def __iter__(self):
        return iter(self.controls.values())

    def __len__(self) -> int:
        return len(self.controls)

    # ----- the one path for changes -----------------------------------------------------------------
    def set(self, name: str | Control, value: float, *, normalized: bool = False, source: str = "api") -> float:
        """Set a control and tell the listeners. Returns the value applied, in the unit.

        Args:
            name: a :class:`Control` or anything :meth:`find` accepts.
            value: in the parameter's unit, or 0..1 when ``normalized``; clamped to the range.
                ``-inf`` in a unit value means the minimum (``off`` for levels).
            normalized: ``value`` is 0..1.
            source: who asked (``"osc"``, ``"midi"``, ``"tui"``, ``"preset"``...), passed to listeners.

        Raises:
            UnknownControl: unknown name.
            ValueError: NaN (or an infinite normalised value); nothing is changed.
        """
        control = name if isinstance(name, Control) else self.find(name)
        parameter = control.parameter
        value = float(value)
        if normalized:
            applied = parameter.set_normalized(value)
        else:
            if value == -math.inf:
                value = parameter.minimum
            applied = parameter.set(value)
        for listener in self._listeners:
            try:
                listener(control, applied, source)
            except Exception:  # noqa: BLE001 - a broken listener must not break the setter
                self.listener_errors += 1
        return applied

    def apply_settings(self, settings: list[str], *, source: str = "cli") -> None:
        """Apply ``KEY=VALUE`` settings (``--set``): ``KEY`` is anything :meth:`find` takes
        (``separator.vocals``, ``vocals``, ``chain.mix``, ``karaoke.bypass``, an address, every
        key a preset stores), ``VALUE`` anything :func:`parse_value` takes, in the control's unit.

        Raises:
            UserError: one line: no ``=``, an unknown or ambiguous key, a bad value.
        """
        for setting in settings:
            key, sep, raw = str(setting).partition("=")
            if not sep or not key.strip():
                raise UserError(f"bad setting {setting!r}: write KEY=VALUE, e.g. vocals=-20 or separator.drums=off")
            control = self.find(key.strip())
            try:
                value = parse_value(raw, control.parameter.unit, control.is_toggle)
            except BadValue as exc:
                raise BadValue(f"bad value in {setting!r}: {exc}") from None
            self.set(control, value, source=source)

    def toggle(self, name: str | Control, *, source: str = "api") -> float:
        """Flip an on/off control (bypass, solo-like 0/1 parameters). Returns the new value."""
        control = name if isinstance(name, Control) else self.find(name)
        p = control.parameter
        midpoint = 0.5 * (p.minimum + p.maximum)
        return self.set(control, p.minimum if p.value > midpoint else p.maximum, source=source)

    def get(self, name: str | Control) -> ControlState:
        """The control's current target value, normalised value and display string."""
        control = name if isinstance(name, Control) else self.find(name)
        return control.state()

    # ----- listeners ---------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(control, value, source)`` after every change. Returns an unsubscribe function."""
        self._listeners = self._listeners + (listener,)

        def unsubscribe() -> None:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    # ----- presets -----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, float]:
        """Every control's value in its unit, by key (what a preset stores)."""
        return {c.key: c.parameter.value for c in self.controls.values()}

    def restore(self, values: dict[str, float], *, source: str = "preset") -> list[str]:
        """Set the controls named in ``values`` (keys or addresses, unit values). Returns the names
        this chain does not have (a preset saved with another chain); everything else is applied."""
        unknown = []
        for name, value in values.items():
            try:
                control = self.find(name)
            except UnknownControl:
                unknown.append(name)
                continue
            self.set(control, value, source=source)
        return unknown
