"""StreamingStft and batch stft/istft: exact latency, perfect reconstruction, COLA checks."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from noisyneuron.dsp.stft import (
    StreamingStft,
    cola_constant,
    istft,
    make_window,
    n_frames,
    stft,
)

# (analysis, synthesis, overlap factors R = n_fft / hop for which analysis*synthesis is COLA)
COLA_PAIRS = [
    ("sqrt_hann", None, (2, 4, 8)),
    ("hann", "rect", (2, 3, 4)),
    ("hann", None, (3, 4)),  # hann^2
    ("hamming", "rect", (2, 4)),
    ("blackman", "rect", (3, 4)),
    ("rect", "rect", (1, 2)),
    ("rect", "hann", (2, 4)),
]

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def cola_configs(draw):
    analysis, synthesis, factors = draw(st.sampled_from(COLA_PAIRS))
    factor = draw(st.sampled_from(factors))
    hop = draw(st.integers(1, 24))
    n_fft = hop * factor
    if n_fft < 2:
        n_fft, hop = 2 * factor, 2
    channels = draw(st.integers(1, 3))
    max_block = draw(st.integers(1, 4 * n_fft))
    sizes = draw(st.lists(st.integers(1, max_block), min_size=1, max_size=40))
    seed = draw(st.integers(0, 2**31 - 1))
    return analysis, synthesis, n_fft, hop, channels, max_block, sizes, seed


def _run_stream(engine: StreamingStft, x: np.ndarray, sizes, frame_fn=None) -> np.ndarray:
    y = np.empty_like(x)
    pos = 0
    i = 0
    while pos < x.shape[0]:
        n = min(sizes[i % len(sizes)], x.shape[0] - pos)
        block = x[pos : pos + n].copy()
        engine.process(block, frame_fn)
        y[pos : pos + n] = block
        pos += n
        i += 1
    return y


@SETTINGS
@given(cola_configs())
def test_identity_reconstructs_input_after_exactly_latency(config):
    analysis, synthesis, n_fft, hop, channels, max_block, sizes, seed = config
    engine = StreamingStft(n_fft, hop, channels, max_block, analysis, synthesis)
    latency = engine.latency_samples
    assert latency == n_fft - 1
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (latency + 3 * n_fft + sum(sizes), channels)).astype(np.float32)
    y = _run_stream(engine, x, sizes, lambda spectra: None)
    np.testing.assert_allclose(y[:latency], 0.0, atol=1e-5)
    np.testing.assert_allclose(y[latency:], x[: x.shape[0] - latency], atol=1e-5, rtol=0)


def test_impulse_comes_out_after_n_fft_minus_one_samples():
    engine = StreamingStft(64, 16, 2, 7, "sqrt_hann")
    x = np.zeros((300, 2), dtype=np.float32)
    x[10, 0] = 1.0
    x[20, 1] = -0.5
    y = _run_stream(engine, x, [7, 1, 5, 3])
    assert np.argmax(np.abs(y[:, 0])) == 10 + 63
    assert np.argmax(np.abs(y[:, 1])) == 20 + 63
    assert y[73, 0] == pytest.approx(1.0, abs=1e-5)
    assert y[83, 1] == pytest.approx(-0.5, abs=1e-5)


def test_frame_fn_sees_the_windowed_rfft_of_each_hop_once_per_block():
    n_fft, hop, channels = 32, 8, 3
    engine = StreamingStft(n_fft, hop, channels, 20, "hann", "rect")
    window = make_window("hann", n_fft)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, channels)).astype(np.float32)
    seen = []
    calls = []

    def frame_fn(spectra):
        calls.append(spectra.shape[0])
        seen.extend(spectra.copy())

    sizes = [20, 3, 1, 17, 8, 5]
    _run_stream(engine, x, sizes, frame_fn)
    assert all(k > 0 for k in calls)  # never called with no frames
    assert len(calls) < len(x) // 3  # once per block, not once per frame
    assert len(seen) == x.shape[0] // hop
    padded = np.concatenate([np.zeros((n_fft - hop, channels), np.float32), x])
    for j, spectrum in enumerate(seen):
        assert spectrum.shape == (channels, n_fft // 2 + 1)
        frame = padded[j * hop : j * hop + n_fft]  # input samples j*hop-(n_fft-hop) .. j*hop+hop-1
        expected = np.fft.rfft(frame.T.astype(np.float64) * window, axis=-1)
        np.testing.assert_allclose(spectrum, expected, atol=2e-4)


def test_frame_fn_changes_are_heard_scaling_and_muting():
    engine = StreamingStft(256, 64, 2, 128, "sqrt_hann")
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (4000, 2)).astype(np.float32)

    def half(spectra):
        spectra *= 0.5

    y = _run_stream(engine, x, [128, 100, 1, 77], half)
    np.testing.assert_allclose(y[255:], 0.5 * x[:-255], atol=1e-5)
    engine.reset()
    muted = _run_stream(engine, x, [128], lambda s: s.fill(0))
    assert np.max(np.abs(muted)) < 1e-6


def test_reset_restarts_from_silence():
    engine = StreamingStft(64, 16, 1, 32)
    x = np.random.default_rng(3).uniform(-1, 1, (500, 1)).astype(np.float32)
    first = _run_stream(engine, x, [32])
    engine.reset()
    second = _run_stream(engine, x, [32])
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize(
    "analysis, synthesis, n_fft, hop",
    [
        ("hann", None, 64, 32),  # hann^2 at 50 %: ripple
        ("sqrt_hann", None, 64, 48),  # 25 % overlap
        ("rect", "rect", 8, 3),  # hop does not divide n_fft
        ("hann", "rect", 64, 40),
        ("blackman", "rect", 64, 32),
    ],
)
def test_non_cola_windows_raise(analysis, synthesis, n_fft, hop):
    with pytest.raises(ValueError, match="COLA"):
        StreamingStft(n_fft, hop, 1, 64, analysis, synthesis)


@SETTINGS
@given(st.integers(2, 64), st.floats(0.05, 1.0), st.integers(0, 2**31 - 1))
def test_random_windows_raise_unless_cola(n_fft, hop_share, seed):
    hop = max(1, int(n_fft * hop_share))
    window = np.random.default_rng(seed).uniform(0.1, 1.0, n_fft).astype(np.float32)
    product = window.astype(np.float64) ** 2
    env = np.zeros(hop)
    for start in range(0, n_fft, hop):
        env[: len(product[start : start + hop])] += product[start : start + hop]
    if env.max() - env.min() > 1e-4 * env.max():
        with pytest.raises(ValueError):
            StreamingStft(n_fft, hop, 1, 16, window)
    else:
        StreamingStft(n_fft, hop, 1, 16, window)


def test_cola_constant_values():
    assert cola_constant(make_window("hann", 64), np.ones(64, np.float32), 32) == pytest.approx(1.0, rel=1e-6)
    assert cola_constant(make_window("sqrt_hann", 64), make_window("sqrt_hann", 64), 16) == pytest.approx(2.0, rel=1e-6)
    assert cola_constant(make_window("hann", 64), make_window("hann", 64), 16) == pytest.approx(1.5, rel=1e-6)


def test_make_window_known_values():
    hann = make_window("hann", 8)
    assert hann.dtype == np.float32
    np.testing.assert_allclose(hann, [0, 0.1464466, 0.5, 0.8535534, 1, 0.8535534, 0.5, 0.1464466], atol=1e-6)
    np.testing.assert_allclose(make_window("sqrt_hann", 8) ** 2, hann, atol=1e-6)
    assert make_window("hamming", 4)[0] == pytest.approx(0.08)
    assert make_window("blackman", 16)[8] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        make_window("kaiser", 16)


def test_streaming_allocates_nothing_per_block():
    engine = StreamingStft(2048, 512, 2, 512)
    block = np.random.default_rng(4).uniform(-1, 1, (512, 2)).astype(np.float32)
    buffers = np.zeros((40, 512, 2), dtype=np.float32)
    engine.process(block, lambda s: None)
    fn = lambda spectra: spectra.__imul__(0.5)  # noqa: E731 - in place, no new array
    tracemalloc.start()
    try:
        for i in range(40):
            engine.process(buffers[i], fn)
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for i in range(40):
            engine.process(buffers[i], fn)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current - base < 1024
    assert peak - base < 3072  # a (512, 2) float32 array alone would be 4096 bytes


# ----------------------------------------------------------------------------------------------
# batch


@SETTINGS
@given(
    st.sampled_from(["hann", "sqrt_hann", "hamming", "blackman", "rect"]),
    st.sampled_from([16, 32, 64, 100, 256]),
    st.sampled_from([2, 3, 4]),
    st.integers(1, 2000),
    st.integers(1, 3),
    st.integers(0, 2**31 - 1),
)
def test_batch_round_trip_centered(window, n_fft, overlap, length, channels, seed):
    hop = max(1, n_fft // overlap)
    x = np.random.default_rng(seed).uniform(-1, 1, (channels, length)).astype(np.float32)
    spec = stft(x, n_fft, hop, window, center=True)
    assert spec.dtype == np.complex64
    assert spec.shape == (channels, n_frames(length, n_fft, hop, True), n_fft // 2 + 1)
    y = istft(spec, n_fft, hop, window, length=length, center=True)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, x, atol=1e-5)


def test_batch_matches_numpy_and_torch_conventions():
    import torch

    x = np.random.default_rng(5).standard_normal((2, 5000)).astype(np.float32)
    spec = stft(x, 512, 128, "hann", center=True)
    ref = torch.stft(
        torch.from_numpy(x), 512, 128, window=torch.hann_window(512), center=True,
        pad_mode="constant", return_complex=True,
    ).numpy().transpose(0, 2, 1)
    np.testing.assert_allclose(spec, ref, atol=1e-3)
    frame = np.concatenate([np.zeros(256, np.float32), x[0]])[:512] * make_window("hann", 512)
    np.testing.assert_allclose(spec[0, 0], np.fft.rfft(frame), atol=1e-3)


def test_batch_round_trip_not_centered_where_covered():
    x = np.random.default_rng(6).uniform(-1, 1, (1, 3000)).astype(np.float32)
    spec = stft(x, 256, 64, "hann", center=False)
    assert spec.shape[1] == 1 + (3000 - 256) // 64
    y = istft(spec, 256, 64, "hann", length=3000, center=False)
    covered = (spec.shape[1] - 1) * 64 + 256
    # exact where frames overlap; in the first/last hop only one tapered frame covers a sample,
    # and dividing by its tiny squared window there costs precision
    np.testing.assert_allclose(y[:, 64 : covered - 64], x[:, 64 : covered - 64], atol=1e-5)
    np.testing.assert_allclose(y[:, 1:covered - 1], x[:, 1 : covered - 1], atol=1e-3)
    assert y[0, 0] == 0.0  # the periodic Hann window is 0 there: nothing to reconstruct from
    np.testing.assert_array_equal(y[:, covered:], 0.0)


def test_one_dimensional_input():
    x = np.random.default_rng(7).uniform(-1, 1, 1000).astype(np.float32)
    spec = stft(x, 128, 32)
    assert spec.shape == (1 + 1000 // 32, 65)
    np.testing.assert_allclose(istft(spec, 128, 32, length=1000), x, atol=1e-5)
