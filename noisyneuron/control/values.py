"""The one parser for control values people write: ``--set``, OSC strings and config files.

Light on purpose (no numpy): ``noisyneuron osc ...`` imports it and starts in milliseconds.
"""

from __future__ import annotations

import math
import re

from noisyneuron.errors import UserError

__all__ = ["BadValue", "parse_value"]


class BadValue(UserError):
    """A value that is not a number, a level word or a number in the control's unit."""


_VALUE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z%]*)\s*$")
#: Unit suffixes people write, per parameter unit: suffix (lower case) -> factor to the unit.
_SUFFIXES = {"dB": {"db": 1.0}, "%": {"%": 1.0}, "Hz": {"hz": 1.0, "khz": 1000.0}, "x": {"x": 1.0}}


def parse_value(raw, unit: str | None = "", toggle: bool = False) -> float:
    """A value in a parameter's ``unit`` from what people write, the same for ``--set``, OSC
    strings and config files:

    - a number (``-12``, ``0.5``, ``1e3``), or a number with the unit (``-12 dB``, ``-12dB``,
      ``50 %``, ``2 kHz``, ``120 Hz``; case does not matter; ``unit=None``: any of these units,
      for values read before the control is known, e.g. a config file's);
    - ``off`` or ``-inf``: ``-inf``, which :meth:`~noisyneuron.control.surface.ControlSurface.set` takes as the minimum
      (``off`` for levels);
    - for toggles (``toggle``): ``on``/``true`` (1) and ``false`` (0) too; ``off`` is 0.

    Raises:
        BadValue: one line naming what was wrong (NaN, +inf, an unknown word, another unit).
    """
    if isinstance(raw, bool):
        if toggle:
            return 1.0 if raw else 0.0
        raise BadValue(f"{raw!r} is not a number")
    if isinstance(raw, (int, float)):
        x = float(raw)
    else:
        text = str(raw).strip()
        word = text.lower()
        if word in ("off", "-inf"):
            return 0.0 if toggle else -math.inf
        if toggle and word in ("on", "true", "false"):
            return 0.0 if word == "false" else 1.0
        m = _VALUE.match(text)
        if m is None:
            raise BadValue(f"{text!r} is not a number" + (f" (or a number in {unit})" if unit else "") + ", off or -inf")
        x = float(m.group(1))
        suffix = m.group(2).lower()
        if suffix:
            if unit is None:
                factor = next((f[suffix] for f in _SUFFIXES.values() if suffix in f), None)
            else:
                factor = _SUFFIXES.get(unit, {}).get(suffix)
            if factor is None:
                raise BadValue(f"{text!r}: this control is in {unit or 'plain numbers'}, not {m.group(2)}")
            x *= factor
    if math.isnan(x) or x == math.inf:
        raise BadValue(f"{raw!r} is not a finite number")
    return x
