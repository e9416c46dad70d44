"""Time-frequency masks: applying a real mask, ratio (Wiener-style) masks, and mask-based separation.

Shapes follow :class:`~noisyneuron.dsp.stft.StreamingStft`: spectra are complex
``(frames, channels, n_bins)``. Source estimates (e.g. magnitudes from a model) carry a leading
source axis ``S``: ``(S, frames, channels, n_bins)`` or, more generally, ``(S, *shape)`` with
``shape`` the mixture's shape.

Every hot loop is numba-compiled (``nogil``); every function that returns an array also takes an
``out=`` array and then allocates nothing (real-time use).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["apply_mask", "ratio_masks", "wiener_separate"]


@njit(nogil=True, cache=True)
def _apply_mask_3d(spectra, mask):
    frames, channels, n_bins = spectra.shape
    per_channel = mask.shape[1] != 1
    for f in range(frames):
        for c in range(channels):
            mc = c if per_channel else 0
            for k in range(n_bins):
                spectra[f, c, k] *= mask[f, mc, k]


def apply_mask(spectra: np.ndarray, mask: np.ndarray) -> None:
    """Multiply complex ``spectra`` ``(frames, channels, n_bins)`` by a real ``mask``, in place.

    ``mask`` is ``(frames, channels, n_bins)``, ``(frames, 1, n_bins)`` (one mask for every
    channel) or ``(frames, n_bins)`` (same). No allocation.

    Raises:
        ValueError: for shapes that do not match.
    """
    if spectra.ndim != 3:
        raise ValueError(f"spectra must be (frames, channels, n_bins), got {spectra.shape}")
    m = mask[:, None, :] if mask.ndim == 2 else mask
    if m.ndim != 3 or m.shape[0] != spectra.shape[0] or m.shape[2] != spectra.shape[2] or m.shape[1] not in (
        1,
        spectra.shape[1],
    ):
        raise ValueError(f"mask shape {mask.shape} does not fit spectra {spectra.shape}")
    _apply_mask_3d(spectra, m)


@njit(nogil=True, cache=True)
def _power(x, p):
    if p == 2.0:
        return x * x
    if p == 1.0:
        return x
    return x**p


@njit(nogil=True, cache=True)
def _ratio_masks_2d(mags, power, eps, out):
    sources, n = mags.shape
    share = eps / sources
    for i in range(n):
        total = eps
        for s in range(sources):
            v = _power(abs(mags[s, i]), power)
            out[s, i] = v
            total += v
        inv = 1.0 / total
        for s in range(sources):
            out[s, i] = (out[s, i] + share) * inv


def ratio_masks(
    magnitudes: np.ndarray, power: float = 2.0, eps: float = 1e-8, out: np.ndarray | None = None
) -> np.ndarray:
    """Soft ratio masks for ``S`` sources from their magnitude estimates.

    ``mask_s = (|v_s|^p + eps / S) / (sum_j |v_j|^p + eps)``: ``p = 2`` is the Wiener filter
    (ratio of powers), ``p = 1`` the magnitude ratio mask. Masks lie in ``[0, 1]`` and sum to 1
    in every bin exactly (up to rounding); where all sources are ~0 each gets ``1 / S``.

    Args:
        magnitudes: real, non-negative, ``(S, *shape)`` (e.g. ``(S, frames, channels, n_bins)``);
            complex values are accepted and their modulus is used.
        power: exponent ``p`` (> 0).
        eps: regulariser, in the units of ``|v|^p``.
        out: float32 ``(S, *shape)``, C-contiguous, to fill without allocating.

    Returns:
        float32 masks ``(S, *shape)`` (``out`` when given).
    """
    mags = np.asarray(magnitudes)
    if mags.ndim < 1 or mags.shape[0] < 1:
        raise ValueError(f"magnitudes must be (S, ...) with S >= 1, got {mags.shape}")
    if not power > 0:
        raise ValueError(f"power must be > 0, got {power}")
    if out is None:
        out = np.empty(mags.shape, dtype=np.float32)
    elif out.shape != mags.shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be C-contiguous float32 {mags.shape}, got {out.dtype} {out.shape}")
    sources = mags.shape[0]
    _ratio_masks_2d(mags.reshape(sources, -1), float(power), float(eps), out.reshape(sources, -1))
    return out


@njit(nogil=True, cache=True)
def _wiener_2d(mix, mags, power, eps, out):
    sources, n = mags.shape
    share = eps / sources
    for i in range(n):
        total = eps
        for s in range(sources):
            total += _power(abs(mags[s, i]), power)
        scale = mix[i] / total
        for s in range(sources):
            out[s, i] = (_power(abs(mags[s, i]), power) + share) * scale


def wiener_separate(
    mix_spectra: np.ndarray,
    magnitudes: np.ndarray,
    power: float = 2.0,
    eps: float = 1e-8,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Per-source complex spectra: the mixture filtered by :func:`ratio_masks` of ``magnitudes``.

    ``out[s] = mask_s * mix`` (the mixture's phase is kept), computed in one fused pass without a
    mask buffer. Because the masks sum to 1, ``out.sum(axis=0) == mix_spectra`` up to rounding.

    Args:
        mix_spectra: complex mixture, any shape ``shape`` (e.g. ``(frames, channels, n_bins)``).
        magnitudes: ``(S, *shape)`` magnitude estimates for the ``S`` sources.
        power, eps: as in :func:`ratio_masks`.
        out: complex64 ``(S, *shape)``, C-contiguous, to fill without allocating.

    Returns:
        complex64 ``(S, *shape)`` (``out`` when given).
    """
    mix = np.asarray(mix_spectra)
    mags = np.asarray(magnitudes)
    if mags.shape[1:] != mix.shape:
        raise ValueError(f"magnitudes {mags.shape} must be (S, *{mix.shape})")
    if not power > 0:
        raise ValueError(f"power must be > 0, got {power}")
    if out is None:
        out = np.empty(mags.shape, dtype=np.complex64)
    elif out.shape != mags.shape or out.dtype != np.complex64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be C-contiguous complex64 {mags.shape}, got {out.dtype} {out.shape}")
    sources = mags.shape[0]
    _wiener_2d(mix.reshape(-1), mags.reshape(sources, -1), float(power), float(eps), out.reshape(sources, -1))
    return out
