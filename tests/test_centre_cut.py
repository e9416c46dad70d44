"""CentreCutKaraoke: separation on the demo mix, pass-through, latency, clicks, allocation.

How separation is measured (honestly, although the mask depends on the signal): the masks are
computed from the MIX, and for fixed masks the processing is linear. So the mix's output is
exactly ``T(vocals) + T(wide band) + T(bass and kick)``, where ``T`` is the STFT -> fixed mask ->
inverse STFT operator. We compute those three terms with the generic StreamingStft (one
8-channel stream: the mix's left/right pair sets the mask of every bin, the same mask is applied
to each component's pair), check that their sum equals what CentreCutKaraoke does to the mix in
a Chain, and then measure the energy each component keeps, against that component delayed by
the latency.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from noisyneuron.demo import make_demo_mix
from noisyneuron.dsp.centre import apply_centre_gain, centre_mask
from noisyneuron.dsp.stft import StreamingStft
from noisyneuron.realtime.chain import Chain
from noisyneuron.realtime.processors.centre_cut import CentreCutKaraoke

SR = 44100
LATENCY = 2047


@pytest.fixture(scope="module")
def demo():
    return make_demo_mix(SR, seconds=6.0, seed=0)


def _run(target, x: np.ndarray, sizes=(512,)) -> np.ndarray:
    y = x.copy()
    pos, i = 0, 0
    while pos < y.shape[0]:
        n = min(sizes[i % len(sizes)], y.shape[0] - pos)
        target.process(y[pos : pos + n])
        pos += n
        i += 1
    return y


def _energy_db(a: np.ndarray, b: np.ndarray) -> float:
    return 10.0 * np.log10(np.sum(a.astype(np.float64) ** 2) / np.sum(b.astype(np.float64) ** 2))


def _frozen_components(demo, width=0.6, gain=0.0, low=120.0, high=12000.0):
    x = np.ascontiguousarray(np.concatenate([demo["mix"], demo["vocals"], demo["wide"], demo["low"]], axis=1))
    engine = StreamingStft(2048, 512, 8, 512, "sqrt_hann")
    mask = np.zeros((engine.max_frames_per_block, engine.n_bins), np.float32)

    def frame_fn(spectra):
        m = mask[: spectra.shape[0]]
        centre_mask(spectra[:, 0:2], m, width, float(SR), 2048, low, high)
        for pair in range(4):
            apply_centre_gain(spectra[:, 2 * pair : 2 * pair + 2], m, gain)

    for start in range(0, x.shape[0], 512):
        engine.process(x[start : start + 512], frame_fn)
    y = x
    return {name: y[:, 2 * i : 2 * i + 2] for i, name in enumerate(["mix", "vocals", "wide", "low"])}


def test_demo_mix_is_what_it_claims(demo):
    for key in ("mix", "vocals", "accompaniment", "wide", "low"):
        assert demo[key].dtype == np.float32 and demo[key].shape == (6 * SR, 2)
    np.testing.assert_array_equal(demo["mix"], demo["vocals"] + demo["accompaniment"])
    np.testing.assert_array_equal(demo["accompaniment"], demo["wide"] + demo["low"])
    np.testing.assert_array_equal(demo["vocals"][:, 0], demo["vocals"][:, 1])  # dead centre
    assert np.max(np.abs(demo["mix"])) < 10 ** (-1 / 20)
    wide = demo["wide"].astype(np.float64)
    corr = np.sum(wide[:, 0] * wide[:, 1]) / np.sqrt(np.sum(wide[:, 0] ** 2) * np.sum(wide[:, 1] ** 2))
    assert abs(corr) < 0.3  # the band is wide, not centred
    low_spec = np.abs(np.fft.rfft(demo["low"][:, 0].astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(demo["low"].shape[0], 1 / SR)
    assert low_spec[freqs < 140].sum() > 0.9 * low_spec.sum()  # bass and kick live below ~120 Hz
    again = make_demo_mix(SR, seconds=6.0, seed=0)
    np.testing.assert_array_equal(again["mix"], demo["mix"])


def test_removes_the_centred_voice_and_keeps_the_wide_band(demo):
    parts = _frozen_components(demo)
    chain = Chain([CentreCutKaraoke()], name="karaoke")
    chain.prepare(SR, 512, 2)
    assert chain.latency_samples == LATENCY
    out = _run(chain, demo["mix"])
    # the decomposition is exact, and it is what the processor does
    np.testing.assert_allclose(parts["vocals"] + parts["wide"] + parts["low"], parts["mix"], atol=1e-5)
    np.testing.assert_allclose(out, parts["mix"], atol=1e-4)
    ref = {k: demo[k][: -LATENCY] for k in ("vocals", "wide", "low", "accompaniment")}
    got = {k: parts[k][LATENCY:] for k in ("vocals", "wide", "low")}
    vocal_db = _energy_db(got["vocals"], ref["vocals"])
    wide_db = _energy_db(got["wide"], ref["wide"])
    low_db = _energy_db(got["low"], ref["low"])
    acc_db = _energy_db(got["wide"] + got["low"], ref["accompaniment"])
    assert vocal_db <= -20.0, f"voice only {vocal_db:.1f} dB down"
    assert abs(wide_db) <= 1.0, f"wide band changed by {wide_db:.2f} dB"
    assert abs(low_db) <= 1.0, f"bass and kick changed by {low_db:.2f} dB"
    assert abs(acc_db) <= 1.0
    # without the low cut the centred bass and kick are removed as well
    no_low_cut = _frozen_components(demo, low=0.0)
    assert _energy_db(no_low_cut["low"][LATENCY:], ref["low"]) < low_db - 3.0


def test_vocals_at_0_db_pass_the_mix_through(demo):
    chain = Chain([CentreCutKaraoke()])
    chain["karaoke"].vocals.set(0.0)
    chain.prepare(SR, 512, 2)
    out = _run(chain, demo["mix"], sizes=(512, 100, 37))
    np.testing.assert_allclose(out[LATENCY:], demo["mix"][:-LATENCY], atol=1e-6)
    np.testing.assert_allclose(out[:LATENCY], 0.0, atol=1e-6)


def test_vocals_boost_raises_the_voice(demo):
    proc = CentreCutKaraoke()
    proc.vocals.set(6.0)
    proc.prepare(SR, 512, 2)
    out = _run(proc, demo["mix"])
    parts = _frozen_components(demo, gain=10 ** (6 / 20))
    np.testing.assert_allclose(out, parts["mix"], atol=1e-4)
    assert _energy_db(parts["vocals"][LATENCY:], demo["vocals"][:-LATENCY]) > 3.0


def test_output_does_not_depend_on_block_sizes(demo):
    x = demo["mix"][: 3 * SR]
    reference = None
    for sizes in [(512,), (256,), (1, 511, 300, 7, 64)]:
        proc = CentreCutKaraoke()
        proc.prepare(SR, 512, 2)
        y = _run(proc, x, sizes)
        if reference is None:
            reference = y
        else:
            np.testing.assert_allclose(y, reference, atol=1e-6)


def _click_signal(seconds=2.0):
    t = np.arange(int(seconds * SR)) / SR
    voice = 0.4 * np.sin(2 * np.pi * 220.0 * t)
    left = voice + 0.2 * np.sin(2 * np.pi * 330.0 * t)
    right = voice + 0.2 * np.sin(2 * np.pi * 415.0 * t)
    return np.stack([left, right], axis=1).astype(np.float32)


def test_parameter_changes_do_not_click():
    x = _click_signal()
    largest_static = 0.0
    for db in (-60.0, 0.0, 6.0):
        proc = CentreCutKaraoke()
        proc.vocals.set(db)
        proc.prepare(SR, 256, 2)
        y = _run(proc, x, (256,))[LATENCY:]
        largest_static = max(largest_static, float(np.max(np.abs(np.diff(y, axis=0)))))
    proc = CentreCutKaraoke()
    proc.prepare(SR, 256, 2)
    y = x.copy()
    values = [-60.0, 6.0, -60.0, 0.0, -20.0, 6.0, -60.0]
    for i, start in enumerate(range(0, y.shape[0], 256)):
        if i % 12 == 0:  # abrupt jumps of the target every 70 ms
            proc.vocals.set(values[(i // 12) % len(values)])
            proc.width.set(20.0 if (i // 12) % 2 else 90.0)
        proc.process(y[start : start + 256])
    jumps = np.max(np.abs(np.diff(y[LATENCY:], axis=0)))
    assert jumps <= 1.1 * largest_static, f"max step {jumps:.4f} vs {largest_static:.4f} without changes"
    # and the voice really was switched: levels differ a lot between settings
    assert np.ptp([np.max(np.abs(y[LATENCY + k : LATENCY + k + 2000])) for k in range(0, 40000, 3000)]) > 0.3


def test_mono_passes_through_delayed_by_the_same_latency():
    proc = CentreCutKaraoke()
    chain = Chain([proc])
    chain.prepare(SR, 300, 1)
    assert proc.latency_samples == chain.latency_samples == LATENCY
    x = np.random.default_rng(0).uniform(-1, 1, (20000, 1)).astype(np.float32)
    y = _run(chain, x, (300, 17, 256))
    np.testing.assert_array_equal(y[LATENCY:], x[:-LATENCY])
    np.testing.assert_array_equal(y[:LATENCY], 0.0)


@pytest.mark.parametrize("n_fft, hop", [(2048, 512), (1024, 256), (512, 256)])
def test_latency_is_n_fft_minus_one_impulse(n_fft, hop):
    proc = CentreCutKaraoke(n_fft=n_fft, hop=hop)
    proc.prepare(SR, 128, 2)
    assert proc.latency_samples == n_fft - 1
    x = np.zeros((6 * n_fft, 2), np.float32)
    x[100, 0] = 1.0  # hard left: not centre, kept whole
    x[100 + 2 * n_fft, 1] = -0.5  # hard right (in other frames: two clicks in one frame would
    # look partly centred in the bins where their spectra line up)
    y = _run(proc, x, (128, 5, 77))
    assert y[100 + n_fft - 1, 0] == pytest.approx(1.0, abs=1e-6)
    assert y[100 + 3 * n_fft - 1, 1] == pytest.approx(-0.5, abs=1e-6)
    assert np.count_nonzero(np.abs(y) > 1e-6) == 2
    # a centred impulse with the voice at 0 dB comes out whole at the same delay
    proc.vocals.set(0.0)
    proc.reset()
    x = np.zeros((4 * n_fft, 2), np.float32)
    x[50] = 0.7
    y = _run(proc, x, (128,))
    assert np.argmax(y[:, 0]) == 50 + n_fft - 1 and y[50 + n_fft - 1, 1] == pytest.approx(0.7)


def test_reset_restores_the_initial_state(demo):
    proc = CentreCutKaraoke()
    proc.prepare(SR, 512, 2)
    x = demo["mix"][:SR]
    first = _run(proc, x)
    proc.reset()
    second = _run(proc, x)
    np.testing.assert_array_equal(first, second)


def test_bad_stft_sizes_are_rejected():
    with pytest.raises(ValueError):
        CentreCutKaraoke(n_fft=2048, hop=700)  # sqrt-Hann is not COLA there
    with pytest.raises(ValueError):
        CentreCutKaraoke(n_fft=2047, hop=512)


def test_process_allocates_nothing(demo):
    from numba.core.runtime import _nrt_python, rtsys

    proc = CentreCutKaraoke()
    proc.prepare(SR, 512, 2)
    y = demo["mix"][: 200 * 512].copy()
    blocks = [y[i * 512 : (i + 1) * 512] for i in range(200)]  # views made beforehand
    for block in blocks[:20]:
        proc.process(block)
    proc.vocals.set(-10.0)  # a moving parameter is part of the steady state too
    _nrt_python.memsys_enable_stats()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        nrt_before = rtsys.get_allocation_stats().alloc
        for block in blocks[20:]:
            proc.process(block)
        nrt_calls = rtsys.get_allocation_stats().alloc - nrt_before
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current - base < 1024
    assert peak - base < 3072  # one (512, 2) float32 block alone would be 4096 bytes
    # numba's only allocations are the 5 array-argument wrappers of the one call per block
    assert nrt_calls <= 5 * len(blocks[20:])


def test_parameters_and_describe():
    proc = CentreCutKaraoke()
    proc.reset()  # before prepare (a chain may do this): nothing to clear, no error
    assert proc.kind == "karaoke"
    assert set(proc.parameters) == {"vocals", "width", "low_cut", "high_cut"}
    assert proc.vocals.display() == "off"
    assert proc.low_cut.value == 120.0 and proc.high_cut.value == 12000.0
    assert "karaoke" in proc.describe()


def test_centre_functions_on_single_bins():
    from noisyneuron.dsp.centre import centre_cut, centre_threshold, mask_from_similarity, similarity

    rng = np.random.default_rng(0)
    n_bins, n_fft = 513, 1024
    base = (rng.standard_normal((2, n_bins)) + 1j * rng.standard_normal((2, n_bins))).astype(np.complex64)
    spec = np.zeros((4, 2, n_bins), np.complex64)
    spec[0, 0] = spec[0, 1] = base[0]  # dead centre
    spec[1, 0] = base[0]  # hard left
    spec[2, 0], spec[2, 1] = base[0], -base[0]  # out of phase
    spec[3, 0], spec[3, 1] = 0.9 * base[0], 0.45 * base[0]  # half left: c = 0.8
    original = spec.copy()
    centre_cut(spec, 0.6, 0.0, 44100.0, n_fft, 0.0, 1e9)
    np.testing.assert_allclose(spec[0], 0.0, atol=1e-6)  # removed
    np.testing.assert_array_equal(spec[1:3], original[1:3])  # kept
    c_w, inv_span = centre_threshold(0.6)
    m = mask_from_similarity(0.8, c_w, inv_span)
    assert 0.0 < m < 1.0 and similarity(original[3, 0, 5], original[3, 1, 5]) == pytest.approx(0.8, abs=1e-5)
    np.testing.assert_allclose(spec[3, 0], original[3, 0] - m * (original[3, 0] + original[3, 1]) / 2, atol=1e-5)
    # band limits: only bins between 1 and 5 kHz change
    spec = original.copy()
    centre_cut(spec, 0.6, 0.0, 44100.0, n_fft, 1000.0, 5000.0)
    k = np.arange(n_bins) * 44100.0 / n_fft
    np.testing.assert_array_equal(spec[0, :, k < 1000.0 - 2 * 44100 / n_fft], original[0, :, k < 1000.0 - 2 * 44100 / n_fft])
    np.testing.assert_array_equal(spec[0, :, k > 5000.0 + 2 * 44100 / n_fft], original[0, :, k > 5000.0 + 2 * 44100 / n_fft])
    np.testing.assert_allclose(spec[0, :, (k > 1000.0) & (k < 5000.0)], 0.0, atol=1e-6)
    # gain 1 and mono: unchanged
    spec = original.copy()
    centre_cut(spec, 0.6, 1.0, 44100.0, n_fft)
    np.testing.assert_array_equal(spec, original)
    mono = original[:, :1].copy()
    centre_cut(mono, 0.6, 0.0, 44100.0, n_fft)
    np.testing.assert_array_equal(mono, original[:, :1])
