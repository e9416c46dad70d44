"""Fixed delay lines for latency compensation (dry signal, bypassed processors)."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["DelayLine"]


@njit(nogil=True, cache=True)
def _delay_process(buffer, write_pos, delay, block, out):
    """Write ``block`` into the circular ``buffer`` at ``write_pos``, then read the samples
    ``delay`` frames older into ``out`` (which may be ``block``). Copies in contiguous runs.
    Returns the new write position."""
    size = buffer.shape[0]
    frames = block.shape[0]
    # write, in at most two runs
    first = min(frames, size - write_pos)
    buffer[write_pos : write_pos + first] = block[:first]
    if first < frames:
        buffer[: frames - first] = block[first:]
    # read the block that starts ``delay`` frames before the one just written
    read_pos = write_pos - delay
    if read_pos < 0:
        read_pos += size
    first = min(frames, size - read_pos)
    out[:first] = buffer[read_pos : read_pos + first]
    if first < frames:
        out[first:] = buffer[: frames - first]
    write_pos += frames
    if write_pos >= size:
        write_pos -= size
    return write_pos


class DelayLine:
    """Delays a multichannel signal by a whole number of samples, block by block.

    ``process`` takes blocks of up to ``max_block`` frames; ``out`` may be the same array as
    ``block`` (in place). A delay of 0 copies the block. No allocation after construction.

    Args:
        delay: delay in samples (>= 0).
        channels: number of channels.
        max_block: the largest block ``process`` will be given, in frames.
    """

    def __init__(self, delay: int, channels: int, max_block: int = 8192) -> None:
        if delay < 0:
            raise ValueError(f"delay must be >= 0 samples, got {delay}")
        self.delay = int(delay)
        self.channels = int(channels)
        self.max_block = int(max_block)
        self._buffer = np.zeros((self.delay + self.max_block, self.channels), dtype=np.float32)
        self._write_pos = 0

    def reset(self) -> None:
        """Clear the delayed history to silence."""
        self._buffer.fill(0.0)
        self._write_pos = 0

    def process(self, block: np.ndarray, out: np.ndarray) -> None:
        """Push ``block`` (frames, channels) and write the signal delayed by ``delay`` into ``out``."""
        if block.shape[0] > self.max_block:
            raise ValueError(f"block of {block.shape[0]} frames exceeds max_block {self.max_block}")
        self._write_pos = _delay_process(self._buffer, self._write_pos, self.delay, block, out)
