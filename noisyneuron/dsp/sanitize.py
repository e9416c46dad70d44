"""Replacing NaN and infinite samples so they are never passed on."""

from __future__ import annotations

import numpy as np

__all__ = ["replace_nonfinite"]


def replace_nonfinite(block: np.ndarray) -> int:
    """Set every NaN, +Inf and -Inf sample of ``block`` to 0.0 in place; return how many there were.

    ``block`` is a float array (any shape; a view is changed in place). The common case, every
    sample finite, is one sum and allocates no array: a sum of samples is finite only when every
    sample is (NaN and infinities propagate; a sum that overflows is checked sample by sample).
    Plain numpy, so the file readers and writers that call it do not start numba (about a
    second of a short command's start-up).
    """
    if np.isfinite(block.sum(dtype=np.float64)):
        return 0
    bad = ~np.isfinite(block)
    count = int(np.count_nonzero(bad))
    block[bad] = 0.0
    return count
