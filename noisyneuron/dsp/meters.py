"""Level meters: per-channel peak and RMS in dBFS, and a ballistic meter for the UI.

dBFS here means dB relative to a full-scale *amplitude* of 1.0: a full-scale sine reads
0 dBFS peak and -3.01 dBFS RMS (the RMS of a sine is its amplitude / sqrt 2). Silence (and any
level below it) reads the floor, :data:`FLOOR_DBFS` = -120 dBFS, never ``-inf``.

Everything is allocation-free after construction and numba-compiled (``nogil``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["FLOOR_DBFS", "peak_dbfs", "rms_dbfs", "LevelMeter"]

#: Reading for silence, dBFS.
FLOOR_DBFS = -120.0
_FLOOR_AMPLITUDE = 10.0 ** (FLOOR_DBFS / 20.0)


@njit(nogil=True, cache=True)
def _to_dbfs(amplitude):
    if amplitude <= _FLOOR_AMPLITUDE:
        return FLOOR_DBFS
    return 20.0 * math.log10(amplitude)


@njit(nogil=True, cache=True)
def _peak_kernel(block, out):
    frames, channels = block.shape
    for c in range(channels):
        peak = 0.0
        for i in range(frames):
            v = abs(block[i, c])
            if v > peak:
                peak = v
        out[c] = _to_dbfs(peak)


@njit(nogil=True, cache=True)
def _rms_kernel(block, out):
    frames, channels = block.shape
    for c in range(channels):
        acc = 0.0
        for i in range(frames):
            v = float(block[i, c])
            acc += v * v
        out[c] = _to_dbfs(math.sqrt(acc / frames)) if frames else FLOOR_DBFS


def peak_dbfs(block: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Per-channel sample peak of ``block`` ``(frames, channels)``, in dBFS, into ``out`` ``(channels,)``.

    Floor: -120 dBFS. NaN samples are ignored. No allocation. Returns ``out``.
    """
    _peak_kernel(block, out)
    return out


def rms_dbfs(block: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Per-channel RMS of ``block`` ``(frames, channels)``, in dBFS, into ``out`` ``(channels,)``.

    Full-scale sine: -3.01 dBFS. Floor (and empty blocks): -120 dBFS. No allocation. Returns ``out``.
    """
    _rms_kernel(block, out)
    return out


@njit(nogil=True, cache=True)
def _meter_update(block, peak, hold, hold_left, mean_square, release_per_sample, rms_alpha, hold_samples,
                  peak_db, hold_db, rms_db):
    frames, channels = block.shape
    for c in range(channels):
        p = peak[c]
        ms = mean_square[c]
        block_peak = 0.0
        for i in range(frames):
            v = abs(float(block[i, c]))
            p *= release_per_sample
            if v > p:
                p = v
            if v > block_peak:
                block_peak = v
            ms += (v * v - ms) * rms_alpha
        peak[c] = p
        mean_square[c] = ms
        # peak hold: a new maximum restarts the hold time; when it runs out, follow the peak
        if block_peak >= hold[c]:
            hold[c] = block_peak
            hold_left[c] = hold_samples
        else:
            hold_left[c] -= frames
            if hold_left[c] <= 0:
                hold[c] = p
                hold_left[c] = 0
        peak_db[c] = _to_dbfs(p)
        hold_db[c] = _to_dbfs(hold[c])
        rms_db[c] = _to_dbfs(math.sqrt(ms))


class LevelMeter:
    """Ballistic level meter: peak with release, peak hold, and exponentially averaged RMS.

    Args:
        channels: number of channels.
        sample_rate: Hz.
        release_seconds: time, in seconds, for the peak reading to fall by 20 dB once the signal
            stops (instant attack; the fall is linear in dB).
        rms_seconds: time constant of the RMS average, in seconds (0.3 s ~ a VU meter).
        hold_seconds: how long the highest peak is held, in seconds, before the hold reading
            drops back to the peak reading.

    Attributes (float32 ``(channels,)``, dBFS, updated in place by :meth:`update`):
        peak_dbfs, hold_dbfs, rms_dbfs. Silence reads -120 dBFS.
    """

    def __init__(
        self,
        channels: int,
        sample_rate: float,
        release_seconds: float = 1.5,
        rms_seconds: float = 0.3,
        hold_seconds: float = 1.0,
    ) -> None:
        if channels < 1 or sample_rate <= 0 or release_seconds <= 0 or rms_seconds <= 0 or hold_seconds < 0:
            raise ValueError("LevelMeter needs channels >= 1 and positive sample_rate / times")
        self.channels = int(channels)
        self.sample_rate = float(sample_rate)
        self.release_per_sample = 10.0 ** (-1.0 / (release_seconds * sample_rate))  # -20 dB per release_seconds
        self.rms_alpha = 1.0 - math.exp(-1.0 / (rms_seconds * sample_rate))
        self.hold_samples = int(round(hold_seconds * sample_rate))
        self._peak = np.zeros(channels, dtype=np.float64)
        self._hold = np.zeros(channels, dtype=np.float64)
        self._hold_left = np.zeros(channels, dtype=np.int64)
        self._mean_square = np.zeros(channels, dtype=np.float64)
        self.peak_dbfs = np.full(channels, FLOOR_DBFS, dtype=np.float32)
        self.hold_dbfs = np.full(channels, FLOOR_DBFS, dtype=np.float32)
        self.rms_dbfs = np.full(channels, FLOOR_DBFS, dtype=np.float32)

    def reset(self) -> None:
        """Back to silence."""
        for a in (self._peak, self._hold, self._mean_square):
            a.fill(0.0)
        self._hold_left.fill(0)
        for a in (self.peak_dbfs, self.hold_dbfs, self.rms_dbfs):
            a.fill(FLOOR_DBFS)

    def update(self, block: np.ndarray) -> None:
        """Feed ``block`` (float32 ``(frames, channels)``); updates the readings. No allocation."""
        _meter_update(
            block, self._peak, self._hold, self._hold_left, self._mean_square, self.release_per_sample,
            self.rms_alpha, self.hold_samples, self.peak_dbfs, self.hold_dbfs, self.rms_dbfs,
        )
