"""Whole-array resampling and length fitting: the one helper behind every "resample this clip to
the rate I work at and make it exactly this long" in NoisyNeuron (data builders, Demucs, the
classifier's training and evaluation readers, ``read_excerpt``...).

- :func:`resample` takes ``(frames,)`` or ``(frames, channels)`` audio from one rate to another
  with libsoxr at its ``"HQ"`` quality (the quality used everywhere, streaming readers included:
  :mod:`noisyneuron.audio.files`), and optionally fits the result to a length;
- :func:`fit_length` cuts or zero-pads along the first axis to exactly a number of frames.

Streams are resampled chunk by chunk elsewhere (``soxr.ResampleStream`` in
:class:`~noisyneuron.audio.files.FileSource` and ``separate``): this is for arrays in memory.
Ground floor: imports nothing from the project.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_length", "resample"]

_QUALITY = "HQ"


def fit_length(audio: np.ndarray, frames: int) -> np.ndarray:
    """``audio`` cut or zero-padded along its first axis to exactly ``frames`` (a view when cut)."""
    x = np.asarray(audio)
    frames = int(frames)
    if len(x) >= frames:
        return x[:frames]
    return np.pad(x, [(0, frames - len(x))] + [(0, 0)] * (x.ndim - 1))


def resample(audio: np.ndarray, rate_in: float, rate_out: float, frames: int | None = None) -> np.ndarray:
    """``audio`` (``(frames,)`` or ``(frames, channels)``) at ``rate_out`` Hz, then fit to ``frames``.

    Resampled with soxr ``"HQ"`` (the dtype follows soxr: float32 stays float32, float64 stays
    float64); when the rates are equal or the audio is empty nothing is resampled and the same
    array comes back. With ``frames`` the result is cut or zero-padded to exactly that length
    (:func:`fit_length`); the shape's channel axis is kept either way.
    """
    x = np.asarray(audio)
    if rate_in != rate_out and len(x):
        import soxr

        y = soxr.resample(x, rate_in, rate_out, quality=_QUALITY)
        x = y[:, None] if x.ndim == 2 and y.ndim == 1 else y
    return x if frames is None else fit_length(x, frames)
