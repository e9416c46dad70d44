"""replace_nonfinite: NaN and infinities become 0.0 in place, counted; finite audio is untouched."""

from __future__ import annotations

import numpy as np
import pytest

from noisyneuron.dsp.sanitize import replace_nonfinite


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_replaces_and_counts_every_nonfinite_sample_in_place(dtype):
    block = np.random.default_rng(0).standard_normal((256, 2)).astype(dtype)
    before = block.copy()
    assert replace_nonfinite(block) == 0 and np.array_equal(block, before)
    block[3, 1], block[7, 0], block[9, 0] = np.nan, np.inf, -np.inf
    assert replace_nonfinite(block) == 3
    assert np.isfinite(block).all() and block[3, 1] == block[7, 0] == block[9, 0] == 0.0
    keep = np.ones(block.shape, bool)
    keep[[3, 7, 9], [1, 0, 0]] = False
    assert np.array_equal(block[keep], before[keep])


def test_large_finite_samples_whose_sum_overflows_are_kept():
    block = np.full((8, 2), np.finfo(np.float32).max, np.float32)
    assert replace_nonfinite(block) == 0 and (block == np.finfo(np.float32).max).all()


def test_a_view_is_changed_in_place():
    audio = np.zeros((16, 2), np.float32)
    audio[5, 1] = np.nan
    assert replace_nonfinite(audio[4:8]) == 1 and audio[5, 1] == 0.0
