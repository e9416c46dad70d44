"""Spectral features for models and monitors: mel filterbanks and log-mel spectra.

Mel scales:

- Slaney (default, ``htk=False``; as in the Auditory Toolbox and librosa's default): linear
  below 1 kHz (``mel = f / (200/3)``, so 1 kHz is mel 15), logarithmic above
  (``mel = 15 + ln(f / 1000) / (ln(6.4) / 27)``).
- HTK (``htk=True``): ``mel = 2595 log10(1 + f / 700)``.

Filters are triangles between adjacent mel points, *area-normalised* (Slaney): each triangle
is scaled by ``2 / (f_high - f_low)`` so that its area over frequency in Hz is 1, i.e. a filter
measures power *density* and wide high-frequency bands do not dominate.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from noisyneuron.dsp.stft import stft

__all__ = ["hz_to_mel", "mel_to_hz", "mel_filterbank", "log_mel", "log_mel_spectrogram"]

_F_SP = 200.0 / 3.0  # Hz per mel in the linear part of the Slaney scale
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # 15
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz, htk: bool = False):
    """Frequency in Hz to mel (Slaney scale, or HTK with ``htk=True``). Scalars or arrays."""
    f = np.asarray(hz, dtype=np.float64)
    if htk:
        mel = 2595.0 * np.log10(1.0 + f / 700.0)
    else:
        mel = np.where(
            f < _MIN_LOG_HZ,
            f / _F_SP,
            _MIN_LOG_MEL + np.log(np.maximum(f, 1e-12) / _MIN_LOG_HZ) / _LOGSTEP,
        )
    return mel if mel.ndim else float(mel)


def mel_to_hz(mel, htk: bool = False):
    """Mel to frequency in Hz (inverse of :func:`hz_to_mel`)."""
    m = np.asarray(mel, dtype=np.float64)
    if htk:
        hz = 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    else:
        hz = np.where(m < _MIN_LOG_MEL, m * _F_SP, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)))
    return hz if hz.ndim else float(hz)


def mel_filterbank(
    sample_rate: float,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
) -> np.ndarray:
    """Area-normalised triangular mel filters, float32 ``(n_mels, n_fft // 2 + 1)``.

    Args:
        sample_rate: Hz. n_fft: FFT length, in samples (bin ``k`` is at ``k sample_rate / n_fft`` Hz).
        n_mels: number of filters.
        fmin, fmax: lowest and highest filter edge, Hz (``fmax`` defaults to ``sample_rate / 2``).
        htk: use the HTK mel scale instead of Slaney's.

    Filter ``i`` rises from mel point ``i`` to ``i + 1`` and falls to ``i + 2``, where the
    ``n_mels + 2`` points are equally spaced in mel between ``fmin`` and ``fmax``; it is scaled
    by ``2 / (hz[i + 2] - hz[i])`` (unit area in Hz).
    """
    if fmax is None:
        fmax = sample_rate / 2.0
    if n_mels < 1 or n_fft < 2 or not 0.0 <= fmin < fmax:
        raise ValueError(f"bad mel filterbank arguments: n_mels={n_mels}, n_fft={n_fft}, fmin={fmin}, fmax={fmax}")
    n_bins = n_fft // 2 + 1
    freqs = np.arange(n_bins, dtype=np.float64) * sample_rate / n_fft
    points = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)
    lower = points[:-2, None]
    centre = points[1:-1, None]
    upper = points[2:, None]
    rising = (freqs[None, :] - lower) / np.maximum(centre - lower, 1e-12)
    falling = (upper - freqs[None, :]) / np.maximum(upper - centre, 1e-12)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= 2.0 / (upper - lower)
    return weights.astype(np.float32)


@njit(nogil=True, cache=True)
def _log_mel_kernel(power, filterbank, out, floor_power):
    frames = power.shape[0]
    n_mels, n_bins = filterbank.shape
    for m in range(n_mels):
        # the non-zero support of the triangle
        lo = 0
        while lo < n_bins and filterbank[m, lo] == 0.0:
            lo += 1
        hi = n_bins
        while hi > lo and filterbank[m, hi - 1] == 0.0:
            hi -= 1
        for f in range(frames):
            acc = 0.0
            for k in range(lo, hi):
                acc += filterbank[m, k] * power[f, k]
            if acc < floor_power:
                acc = floor_power
            out[f, m] = 10.0 * math.log10(acc)


def log_mel(power_spectra: np.ndarray, filterbank: np.ndarray, out: np.ndarray, floor_db: float = -100.0) -> np.ndarray:
    """Log-mel energies ``out = 10 log10(max(filterbank @ power, 10^(floor_db / 10)))``, in dB.

    Args:
        power_spectra: real ``(frames, n_bins)`` power spectra (``|X|^2``), or ``(n_bins,)``.
        filterbank: ``(n_mels, n_bins)`` from :func:`mel_filterbank`.
        out: float32 ``(frames, n_mels)`` (or ``(n_mels,)``) to fill; nothing is allocated.
        floor_db: lowest value written, dB (silence gives exactly this).

    Returns:
        ``out``.
    """
    power = power_spectra[None, :] if power_spectra.ndim == 1 else power_spectra
    target = out[None, :] if out.ndim == 1 else out
    if power.shape[1] != filterbank.shape[1] or target.shape != (power.shape[0], filterbank.shape[0]):
        raise ValueError(
            f"shapes do not fit: power {power_spectra.shape}, filterbank {filterbank.shape}, out {out.shape}"
        )
    _log_mel_kernel(power, filterbank, target, 10.0 ** (floor_db / 10.0))
    return out


def log_mel_spectrogram(
    x_mono: np.ndarray,
    sample_rate: float,
    n_fft: int = 1024,
    hop: int = 512,
    n_mels: int = 64,
    fmin: float = 0.0,
    fmax: float | None = None,
    floor_db: float = -100.0,
) -> np.ndarray:
    """Log-mel spectrogram of a mono signal, float32 ``(frames, n_mels)`` in dB.

    Periodic Hann window, centred frames (:func:`~noisyneuron.dsp.stft.stft` with
    ``center=True``: ``frames = 1 + len(x) // hop``), power ``|X|^2`` of the unnormalised FFT
    (a full-scale sine of amplitude 1 gives ``(n_fft / 4)^2`` in its bin), Slaney mel filters.
    """
    x = np.asarray(x_mono, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"x_mono must be 1-D (samples,), got shape {x.shape}")
    spec = stft(x, n_fft, hop, "hann", center=True)
    power = (spec.real.astype(np.float32) ** 2 + spec.imag.astype(np.float32) ** 2)
    fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
    out = np.empty((power.shape[0], n_mels), dtype=np.float32)
    return log_mel(np.ascontiguousarray(power), fb, out, floor_db)
