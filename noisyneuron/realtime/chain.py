"""The chain: an ordered list of processors run as one (the plugin host).

The chain

- runs its processors in order, in place, on each block;
- reports its total latency (the sum of the processors' latencies), in samples;
- gives every processor a smoothed bypass: a bypassed processor keeps running (so its state is
  warm when it comes back) and its output is cross-faded to its input delayed by its own latency,
  so bypassing never changes the chain's latency or clicks;
- mixes dry and wet (``mix``, in %) with the dry signal delayed by the total latency;
- runs those delay lines only while they are needed: when a bypass or a mix below 100 % is asked
  for, the delay line starts filling and the cross-fade begins once it holds a full latency of
  signal (so a bypass takes effect after the processor's latency plus 10 ms of fade);
- replaces NaN/Inf samples at its input and output with silence and counts them, so a bad
  sample is never passed on.

The same chain object runs live (in the engine) and offline (over files): that is what makes the
two paths give the same samples.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from noisyneuron.dsp.delay import DelayLine
from noisyneuron.dsp.sanitize import replace_nonfinite
from noisyneuron.realtime.parameters import Parameter
from noisyneuron.realtime.processor import Processor

__all__ = ["Chain"]


class Chain:
    """An ordered list of processors with bypass, latency compensation and dry/wet mix.

    Args:
        processors: processors in signal order; their names must be unique.
        name: the chain's name (e.g. ``"karaoke"``), shown in the UI and logs.
    """

    def __init__(self, processors: Iterable[Processor], name: str = "chain") -> None:
        self.name = name
        #: one line for the user about how this chain was chosen or built ("" when nothing to say)
        self.note = ""
        self.processors: list[Processor] = list(processors)
        names = [p.name for p in self.processors]
        if len(set(names)) != len(names):
            raise ValueError(f"chain {name!r}: processor names must be unique, got {names}")
        self.mix = Parameter("mix", 0.0, 100.0, 100.0, "%", "dry/wet mix of the whole chain")
        self.bypass: dict[str, Parameter] = {
            p.name: Parameter(
                "bypass", 0.0, 1.0, 0.0, "", f"bypass {p.name}", smoothing_seconds=0.01, step=1.0
            )
            for p in self.processors
        }
        #: NaN/Inf samples replaced at the chain's input and output since prepare/reset.
        self.nonfinite_in = 0
        self.nonfinite_out = 0
        self.sample_rate = 0.0
        self.max_block = 0
        self.channels = 0
        self._prepared = False

    def __getitem__(self, name: str) -> Processor:
        for p in self.processors:
            if p.name == name:
                return p
        raise KeyError(f"chain {self.name!r} has no processor {name!r}")

    @property
    def latency_samples(self) -> int:
        """Total latency of the chain, in samples (valid after :meth:`prepare`)."""
        return sum(p.latency_samples for p in self.processors)

    def prepare(self, sample_rate: float, max_block: int, channels: int) -> None:
        """Prepare every processor and allocate the chain's buffers."""
        self.sample_rate = float(sample_rate)
        self.max_block = int(max_block)
        self.channels = int(channels)
        for p in self.processors:
            p.prepare(sample_rate, max_block, channels)
            self.bypass[p.name].prepare(sample_rate, max_block)
        self.mix.prepare(sample_rate, max_block)
        # dry amount = 1 - mix / 100; bypass amount = bypass
        self._dry_blend = _DelayedBlend(self.mix, 1.0, -0.01, self.latency_samples, channels, max_block)
        self._bypass_blends = [
            _DelayedBlend(self.bypass[p.name], 0.0, 1.0, p.latency_samples, channels, max_block)
            for p in self.processors
        ]
        self.nonfinite_in = 0
        self.nonfinite_out = 0
        self._prepared = True

    def reset(self) -> None:
        """Clear all processing state (processors, delay lines, counters)."""
        for p in self.processors:
            p.reset()
            self.bypass[p.name].reset()
        self.mix.reset()
        if self._prepared:
            self._dry_blend.reset()
            for blend in self._bypass_blends:
                blend.reset()
        self.nonfinite_in = 0
        self.nonfinite_out = 0

    def process(self, block: np.ndarray) -> None:
        """Process ``block`` (float32 ``(frames, channels)``, frames <= max_block) in place."""
        self.nonfinite_in += replace_nonfinite(block)
        self._dry_blend.feed(block)
        for processor, blend in zip(self.processors, self._bypass_blends):
            blend.feed(block)
            processor.process(block)
            blend.apply(block)
        self._dry_blend.apply(block)
        self.nonfinite_out += replace_nonfinite(block)

    def describe(self) -> str:
        """A multi-line summary: processors, parameters, latency."""
        lines = [f"chain {self.name!r}: latency {self.latency_samples} samples"]
        for p in self.processors:
            state = " [bypassed]" if self.bypass[p.name].value >= 0.5 else ""
            lines.append(f"  {p.describe()}{state}")
        return "\n".join(lines)


class _DelayedBlend:
    """Cross-fades a block toward a delayed reference signal, as far as a parameter says.

    ``amount = offset + scale * parameter`` (0: the block unchanged, 1: the reference). The delay
    line is fed only while the amount is, or is about to become, non-zero; the cross-fade waits
    until it holds ``delay`` samples of reference, so stale history is never heard.
    """

    def __init__(self, parameter: Parameter, offset: float, scale: float, delay: int,
                 channels: int, max_block: int) -> None:
        self.parameter = parameter
        self.offset = offset
        self.scale = scale
        self.delay = delay
        self._line = DelayLine(delay, channels, max_block)
        self._reference = np.zeros((max_block, channels), dtype=np.float32)
        self._amount = np.zeros(max_block, dtype=np.float32)
        self._fed = 0  # samples fed since the line was last idle
        self._frames = 0

    def reset(self) -> None:
        self._line.reset()
        self._fed = 0

    def _needed(self) -> bool:
        p = self.parameter
        return (
            self.offset + self.scale * p.value != 0.0
            or self.offset + self.scale * p.smoothed != 0.0
            or p.is_smoothing
        )

    def feed(self, block: np.ndarray) -> None:
        """Push the reference (call before the block is processed)."""
        self._frames = block.shape[0]
        if self._needed():
            self._line.process(block, self._reference[: self._frames])
            self._fed += self._frames
        else:
            self._fed = 0

    def apply(self, block: np.ndarray) -> None:
        """Cross-fade the processed ``block`` toward the reference (call after processing)."""
        n = self._frames
        if self._fed - n < self.delay:  # idle, or the reference is not yet a full latency long
            return
        amount = self._amount[:n]
        np.multiply(self.parameter.ramp(n), self.scale, out=amount)
        amount += self.offset
        _crossfade_into(block, self._reference[:n], amount)


def _crossfade_into(block: np.ndarray, other: np.ndarray, amount: np.ndarray) -> None:
    """``block = block * (1 - amount) + other * amount`` per frame, in place, with no temporaries.

    ``amount`` is shaped ``(frames,)``. ``other`` is used as scratch and is overwritten.
    """
    np.subtract(other, block, out=other)
    np.multiply(other, amount[:, None], out=other)
    np.add(block, other, out=block)
