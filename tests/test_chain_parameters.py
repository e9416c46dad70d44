"""The processor contract: parameters (smoothing, ranges, thread safety) and the chain host."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noisyneuron.errors import UserError
from noisyneuron.realtime.chain import Chain
from noisyneuron.realtime.parameters import Parameter, db_to_gain
from noisyneuron.realtime.processor import Processor
from noisyneuron.dsp.delay import DelayLine


class Invert(Processor):
    kind = "invert"

    def process(self, block):
        np.negative(block, out=block)


class Delay(Processor):
    """Pure delay of ``delay`` samples (reports it as latency)."""

    kind = "delay"

    def __init__(self, delay, name=None):
        super().__init__(name)
        self.delay = delay
        self.add_parameter(Parameter("gain", -60, 6, 0, "dB", off_at_minimum=True))

    def prepare(self, sample_rate, max_block, channels):
        super().prepare(sample_rate, max_block, channels)
        self._line = DelayLine(self.delay, channels)

    def process(self, block):
        self._line.process(block, block)
        block *= db_to_gain(self.parameters["gain"].advance(len(block)), self.parameters["gain"].minimum)

    @property
    def latency_samples(self):
        return self.delay


def test_parameter_clamps_rejects_nan_and_maps_normalised():
    p = Parameter("vocals", -60, 6, -60, "dB", off_at_minimum=True)
    assert p.set(100) == 6 and p.set(-100) == -60
    assert p.display() == "off"
    with pytest.raises(ValueError):
        p.set(float("nan"))
    assert p.set_normalized(0.5) == pytest.approx(-27)
    assert p.normalized == pytest.approx(0.5)
    assert p.display() == "-27.0 dB"


def test_parameter_ramp_is_linear_and_reaches_target_in_smoothing_time():
    p = Parameter("g", 0, 1, 0, smoothing_seconds=0.01)
    p.prepare(1000, 64)  # 10 samples of smoothing
    p.set(1.0)
    r = p.ramp(16).copy()
    np.testing.assert_allclose(r[:10], np.arange(1, 11) / 10, atol=1e-6)
    assert np.all(r[10:] == 1.0)
    assert not p.is_smoothing


@given(st.lists(st.floats(-60, 6), min_size=1, max_size=20), st.integers(1, 64))
@settings(max_examples=50, deadline=None)
def test_parameter_ramp_never_jumps_more_than_one_step(targets, block):
    p = Parameter("g", -60, 6, 0, smoothing_seconds=0.02)
    p.prepare(1000, 64)  # 20 samples of smoothing
    last = p.smoothed
    for t in targets:
        p.set(t)
        r = p.ramp(block)
        steps = np.abs(np.diff(np.concatenate([[last], r])))
        assert steps.max() <= 66 / 20 + 1e-4  # full range over the smoothing time, at most
        last = float(r[-1])


def test_parameter_set_from_another_thread_while_audio_thread_ramps():
    p = Parameter("g", 0, 1, 0, smoothing_seconds=0.001)
    p.prepare(48000, 256)
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            p.set((i % 2) * 1.0)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    for _ in range(2000):
        r = p.ramp(256)
        assert np.all((r >= -1e-6) & (r <= 1 + 1e-6))
    stop.set()
    t.join()


def test_chain_latency_is_the_sum_and_dry_mix_lines_up():
    chain = Chain([Delay(100, "a"), Delay(28, "b")])
    chain.prepare(48000, 64, 2)
    assert chain.latency_samples == 128
    chain.mix.set(50)
    chain.mix.reset()
    x = np.random.default_rng(0).standard_normal((64 * 20, 2)).astype(np.float32)
    y = x.copy()
    for i in range(0, len(y), 64):
        chain.process(y[i : i + 64])
    # 50% wet (delayed 128) + 50% dry (delayed 128 to match) = the input delayed by 128
    np.testing.assert_allclose(y[128:], x[:-128], atol=1e-5)


def test_bypass_keeps_latency_and_crossfades_without_clicks():
    chain = Chain([Invert(), Delay(32)])
    chain.prepare(48000, 64, 1)
    x = np.ones((64 * 40, 1), dtype=np.float32)
    y = x.copy()
    for i in range(0, len(y), 64):
        if i == 64 * 20:
            chain.bypass["invert"].set(1)
        chain.process(y[i : i + 64])
    assert y[64 * 19, 0] == pytest.approx(-1.0)  # inverted before
    assert y[-1, 0] == pytest.approx(1.0)  # passed through after
    assert np.abs(np.diff(y[64:, 0])).max() < 0.05  # smoothed over 10 ms: no jump (after the latency)


def test_chain_replaces_and_counts_nonfinite_samples():
    chain = Chain([Invert()])
    chain.prepare(48000, 8, 2)
    block = np.ones((8, 2), dtype=np.float32)
    block[2, 0] = np.nan
    block[5, 1] = np.inf
    chain.process(block)
    assert np.isfinite(block).all()
    assert chain.nonfinite_in == 2
    assert block[2, 0] == 0.0


def test_set_goes_through_the_control_surface_with_one_value_parser():
    """--set takes every key the surface (and so a preset) has, and the values people write."""
    from noisyneuron.control.surface import ControlSurface

    chain = Chain([Delay(1, "a")], name="t")
    surface = ControlSurface(chain)
    heard = []
    surface.subscribe(lambda control, value, source: heard.append((control.key, value, source)))
    surface.apply_settings(["gain=-12", "a.bypass=1", "mix=40"])
    assert chain["a"].parameters["gain"].value == -12
    assert chain.bypass["a"].value == 1 and chain.mix.value == 40
    assert heard[0] == ("a.gain", -12.0, "cli")  # listeners hear --set like any other change
    surface.apply_settings(["chain.mix=50", "a.gain=-6 dB", "a.bypass=off", "/noisyneuron/a/gain=-3dB"])
    assert chain.mix.value == 50 and chain["a"].parameters["gain"].value == -3 and chain.bypass["a"].value == 0
    surface.apply_settings(["a.gain=off"])
    assert chain["a"].parameters["gain"].display() == "off"
    surface.apply_settings(["a.bypass=on"])
    assert chain.bypass["a"].value == 1
    for key in [c.key for c in surface]:  # every key a preset stores
        surface.apply_settings([f"{key}={surface.find(key).parameter.default}"])
    with pytest.raises(UserError, match="no control 'nope'"):
        surface.apply_settings(["nope=1"])
    with pytest.raises(UserError, match="KEY=VALUE"):
        surface.apply_settings(["gain"])
    with pytest.raises(UserError, match="not a number"):
        surface.apply_settings(["gain=loud"])
    with pytest.raises(UserError, match="not Hz"):
        surface.apply_settings(["gain=12 Hz"])
    with pytest.raises(UserError, match="not a number"):
        surface.apply_settings(["gain=nan"])
    with pytest.raises(UserError, match="finite"):
        surface.apply_settings(["gain=1e999"])


def test_value_parser():
    import math

    from noisyneuron.control.values import BadValue, parse_value

    assert parse_value("-12") == parse_value("-12 dB", "dB") == parse_value("-12DB", "dB") == -12.0
    assert parse_value("2 kHz", "Hz") == 2000.0 and parse_value("50 %", "%") == 50.0
    assert parse_value("off", "dB") == parse_value("-inf") == -math.inf
    assert parse_value("off", toggle=True) == 0.0 and parse_value("on", toggle=True) == 1.0
    assert parse_value("2 kHz", unit=None) == 2000.0  # a config file's value, read before its control is known
    assert parse_value(3) == 3.0 and parse_value(True, toggle=True) == 1.0
    for bad, unit in [("loud", "dB"), ("on", "dB"), ("12 Hz", "dB"), ("inf", ""), ("nan", ""), ("1e999", "")]:
        with pytest.raises(BadValue):
            parse_value(bad, unit)
