"""Masks: apply_mask broadcasting, ratio (Wiener) masks, mask-based separation."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noisyneuron.dsp.masks import apply_mask, ratio_masks, wiener_separate


def _spectra(rng, shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def test_apply_mask_per_channel_and_broadcast():
    rng = np.random.default_rng(0)
    spec = _spectra(rng, (4, 2, 9))
    mask = rng.uniform(0, 1, (4, 2, 9)).astype(np.float32)
    expected = spec * mask
    apply_mask(spec, mask)
    np.testing.assert_allclose(spec, expected, rtol=1e-6)

    spec = _spectra(rng, (4, 3, 9))
    shared = rng.uniform(0, 1, (4, 1, 9)).astype(np.float32)
    expected = spec * shared
    apply_mask(spec, shared)
    np.testing.assert_allclose(spec, expected, rtol=1e-6)

    spec = _spectra(rng, (4, 3, 9))
    flat = rng.uniform(0, 1, (4, 9)).astype(np.float32)
    expected = spec * flat[:, None, :]
    apply_mask(spec, flat)
    np.testing.assert_allclose(spec, expected, rtol=1e-6)


def test_apply_mask_rejects_bad_shapes():
    spec = np.zeros((4, 2, 9), np.complex64)
    with pytest.raises(ValueError):
        apply_mask(spec, np.zeros((4, 3, 9), np.float32))
    with pytest.raises(ValueError):
        apply_mask(spec, np.zeros((5, 9), np.float32))


def test_ratio_masks_known_values():
    mags = np.array([[3.0, 0.0, 1.0], [4.0, 0.0, 1.0]], dtype=np.float32)  # 2 sources, 3 bins
    wiener = ratio_masks(mags, power=2.0, eps=0.0 + 1e-12)
    np.testing.assert_allclose(wiener[:, 0], [9 / 25, 16 / 25], rtol=1e-5)
    np.testing.assert_allclose(wiener[:, 1], [0.5, 0.5], rtol=1e-5)  # all silent: equal shares
    np.testing.assert_allclose(wiener[:, 2], [0.5, 0.5], rtol=1e-5)
    magnitude = ratio_masks(mags, power=1.0)
    np.testing.assert_allclose(magnitude[:, 0], [3 / 7, 4 / 7], rtol=1e-5)
    assert wiener.dtype == np.float32 and wiener.shape == mags.shape


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.sampled_from([0.5, 1.0, 2.0, 3.0]), st.integers(0, 2**31 - 1))
def test_ratio_masks_are_in_unit_range_and_sum_to_one(sources, power, seed):
    rng = np.random.default_rng(seed)
    mags = (rng.uniform(0, 1, (sources, 5, 2, 17)) * (rng.uniform(0, 1, (sources, 5, 2, 17)) > 0.3)).astype(
        np.float32
    )
    masks = ratio_masks(mags, power)
    assert np.all(masks >= 0.0) and np.all(masks <= 1.0 + 1e-6)
    np.testing.assert_allclose(masks.sum(axis=0), 1.0, atol=1e-5)
    # the louder source gets the larger mask
    if sources >= 2:
        louder = mags[0] > mags[1]
        assert np.all(masks[0][louder] >= masks[1][louder] - 1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_wiener_separate_sums_to_the_mixture(sources, seed):
    rng = np.random.default_rng(seed)
    mix = _spectra(rng, (6, 2, 33))
    mags = rng.uniform(0, 2, (sources, 6, 2, 33)).astype(np.float32)
    parts = wiener_separate(mix, mags, power=2.0)
    assert parts.shape == (sources, 6, 2, 33) and parts.dtype == np.complex64
    np.testing.assert_allclose(parts.sum(axis=0), mix, atol=1e-5)
    np.testing.assert_allclose(parts, ratio_masks(mags, 2.0)[...] * mix[None], rtol=1e-4, atol=1e-6)


def test_wiener_separate_with_oracle_magnitudes_recovers_disjoint_sources():
    rng = np.random.default_rng(1)
    a = _spectra(rng, (8, 1, 40))
    b = _spectra(rng, (8, 1, 40))
    a[..., 20:] = 0
    b[..., :20] = 0
    parts = wiener_separate(a + b, np.abs(np.stack([a, b])))
    np.testing.assert_allclose(parts[0], a, atol=1e-4)
    np.testing.assert_allclose(parts[1], b, atol=1e-4)


def test_out_variants_do_not_allocate():
    rng = np.random.default_rng(2)
    mix = _spectra(rng, (8, 2, 513))
    mags = rng.uniform(0, 1, (3, 8, 2, 513)).astype(np.float32)
    out_c = np.empty((3, 8, 2, 513), np.complex64)
    out_m = np.empty((3, 8, 2, 513), np.float32)
    wiener_separate(mix, mags, out=out_c)
    ratio_masks(mags, out=out_m)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(20):
            assert wiener_separate(mix, mags, out=out_c) is out_c
            assert ratio_masks(mags, out=out_m) is out_m
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < 4096  # the outputs are ~100 KB each
    with pytest.raises(ValueError):
        ratio_masks(mags, out=np.empty((3, 8, 2, 512), np.float32))
