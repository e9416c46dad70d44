"""Fixed delay lines for latency compensation (dry signal, bypassed processors)."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["DelayLine"]


@njit(nogil=True, cache=True)
def _delay_process(buffer, write_pos, delay, block, out):
    size = buffer.shape[0]
    frames = block.shape[0]
    channels = block.shape[1]
    read_pos = write_pos - delay
    if read_pos < 0:
        read_pos += size
    for i in range(frames):
        for c in range(channels):
            buffer[write_pos, c] = block[i, c]
        for c in range(channels):
            out[i, c] = buffer[read_pos, c]
        write_pos += 1
        if write_pos == size:
            write_pos = 0
        read_pos += 1
        if read_pos == size:
            read_pos = 0
    return write_pos


class DelayLine:
    """Delays a multichannel signal by a whole number of samples, block by block.

    ``process`` may be called with blocks of any length; ``out`` may be the same array as
    ``block`` (in-place). A delay of 0 copies the block. No allocation after construction.

    Args:
        delay: delay in samples (>= 0).
        channels: number of channels.
    """

    def __init__(self, delay: int, channels: int) -> None:
        if delay < 0:
            raise ValueError(f"delay must be >= 0 samples, got {delay}")
        self.delay = int(delay)
        self.channels = int(channels)
        self._buffer = np.zeros((self.delay + 1, self.channels), dtype=np.float32)
        self._write_pos = 0

    def reset(self) -> None:
        """Clear the delayed history to silence."""
        self._buffer.fill(0.0)
        self._write_pos = 0

    def process(self, block: np.ndarray, out: np.ndarray) -> None:
        """Push ``block`` (frames, channels) and write the signal delayed by ``delay`` into ``out``."""
        self._write_pos = _delay_process(self._buffer, self._write_pos, self.delay, block, out)
