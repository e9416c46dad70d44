"""A copy of the recent output for displays: what the display adds to the audio path.

The engine's ``on_block`` hook calls :meth:`SampleTap.write`, one numba call (no GIL held inside,
nothing allocated) that mixes the block to mono into a preallocated ring. The UI thread copies the
most recent samples out whenever it redraws; a copy taken while a block is being written can hold
one torn block, which a spectrum display does not show. The ring may live in memory shared with
another process (the engine host and the UI).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["SampleTap"]


@njit(nogil=True, cache=True)
def _tap_write(block, ring, index):
    """Mix ``block`` (frames, channels) to mono into ``ring`` at ``index[0]`` (a sample count)."""
    frames, channels = block.shape
    size = ring.shape[0]
    mask = size - 1
    pos = index[0]
    scale = np.float32(1.0 / channels)
    for i in range(frames):
        acc = np.float32(0.0)
        for c in range(channels):
            acc += block[i, c]
        ring[(pos + i) & mask] = acc * scale
    index[0] = pos + frames  # published after the samples


class SampleTap:
    """A lock-free single-writer ring of the last ``size`` mono samples (``size``: a power of two).

    Args:
        size: samples kept (rounded up to a power of two).
        ring, index: arrays to use instead of new ones (float32 of a power-of-two length, and
            int64 of length 1), e.g. views of memory shared with another process; left as they are.
    """

    def __init__(self, size: int = 8192, ring: np.ndarray | None = None, index: np.ndarray | None = None) -> None:
        if ring is None or index is None:
            n = 1 << max(4, int(size - 1).bit_length())
            ring = np.zeros(n, dtype=np.float32)
            index = np.zeros(1, dtype=np.int64)
        elif len(ring) & (len(ring) - 1):
            raise ValueError(f"the ring's length must be a power of two, got {len(ring)}")
        # load the compiled kernel now, not in the first audio block
        _tap_write(np.zeros((16, 2), dtype=np.float32), np.zeros(16, np.float32), np.zeros(1, np.int64))
        self.ring = ring
        self.index = index

    def write(self, block: np.ndarray) -> None:
        """Append ``block`` (float32 ``(frames, channels)``). Audio thread; allocation-free."""
        _tap_write(block, self.ring, self.index)

    @property
    def written(self) -> int:
        """Samples written since creation (grows while audio runs)."""
        return int(self.index[0])

    def latest(self, n: int, out: np.ndarray | None = None) -> np.ndarray:
        """The last ``n`` samples, oldest first (zeros before anything was written). UI thread."""
        size = len(self.ring)
        n = min(n, size)
        out = np.empty(n, dtype=np.float32) if out is None else out[:n]
        end = int(self.index[0])
        start = end - n
        if start < 0:
            out[: -start] = 0.0
            out[-start:] = self.ring[:end]
            return out
        a, b = start % size, end % size
        if a < b:
            out[:] = self.ring[a:b]
        else:
            k = size - a
            out[:k] = self.ring[a:]
            out[k:] = self.ring[:b]
        return out
