"""Test support for the TUI tests: an engine-like object with fixed readings around a real chain.

It has the attributes :func:`noisyneuron.control.readings.poll_readings` and the TUI read from an
:class:`~noisyneuron.realtime.engine.Engine`; the chain, its processors and the control surface
are the real ones. Tests that need audio use a real Engine on the JACK dummy server instead.
"""

from __future__ import annotations

import numpy as np

from noisyneuron.realtime.engine import EngineStats


class FixedMeter:
    def __init__(self, peak, rms, hold=None):
        self.peak_dbfs = np.asarray(peak, dtype=np.float32)
        self.rms_dbfs = np.asarray(rms, dtype=np.float32)
        self.hold_dbfs = np.asarray(hold if hold is not None else peak, dtype=np.float32)


class FakeEngine:
    """Fixed meters and counters; ``on_block`` is set by the session like on a real engine."""

    def __init__(self, chain, input=None, output=None, sample_rate=None, blocksize=256, backend="rtmixer",
                 buffer_blocks=2, **_):
        self.chain = chain
        self.sample_rate = float(sample_rate or 48000)
        self.blocksize = blocksize
        self.input_name = f"device {input}" if input is not None else "system"
        self.output_name = f"device {output}" if output is not None else "system"
        self.input_meter = FixedMeter([-12.0, -14.5], [-18.0, -20.0], [-6.0, -9.0])
        self.output_meter = FixedMeter([-15.0, -16.0], [-24.0, -25.0], [-10.0, -11.0])
        self.on_block = None
        self.started = 0
        self.stopped = 0
        self.finished = False
        self._stats = EngineStats(blocks=18750, xruns=0, late_blocks=0, callback_load=0.031,
                                  processing_load_mean=0.013, processing_load_p99=0.028, seconds=100.0)

    @property
    def latency_seconds(self) -> float:
        return 3071 / self.sample_rate

    def latency_breakdown(self):
        return {"device_input": 512, "device_output": 512, "ring_buffer": 512, "chain": 1535, "total": 3071}

    def describe_endpoints(self):
        return f"{self.input_name} (JACK Audio Connection Kit, 2 ch)", f"{self.output_name} (JACK Audio Connection Kit, 2 ch)"

    def stats(self):
        return self._stats

    def start(self):
        self.chain.prepare(self.sample_rate, self.blocksize, 2)
        self.started += 1

    def stop(self):
        self.stopped += 1


def music_signal(sample_rate: float = 48000.0, seconds: float = 0.2) -> np.ndarray:
    """A fixed stereo block sequence (three sines) for the spectrum."""
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    x = 0.5 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 1500 * t) + 0.05 * np.sin(2 * np.pi * 7000 * t)
    return np.stack([x, x], axis=1).astype(np.float32)
