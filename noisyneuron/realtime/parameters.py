"""Named, smoothed processor parameters that any thread may set without locks.

A :class:`Parameter` holds a *target* (what a fader, OSC or MIDI asked for) and a *smoothed*
value that the audio thread ramps toward the target over ``smoothing_seconds`` so that a jump
in the target never produces zipper noise.

Thread contract:

- Control threads call :meth:`Parameter.set` (or :meth:`Parameter.set_normalized`). That is a
  single attribute store of a Python float, which is atomic in CPython: no lock is needed and
  the audio thread can never see a torn value.
- The audio thread calls :meth:`Parameter.advance` or :meth:`Parameter.ramp` once per block.
  Both read the target once, and neither allocates array memory (``ramp`` fills a buffer made
  in :meth:`Parameter.prepare`).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Parameter", "db_to_gain"]


def db_to_gain(db: float, off_at_db: float | None = None) -> float:
    """Convert a level in dB to a linear gain; levels at or below ``off_at_db`` give 0.0."""
    if off_at_db is not None and db <= off_at_db:
        return 0.0
    return 10.0 ** (db / 20.0)


class Parameter:
    """A processor parameter with a range, a default, a unit and smoothing.

    Args:
        name: short identifier, unique within its processor (used in OSC addresses later).
        minimum: lowest value, in ``unit``.
        maximum: highest value, in ``unit``.
        default: initial value, in ``unit``.
        unit: unit of the value for display: ``"dB"``, ``"%"``, ``"Hz"``, ``"x"`` or ``""``.
        description: one line shown in help and the UI.
        smoothing_seconds: time for the smoothed value to reach a new target, in seconds
            (0 switches instantly, for discrete settings).
        off_at_minimum: for dB levels: the minimum means "off" (gain 0) and displays as "off".
        step: for discrete parameters, values are rounded to multiples of ``step``.
    """

    def __init__(
        self,
        name: str,
        minimum: float,
        maximum: float,
        default: float,
        unit: str = "",
        description: str = "",
        smoothing_seconds: float = 0.02,
        off_at_minimum: bool = False,
        step: float | None = None,
    ) -> None:
        if not minimum < maximum:
            raise ValueError(f"parameter {name!r}: minimum {minimum} must be below maximum {maximum}")
        if not minimum <= default <= maximum:
            raise ValueError(f"parameter {name!r}: default {default} outside [{minimum}, {maximum}]")
        self.name = name
        self.minimum = float(minimum)
        self.maximum = float(maximum)
        self.default = float(default)
        self.unit = unit
        self.description = description
        self.smoothing_seconds = float(smoothing_seconds)
        self.off_at_minimum = off_at_minimum
        self.step = step
        self._target = self.default
        # Audio-thread state, touched only by prepare/reset/advance/ramp.
        self._current = self.default
        self._increment = 0.0
        self._steps_left = 0
        self._ramp_target = self.default
        self._smoothing_samples = 0
        self._ramp_buffer = np.zeros(0, dtype=np.float32)
        self._index_buffer = np.zeros(0, dtype=np.float32)

    # ----- control side (any thread) -------------------------------------------------------
    @property
    def value(self) -> float:
        """The target value, in ``unit`` (what was last set)."""
        return self._target

    def set(self, value: float) -> float:
        """Set the target value in ``unit``, clamped to the range. Returns the value applied.

        Raises:
            ValueError: for NaN or infinite values (they are never passed on).
        """
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"parameter {self.name!r}: value must be finite, got {value}")
        value = min(self.maximum, max(self.minimum, value))
        if self.step:
            value = self.minimum + round((value - self.minimum) / self.step) * self.step
            value = min(self.maximum, value)
        self._target = value  # one atomic store
        return value

    @property
    def normalized(self) -> float:
        """The target value mapped linearly to 0..1."""
        return (self._target - self.minimum) / (self.maximum - self.minimum)

    def set_normalized(self, x: float) -> float:
        """Set the target from a 0..1 control value (clamped). Returns the value applied, in ``unit``."""
        x = float(x)
        if not math.isfinite(x):
            raise ValueError(f"parameter {self.name!r}: normalised value must be finite, got {x}")
        x = min(1.0, max(0.0, x))
        return self.set(self.minimum + x * (self.maximum - self.minimum))

    def display(self, value: float | None = None) -> str:
        """A human-readable string for ``value`` (default: the target), e.g. ``"-12.0 dB"`` or ``"off"``."""
        v = self._target if value is None else value
        if self.off_at_minimum and v <= self.minimum:
            return "off"
        text = f"{v:.0f}" if self.step and float(self.step).is_integer() else f"{v:.1f}"
        return f"{text} {self.unit}".rstrip()

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, {self.display()}, range=[{self.minimum}, {self.maximum}] {self.unit})"

    # ----- audio side ----------------------------------------------------------------------
    def prepare(self, sample_rate: float, max_block: int) -> None:
        """Allocate the ramp buffer and set the smoothing time for ``sample_rate`` (Hz)."""
        self._smoothing_samples = max(0, int(round(self.smoothing_seconds * sample_rate)))
        self._ramp_buffer = np.zeros(max_block, dtype=np.float32)
        self._index_buffer = np.arange(1, max_block + 1, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Jump the smoothed value to the target (no ramp)."""
        self._current = self._target
        self._ramp_target = self._target
        self._increment = 0.0
        self._steps_left = 0

    def _follow_target(self) -> None:
        target = self._target  # read once
        if target != self._ramp_target:
            self._ramp_target = target
            if self._smoothing_samples <= 0:
                self._current = target
                self._steps_left = 0
            else:
                self._steps_left = self._smoothing_samples
                self._increment = (target - self._current) / self._smoothing_samples

    @property
    def smoothed(self) -> float:
        """The smoothed value the audio thread is using now, in ``unit``."""
        return self._current

    @property
    def is_smoothing(self) -> bool:
        """True while the smoothed value is still moving toward the target."""
        return self._steps_left > 0 or self._target != self._ramp_target

    def advance(self, n: int) -> float:
        """Advance the smoother by ``n`` samples and return the value reached (audio thread)."""
        self._follow_target()
        if self._steps_left > 0:
            if n >= self._steps_left:
                self._current = self._ramp_target
                self._steps_left = 0
            else:
                self._current += self._increment * n
                self._steps_left -= n
        return self._current

    def ramp(self, n: int) -> np.ndarray:
        """Per-sample smoothed values for the next ``n`` samples (a view of a preallocated buffer).

        ``n`` must not exceed the ``max_block`` given to :meth:`prepare`.
        """
        self._follow_target()
        out = self._ramp_buffer[:n]
        if self._steps_left <= 0:
            out.fill(self._current)
            return out
        moving = min(n, self._steps_left)
        np.multiply(self._index_buffer[:moving], self._increment, out=out[:moving])
        out[:moving] += self._current
        if moving < n:
            out[moving:] = self._ramp_target
            self._current = self._ramp_target
            self._steps_left = 0
        else:
            self._current += self._increment * moving
            self._steps_left -= moving
            if self._steps_left == 0:
                self._current = self._ramp_target
        return out
