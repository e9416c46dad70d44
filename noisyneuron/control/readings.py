"""What a running engine shows: meters, engine figures and analysis readings, polled at UI rate.

Displays (the TUI, OSC feedback, MIDI LED rings) never hook into the audio thread: they call
:func:`poll_readings` at their own rate (e.g. 20-30 times a second). The meters are updated by the
processing thread in place; a poll copies a consistent-enough snapshot (values at most one block
old). Processors that analyse (the classifier) expose a ``reading()`` method returning a small
immutable object, or None before their first decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MeterReading", "Readings", "poll_readings"]


@dataclass(frozen=True)
class MeterReading:
    """Levels of one meter, per channel, in dBFS (-120 is silence)."""

    peak_dbfs: tuple[float, ...]
    hold_dbfs: tuple[float, ...]
    rms_dbfs: tuple[float, ...]

    @classmethod
    def of(cls, meter) -> "MeterReading":
        return cls(
            tuple(float(x) for x in meter.peak_dbfs),
            tuple(float(x) for x in meter.hold_dbfs),
            tuple(float(x) for x in meter.rms_dbfs),
        )


@dataclass(frozen=True)
class Readings:
    """One poll of a running engine.

    Attributes:
        input, output: meters of the chain's input and output (None before the engine starts).
        latency_ms: input-to-output latency, in milliseconds.
        stats: the engine's counters (:class:`~noisyneuron.realtime.engine.EngineStats`).
        analysis: processor name -> its latest ``reading()`` (e.g. the classifier's label), for
            processors that have one and have produced one.
    """

    input: MeterReading | None
    output: MeterReading | None
    latency_ms: float
    stats: object
    analysis: dict[str, object] = field(default_factory=dict)


def poll_readings(engine) -> Readings:
    """Take one snapshot of ``engine`` (an :class:`~noisyneuron.realtime.engine.Engine`). Any thread."""
    analysis = {}
    for processor in engine.chain.processors:
        reading = getattr(processor, "reading", None)
        if callable(reading):
            value = reading()
            if value is not None:
                analysis[processor.name] = value
    return Readings(
        input=MeterReading.of(engine.input_meter) if engine.input_meter is not None else None,
        output=MeterReading.of(engine.output_meter) if engine.output_meter is not None else None,
        latency_ms=engine.latency_seconds * 1000.0,
        stats=engine.stats(),
        analysis=analysis,
    )
