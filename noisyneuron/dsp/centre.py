"""Stereo centre extraction by per-bin panning similarity (after Avendano & Jot, 2002/2004).

For each time-frequency bin of a stereo spectrum (``L``, ``R``) the *centre-ness* is

    c = 2 Re(L R*) / (|L|^2 + |R|^2)        in [-1, 1]

This is Avendano & Jot's similarity ``psi = 2 |L R*| / (|L|^2 + |R|^2)`` (which compares levels:
it is 1 exactly when ``|L| = |R|``) multiplied by the inter-channel phase coherence
``cos(arg L - arg R)``. The phase factor matters for real mixes: decorrelated (wide) content
often has ``|L| ~ |R|`` in a bin by chance, but rarely also the same phase, so it is not taken
for centre. For an in-phase source panned with constant power to position ``p`` in ``[-1, 1]``
(gains ``cos(theta)``, ``sin(theta)`` with ``theta = (p + 1) pi / 4``), ``c = cos(p pi / 2)``;
the panning index follows from the level ratio ``|L| / |R|``.

The centre mask turns ``c`` into a soft weight with the ``width`` parameter, the largest pan
distance ``|p|`` (0..1) that still counts as centre:

    c_w = cos(width pi / 2),   c_full = 1 - (1 - c_w) / 4,
    t = clip((c - c_w) / (c_full - c_w), 0, 1),   m = t^2 (3 - 2 t)

so ``m = 1`` for bins within about ``width / 2`` of the centre (``c >= c_full``; near the centre
``1 - c ~ (p pi / 2)^2 / 2``, so a quarter of ``1 - c_w`` is half the pan distance), falling
smoothly (smoothstep) to 0 for anything panned ``width`` or further from the centre, and for
out-of-phase or silent bins. The plateau matters: a bin where the voice dominates but some of
the band leaks in has ``c`` a little below 1 and should still be removed. Bins outside the band
``low_cut_hz .. high_cut_hz`` get ``m = 0`` (with a two-bin linear transition), which is how
centred bass and kick below ~120 Hz are kept.

The centre estimate is ``C = m (L + R) / 2`` and the output is

    L' = L - (1 - g) C,    R' = R - (1 - g) C

with ``g = centre_gain`` (linear): 0 removes the centre (vocals), 1 leaves the input unchanged,
2 boosts the centre by 6 dB.

All functions work in place on complex spectra shaped ``(frames, channels, n_bins)`` (the
:class:`~noisyneuron.dsp.stft.StreamingStft` layout) or on separate ``left`` / ``right`` arrays
shaped ``(frames, n_bins)``, allocate nothing and are numba-compiled (``nogil``). Mono spectra
(``channels == 1``) are left unchanged: panning carries no information in one channel, so nothing
can be separated. With more than two channels only channels 0 and 1 (front left/right) are used.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "centre_threshold",
    "band_weight",
    "mask_from_similarity",
    "similarity",
    "similarity_mid_side",
    "centre_mask_lr",
    "centre_mask",
    "apply_centre_gain_lr",
    "apply_centre_gain",
    "centre_cut_lr",
    "centre_cut",
]

# Added to the bin energy (|L|^2 + |R|^2, full scale = 1) before dividing: a silent bin gets
# c = 0 (mask 0) instead of 0 / 0. Far below any audible level.
_TINY = np.float32(1e-30)


@njit(nogil=True, cache=True)
def centre_threshold(width):
    """``(c_w, inv_span)`` for ``width`` (0..1, clipped): the centre-ness ``c_w = cos(width pi / 2)``
    at which the mask reaches 0, and ``inv_span = 1 / (c_full - c_w) = 4 / (3 (1 - c_w))``."""
    if width < 0.0:
        width = 0.0
    elif width > 1.0:
        width = 1.0
    c_w = math.cos(width * 0.5 * math.pi)
    return c_w, 4.0 / (3.0 * max(1.0 - c_w, 1e-9))


@njit(nogil=True, cache=True)
def band_weight(k, low_bin, high_bin):
    """Band weight of bin ``k`` (float32): 1 inside ``[low_bin, high_bin]`` (fractional bin
    numbers, ``bin = Hz * n_fft / sample_rate``), 0 below ``low_bin - 2`` and above
    ``high_bin + 2``, linear in between. Branch-free."""
    kf = np.float32(k)
    lo = (kf - np.float32(low_bin)) * np.float32(0.5) + np.float32(1.0)
    hi = (np.float32(high_bin) - kf) * np.float32(0.5) + np.float32(1.0)
    return min(max(min(lo, hi), np.float32(0.0)), np.float32(1.0))


@njit(nogil=True, cache=True)
def _bin_limits(sample_rate, n_fft, low_cut_hz, high_cut_hz):
    scale = n_fft / sample_rate  # bins per Hz
    return low_cut_hz * scale, high_cut_hz * scale


@njit(nogil=True, cache=True)
def mask_from_similarity(c, c_w, inv_span):
    """Smoothstep mask (float32) from centre-ness ``c``: 0 at ``c <= c_w``, 1 at ``c >= c_full``.

    ``c_w`` and ``inv_span = 1 / (c_full - c_w)`` come from :func:`centre_threshold`. Branch-free.
    """
    t = (np.float32(c) - np.float32(c_w)) * np.float32(inv_span)
    t = min(max(t, np.float32(0.0)), np.float32(1.0))
    return t * t * (np.float32(3.0) - np.float32(2.0) * t)


@njit(nogil=True, cache=True)
def similarity(l, r):
    """Centre-ness ``c = 2 Re(L R*) / (|L|^2 + |R|^2)`` of one bin (float32; 0 for silence)."""
    lr = np.float32(l.real)
    li = np.float32(l.imag)
    rr = np.float32(r.real)
    ri = np.float32(r.imag)
    energy = lr * lr + li * li + rr * rr + ri * ri + _TINY
    return np.float32(2.0) * (lr * rr + li * ri) / energy


@njit(nogil=True, cache=True)
def similarity_mid_side(sr, si, dr, di):
    """The same centre-ness from mid ``S = (L + R) / 2`` and side ``D = (L - R) / 2`` (real and
    imaginary parts, float32): ``c = (|S|^2 - |D|^2) / (|S|^2 + |D|^2)``."""
    es = sr * sr + si * si
    ed = dr * dr + di * di
    return (es - ed) / (es + ed + np.float32(0.5) * _TINY)


@njit(nogil=True, cache=True)
def _mask_value(l, r, c_w, inv_span):
    return mask_from_similarity(similarity(l, r), c_w, inv_span)


@njit(nogil=True, cache=True)
def centre_mask_lr(left, right, out, width, sample_rate, n_fft, low_cut_hz=0.0, high_cut_hz=1e12):
    """Centre mask of ``left`` / ``right`` spectra (complex ``(frames, n_bins)``) into ``out``.

    Args:
        left, right: complex spectra, ``(frames, n_bins)``.
        out: float32 ``(frames, n_bins)``, receives the mask in 0..1.
        width: largest pan distance still counted as centre, 0..1 (0.3 = 30 % of the way to
            hard left/right).
        sample_rate: Hz. n_fft: frame length of the spectra, in samples.
        low_cut_hz, high_cut_hz: band in which centre content is extracted, Hz; outside it the
            mask is 0 (content is kept).
    """
    c_w, inv_span = centre_threshold(width)
    low_bin, high_bin = _bin_limits(sample_rate, n_fft, low_cut_hz, high_cut_hz)
    frames = left.shape[0]
    n_bins = left.shape[1]
    for f in range(frames):
        for k in range(n_bins):
            out[f, k] = band_weight(k, low_bin, high_bin) * _mask_value(left[f, k], right[f, k], c_w, inv_span)


@njit(nogil=True, cache=True)
def centre_mask(spectra, out, width, sample_rate, n_fft, low_cut_hz=0.0, high_cut_hz=1e12):
    """:func:`centre_mask_lr` for ``spectra`` shaped ``(frames, channels, n_bins)``.

    Mono spectra give an all-zero mask (nothing is centre-extracted).
    """
    if spectra.shape[1] < 2:
        out[:, :] = 0.0
        return
    centre_mask_lr(spectra[:, 0, :], spectra[:, 1, :], out, width, sample_rate, n_fft, low_cut_hz, high_cut_hz)


@njit(nogil=True, cache=True)
def apply_centre_gain_lr(left, right, mask, centre_gain):
    """``L -= (1 - g) m (L + R) / 2`` and the same for ``R``, in place, with a given ``mask``.

    ``mask`` is real ``(frames, n_bins)`` (e.g. from :func:`centre_mask_lr`); ``centre_gain`` is
    the linear gain ``g`` of the extracted centre (0 removes it, 1 leaves it, 2 doubles it).
    """
    amount = np.float32(0.5 * (1.0 - centre_gain))
    frames = left.shape[0]
    n_bins = left.shape[1]
    for f in range(frames):
        for k in range(n_bins):
            l = left[f, k]
            r = right[f, k]
            d = (amount * np.float32(mask[f, k])) * (l + r)
            left[f, k] = l - d
            right[f, k] = r - d


@njit(nogil=True, cache=True)
def apply_centre_gain(spectra, mask, centre_gain):
    """:func:`apply_centre_gain_lr` on ``(frames, channels, n_bins)`` spectra (mono: unchanged)."""
    if spectra.shape[1] < 2:
        return
    apply_centre_gain_lr(spectra[:, 0, :], spectra[:, 1, :], mask, centre_gain)


@njit(nogil=True, cache=True)
def centre_cut_lr(left, right, width, centre_gain, sample_rate, n_fft, low_cut_hz=0.0, high_cut_hz=1e12):
    """Mask and apply in one pass (no mask buffer): see :func:`centre_mask_lr` and
    :func:`apply_centre_gain_lr` for the arguments. In place on ``left`` / ``right``."""
    amount = 0.5 * (1.0 - centre_gain)
    if amount == 0.0:
        return
    amount32 = np.float32(amount)
    c_w, inv_span = centre_threshold(width)
    low_bin, high_bin = _bin_limits(sample_rate, n_fft, low_cut_hz, high_cut_hz)
    n_bins = left.shape[1]
    k_start = max(int(math.floor(low_bin - 2.0)), 0)
    k_stop = min(int(math.ceil(high_bin + 2.0)) + 1, n_bins)
    frames = left.shape[0]
    for f in range(frames):
        for k in range(k_start, k_stop):
            l = left[f, k]
            r = right[f, k]
            m = band_weight(k, low_bin, high_bin) * _mask_value(l, r, c_w, inv_span)
            d = (amount32 * m) * (l + r)
            left[f, k] = l - d
            right[f, k] = r - d


@njit(nogil=True, cache=True)
def centre_cut(spectra, width, centre_gain, sample_rate, n_fft, low_cut_hz=0.0, high_cut_hz=1e12):
    """Centre extraction with gain on ``(frames, channels, n_bins)`` spectra, in place.

    Args:
        spectra: complex64 ``(frames, channels, n_bins)``; channels 0 and 1 are left and right.
            Mono (one channel): returned unchanged.
        width: largest pan distance still counted as centre, 0..1.
        centre_gain: linear gain for the extracted centre, 0..2 (0 removes the vocals).
        sample_rate: Hz. n_fft: frame length, in samples.
        low_cut_hz, high_cut_hz: only centre content between these frequencies (Hz) is changed.
    """
    if spectra.shape[1] < 2:
        return
    centre_cut_lr(spectra[:, 0, :], spectra[:, 1, :], width, centre_gain, sample_rate, n_fft, low_cut_hz, high_cut_hz)
