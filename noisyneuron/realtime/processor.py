"""The processor contract, modelled on JUCE's ``AudioProcessor``.

A processor is a small object with named parameters (like a pedalboard plugin) and a life cycle:

1. :meth:`Processor.prepare` is called once before audio starts (and again whenever the sample
   rate, maximum block size or channel count change). Allocate every buffer here.
2. :meth:`Processor.process` is called for each block, from the audio thread (live) or the
   offline runner (files), with a float32 array shaped ``(frames, channels)``, C-contiguous,
   ``frames <= max_block``. It processes *in place*. It must not allocate arrays, lock, do I/O,
   log or raise: it runs on a deadline.
3. :meth:`Processor.reset` clears internal state (filter memories, STFT buffers) without
   reallocating, e.g. when the transport jumps.

:attr:`Processor.latency_samples` is the delay, in samples, that ``process`` adds between its
input and output (valid after ``prepare``). The :class:`~noisyneuron.realtime.chain.Chain`
adds them up and delays the dry signal by the total so that dry/wet mixing lines up.
"""

from __future__ import annotations

from noisyneuron.realtime.parameters import Parameter

__all__ = ["Processor"]


class Processor:
    """Base class for everything that runs in a :class:`~noisyneuron.realtime.chain.Chain`.

    Subclasses set :attr:`kind` (their type name, e.g. ``"karaoke"``), declare parameters in
    ``__init__`` with :meth:`add_parameter`, extend :meth:`prepare` / :meth:`reset` (calling
    ``super()``), and implement :meth:`process`.

    Args:
        name: instance name, unique in a chain (defaults to :attr:`kind`).
    """

    kind = "processor"

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self.kind
        self.parameters: dict[str, Parameter] = {}
        self.sample_rate = 0.0
        self.max_block = 0
        self.channels = 0

    def add_parameter(self, parameter: Parameter) -> Parameter:
        """Register ``parameter`` under its name and return it."""
        if parameter.name in self.parameters:
            raise ValueError(f"{self.name}: duplicate parameter {parameter.name!r}")
        self.parameters[parameter.name] = parameter
        return parameter

    def prepare(self, sample_rate: float, max_block: int, channels: int) -> None:
        """Get ready to process blocks of up to ``max_block`` frames of ``channels`` channels
        at ``sample_rate`` Hz. Subclasses allocate their buffers here and call ``super()``."""
        if sample_rate <= 0 or max_block <= 0 or channels <= 0:
            raise ValueError(
                f"{self.name}: bad prepare({sample_rate}, {max_block}, {channels})"
            )
        self.sample_rate = float(sample_rate)
        self.max_block = int(max_block)
        self.channels = int(channels)
        for parameter in self.parameters.values():
            parameter.prepare(sample_rate, max_block)

    def reset(self) -> None:
        """Clear processing state; parameters jump to their targets."""
        for parameter in self.parameters.values():
            parameter.reset()

    def process(self, block) -> None:
        """Process ``block`` (float32, ``(frames, channels)``) in place. Audio thread."""
        raise NotImplementedError

    @property
    def latency_samples(self) -> int:
        """Delay this processor adds between input and output, in samples."""
        return 0

    def describe(self) -> str:
        """One line naming the processor and its parameter values, for logs and ``--help``."""
        values = ", ".join(f"{p.name}={p.display()}" for p in self.parameters.values())
        return f"{self.name} ({self.kind}): {values}" if values else f"{self.name} ({self.kind})"
