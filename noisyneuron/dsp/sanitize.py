"""Replacing NaN and infinite samples so they are never passed on."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["replace_nonfinite"]


@njit(nogil=True, cache=True)
def _replace_nonfinite(flat):
    count = 0
    for i in range(flat.shape[0]):
        v = flat[i]
        if not np.isfinite(v):
            flat[i] = 0.0
            count += 1
    return count


def replace_nonfinite(block: np.ndarray) -> int:
    """Set every NaN, +Inf and -Inf sample of ``block`` to 0.0 in place; return how many there were.

    ``block`` must be a C-contiguous float array (any shape). No allocation.
    """
    return int(_replace_nonfinite(block.reshape(-1)))
