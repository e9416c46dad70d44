"""Short-time Fourier transforms: a streaming analysis/synthesis engine and batch ``stft``/``istft``.

Conventions used throughout NoisyNeuron:

- ``n_fft`` is the frame length in samples, ``hop`` the frame advance in samples,
  ``n_bins = n_fft // 2 + 1`` the number of non-negative frequency bins; bin ``k`` is at
  ``k * sample_rate / n_fft`` Hz.
- Forward transforms are unnormalised (``X[k] = sum_n w[n] x[n] exp(-2j pi k n / n_fft)``), like
  ``numpy.fft.rfft``; inverse transforms divide by ``n_fft`` like ``numpy.fft.irfft``, so the
  imaginary parts of the DC and Nyquist bins are ignored.
- Spectra are ``complex64``, signals ``float32``.

:class:`StreamingStft` runs block-in/block-out on the audio thread with any block size per call;
:func:`stft` / :func:`istft` work on whole signals (models, evaluation, benchmarks).

FFTs run inside numba through rocket-fft's low-level interface (pocketfft/ducc0), writing into
preallocated arrays, so the streaming path allocates nothing per call.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit
from rocket_fft import c2c, c2r, r2c

__all__ = [
    "WINDOWS",
    "make_window",
    "as_window",
    "cola_envelope",
    "cola_constant",
    "StreamingStft",
    "stft",
    "istft",
    "n_frames",
]

#: Window names understood by :func:`make_window`.
WINDOWS = ("hann", "sqrt_hann", "hamming", "blackman", "rect")

# Transform axes for rocket-fft (global arrays are frozen into the compiled code: no allocation).
_AXIS_LAST_3D = np.array([2], dtype=np.int64)


def make_window(name: str, n_fft: int) -> np.ndarray:
    """A window of ``n_fft`` samples as a float32 array.

    All windows are *periodic* (DFT-even: the sample that would repeat the first one is left
    out), which is what makes them sum to a constant under overlap-add:

    - ``"hann"``: ``0.5 - 0.5 cos(2 pi n / N)``. COLA for hops ``N/2, N/3, N/4, ...``
      (with a rectangular synthesis window or as analysis*synthesis product).
    - ``"sqrt_hann"``: the square root of the periodic Hann window. Used as both analysis and
      synthesis window the product is Hann: the usual choice for streaming spectral processing.
    - ``"hamming"``: ``0.54 - 0.46 cos(2 pi n / N)``. COLA for ``N/2, N/4, ...`` (product with a
      rectangular window).
    - ``"blackman"``: ``0.42 - 0.5 cos(2 pi n / N) + 0.08 cos(4 pi n / N)``. COLA for
      ``N/3, N/4, ...``.
    - ``"rect"`` (aliases ``"boxcar"``, ``"ones"``): all ones.

    Raises:
        ValueError: for an unknown name or ``n_fft < 1``.
    """
    if n_fft < 1:
        raise ValueError(f"n_fft must be >= 1 sample, got {n_fft}")
    n = np.arange(n_fft, dtype=np.float64)
    phase = 2.0 * np.pi * n / n_fft
    key = name.lower()
    if key == "hann":
        w = 0.5 - 0.5 * np.cos(phase)
    elif key == "sqrt_hann":
        w = np.sqrt(np.maximum(0.5 - 0.5 * np.cos(phase), 0.0))
    elif key == "hamming":
        w = 0.54 - 0.46 * np.cos(phase)
    elif key == "blackman":
        w = 0.42 - 0.5 * np.cos(phase) + 0.08 * np.cos(2.0 * phase)
        w = np.maximum(w, 0.0)  # remove -1e-17 rounding at the ends
    elif key in ("rect", "boxcar", "ones"):
        w = np.ones(n_fft)
    else:
        raise ValueError(f"unknown window {name!r}; choose one of {WINDOWS}")
    return w.astype(np.float32)


def as_window(window, n_fft: int, what: str = "analysis") -> np.ndarray:
    """``window`` as a float32 array of ``n_fft`` samples: a :func:`make_window` name or an array."""
    if isinstance(window, str):
        return make_window(window, n_fft)
    w = np.asarray(window, dtype=np.float32).reshape(-1)
    if w.shape[0] != n_fft:
        raise ValueError(f"{what} window has {w.shape[0]} samples, expected n_fft={n_fft}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{what} window contains NaN or Inf")
    return np.ascontiguousarray(w)


def cola_envelope(analysis: np.ndarray, synthesis: np.ndarray, hop: int) -> np.ndarray:
    """The overlap-add envelope of ``analysis * synthesis`` at ``hop`` samples, one period.

    ``env[i] = sum_k analysis[i + k hop] * synthesis[i + k hop]`` for ``i`` in ``0 .. hop-1``
    (float64). Perfect reconstruction by weighted overlap-add needs it to be constant.
    """
    product = analysis.astype(np.float64) * synthesis.astype(np.float64)
    n_fft = product.shape[0]
    env = np.zeros(hop)
    for start in range(0, n_fft, hop):
        part = product[start : start + hop]
        env[: part.shape[0]] += part
    return env


def cola_constant(analysis: np.ndarray, synthesis: np.ndarray, hop: int, tolerance: float = 1e-4) -> float:
    """The constant overlap-add sum of ``analysis * synthesis`` at ``hop`` samples.

    Raises:
        ValueError: if the envelope (:func:`cola_envelope`) varies by more than ``tolerance``
            relative to its maximum, or is zero.
    """
    env = cola_envelope(analysis, synthesis, hop)
    top = float(env.max())
    if not top > 0.0 or float(env.max() - env.min()) > tolerance * top:
        raise ValueError(
            f"windows are not COLA at hop={hop}: the overlap-add envelope of analysis*synthesis "
            f"ranges {env.min():.6g}..{env.max():.6g} (needs to be constant within {tolerance:g} relative)"
        )
    return float(env.mean())


# ----------------------------------------------------------------------------------------------
# Streaming kernels. Two real channels a, b share one complex FFT: z = a + i b.
# ----------------------------------------------------------------------------------------------


@njit(nogil=True, cache=True)
def _pack_windowed(inbuf, window, zrow, a, b, n_fft):
    """zrow[j] = w[j] * (in[a, j] + i in[b, j]) (b < 0: imaginary part zero)."""
    if b >= 0:
        for j in range(n_fft):
            w = window[j]
            zrow[j] = complex(w * inbuf[a, j], w * inbuf[b, j])
    else:
        for j in range(n_fft):
            zrow[j] = complex(window[j] * inbuf[a, j], 0.0)


@njit(nogil=True, cache=True)
def _unpack_spectra(zf, spec_a, spec_b, n_fft):
    """Split the FFT of a + i b into the half spectra of a and b (b may be absent: len 0)."""
    n_bins = spec_a.shape[0]
    has_b = spec_b.shape[0] > 0
    half = np.float32(0.5)
    for k in range(n_bins):
        z = zf[k]
        zm = zf[n_fft - k if k > 0 else 0]
        # A = (z + conj zm) / 2, B = (z - conj zm) / 2i
        spec_a[k] = complex(half * (z.real + zm.real), half * (z.imag - zm.imag))
        if has_b:
            spec_b[k] = complex(half * (z.imag + zm.imag), half * (zm.real - z.real))


@njit(nogil=True, cache=True)
def _pack_spectra(spec_a, spec_b, zf, n_fft):
    """Full spectrum of a + i b from the half spectra of a and b (imag of DC/Nyquist ignored)."""
    n_bins = spec_a.shape[0]
    has_b = spec_b.shape[0] > 0
    last = n_bins - 1 if n_fft % 2 == 0 else n_bins
    zero = np.float32(0.0)
    for k in range(n_bins):
        xa = spec_a[k]
        ar = xa.real
        ai = xa.imag
        br = zero
        bi = zero
        if has_b:
            xb = spec_b[k]
            br = xb.real
            bi = xb.imag
        if k == 0 or k == last:
            ai = zero
            bi = zero
        # a + i b at k, conj(a) + i conj(b) at n_fft - k
        zf[k] = complex(ar - bi, ai + br)
        m = n_fft - k
        if m != n_fft and m >= n_bins:
            zf[m] = complex(ar + bi, br - ai)


@njit(nogil=True, cache=True)
def _stream_analyse(block, state, inbuf, window, ztime, zfreq, spectra, n_fft, hop):
    """Push ``block`` into the input FIFO, analyse every completed frame into ``spectra``.

    Returns the number of frames analysed. ``state[0]`` is the input FIFO fill (samples).
    """
    frames = block.shape[0]
    channels = block.shape[1]
    pairs = (channels + 1) // 2
    fill = state[0]
    pos = 0
    k = 0
    while pos < frames:
        take = n_fft - fill
        if take > frames - pos:
            take = frames - pos
        for i in range(take):
            for c in range(channels):
                inbuf[c, fill + i] = block[pos + i, c]
        fill += take
        pos += take
        if fill == n_fft:
            for p in range(pairs):
                a = 2 * p
                b = a + 1 if a + 1 < channels else -1
                _pack_windowed(inbuf, window, ztime[k, p], a, b, n_fft)
            keep = n_fft - hop
            for c in range(channels):
                for j in range(keep):
                    inbuf[c, j] = inbuf[c, j + hop]
            fill = keep
            k += 1
    state[0] = fill
    if k > 0:
        c2c(ztime[:k], zfreq[:k], _AXIS_LAST_3D, True, 1.0, 1)
        for f in range(k):
            for p in range(pairs):
                a = 2 * p
                if a + 1 < channels:
                    _unpack_spectra(zfreq[f, p], spectra[f, a], spectra[f, a + 1], n_fft)
                else:
                    _unpack_spectra(zfreq[f, p], spectra[f, a], spectra[f, a, :0], n_fft)
    return k


@njit(nogil=True, cache=True)
def _stream_synthesise(block, state, spectra, k, zfreq, ztime, window, ola, outq, n_fft, hop):
    """Inverse-transform ``k`` frames, overlap-add them, and pop ``len(block)`` output samples.

    ``window`` is the synthesis window already divided by the COLA constant. ``state[1]`` is
    the output FIFO fill (samples).
    """
    frames = block.shape[0]
    channels = block.shape[1]
    pairs = (channels + 1) // 2
    count = state[1]
    if k > 0:
        for f in range(k):
            for p in range(pairs):
                a = 2 * p
                if a + 1 < channels:
                    _pack_spectra(spectra[f, a], spectra[f, a + 1], zfreq[f, p], n_fft)
                else:
                    _pack_spectra(spectra[f, a], spectra[f, a, :0], zfreq[f, p], n_fft)
        c2c(zfreq[:k], ztime[:k], _AXIS_LAST_3D, False, 1.0 / n_fft, 1)
        keep = n_fft - hop
        for f in range(k):
            for p in range(pairs):
                a = 2 * p
                zrow = ztime[f, p]
                if a + 1 < channels:
                    for j in range(n_fft):
                        w = window[j]
                        z = zrow[j]
                        ola[a, j] += w * z.real
                        ola[a + 1, j] += w * z.imag
                else:
                    for j in range(n_fft):
                        ola[a, j] += window[j] * zrow[j].real
            for c in range(channels):
                for j in range(hop):
                    outq[c, count + j] = ola[c, j]
                for j in range(keep):
                    ola[c, j] = ola[c, j + hop]
                for j in range(keep, n_fft):
                    ola[c, j] = 0.0
            count += hop
    # pop `frames` samples (never underflows: the FIFO starts with hop - 1 zeros)
    for i in range(frames):
        for c in range(channels):
            block[i, c] = outq[c, i]
    rest = count - frames
    for c in range(channels):
        for j in range(rest):
            outq[c, j] = outq[c, j + frames]
    state[1] = rest


class StreamingStft:
    """Block-in/block-out STFT analysis, per-block spectral processing, and overlap-add synthesis.

    Each call to :meth:`process` takes any number of frames (1 .. ``max_block``, varying from
    call to call), analyses every hop of input completed during the block (window, FFT) into
    :attr:`spectra`, hands those frames to ``frame_fn`` *once* for the whole block, then
    inverse-transforms them, applies the synthesis window and overlap-adds with the COLA
    normalisation. The output replaces the input in the same array.

    Latency, in samples: ``latency_samples = n_fft - 1``, for every sequence of block sizes.
    Derivation: the input FIFO starts with ``n_fft - hop`` zeros, so frame ``j`` is analysed as
    soon as input sample ``t = j hop + hop - 1`` arrives and covers input samples
    ``j hop - (n_fft - hop) .. j hop + hop - 1``. After its overlap-add, the first ``hop``
    samples of the accumulator are final: input times ``j hop - n_fft + hop + m``, ``m < hop``.
    They are ready ``n_fft - 1 - m`` samples after they came in, so a constant delay must be
    at least ``n_fft - 1`` (``m = 0``). The output FIFO starts with ``hop - 1`` zeros, which is
    exactly what keeps it from running dry when one sample at a time is pulled (after input
    sample ``t`` it has received ``hop floor((t + 1) / hop)`` samples and given ``t + 1``), and
    output sample ``t`` is then element ``t - (hop - 1)`` of the synthesised stream, i.e. input
    sample ``t - (hop - 1) - (n_fft - hop) = t - (n_fft - 1)``. Processing a whole block's
    frames before pulling its output only changes *when* samples are computed, not which.

    With ``frame_fn`` doing nothing, the output equals the input delayed by ``n_fft - 1``
    samples up to float32 rounding (about 1e-6 of full scale).

    Args:
        n_fft: frame length in samples (>= 2).
        hop: frame advance in samples (1 .. n_fft).
        channels: number of channels (>= 1).
        max_block: largest block, in frames, that :meth:`process` will get.
        window: analysis window: a name for :func:`make_window` or an array of ``n_fft`` samples.
        synthesis_window: synthesis window, same forms; ``None`` uses the analysis window
            (weighted overlap-add: ``"sqrt_hann"`` with itself gives Hann, COLA at
            ``n_fft/2``, ``n_fft/4``...). Use ``"rect"`` for plain overlap-add of e.g. Hann frames.

    Raises:
        ValueError: bad sizes, or windows whose product is not COLA at ``hop`` (the overlap-add
            envelope must be constant within 1e-4 relative).

    Attributes:
        spectra: complex64 ``(max_frames_per_block, channels, n_bins)``; ``frame_fn`` gets the
            first ``k`` frames of it.
        latency_samples: ``n_fft - 1``.
        max_frames_per_block: ``ceil(max_block / hop)``.
    """

    def __init__(
        self,
        n_fft: int,
        hop: int,
        channels: int,
        max_block: int,
        window="sqrt_hann",
        synthesis_window=None,
    ) -> None:
        n_fft, hop, channels, max_block = int(n_fft), int(hop), int(channels), int(max_block)
        if n_fft < 2:
            raise ValueError(f"n_fft must be >= 2 samples, got {n_fft}")
        if not 1 <= hop <= n_fft:
            raise ValueError(f"hop must be in 1..n_fft={n_fft} samples, got {hop}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if max_block < 1:
            raise ValueError(f"max_block must be >= 1 frame, got {max_block}")
        self.n_fft = n_fft
        self.hop = hop
        self.channels = channels
        self.max_block = max_block
        self.n_bins = n_fft // 2 + 1
        self.analysis_window = as_window(window, n_fft, "analysis")
        self.synthesis_window = (
            self.analysis_window.copy()
            if synthesis_window is None
            else as_window(synthesis_window, n_fft, "synthesis")
        )
        #: Sum of analysis*synthesis over the overlapping frames (the COLA constant).
        self.cola_constant = cola_constant(self.analysis_window, self.synthesis_window, hop)
        self._synthesis_scaled = (
            self.synthesis_window.astype(np.float64) / self.cola_constant
        ).astype(np.float32)
        self.max_frames_per_block = -(-max_block // hop)
        pairs = (channels + 1) // 2
        frames = self.max_frames_per_block
        self.spectra = np.zeros((frames, channels, self.n_bins), dtype=np.complex64)
        self._ztime = np.zeros((frames, pairs, n_fft), dtype=np.complex64)
        self._zfreq = np.zeros((frames, pairs, n_fft), dtype=np.complex64)
        self._inbuf = np.zeros((channels, n_fft), dtype=np.float32)
        self._ola = np.zeros((channels, n_fft), dtype=np.float32)
        self._outq = np.zeros((channels, hop * (frames + 1)), dtype=np.float32)
        self._state = np.zeros(2, dtype=np.int64)
        self.reset()

    @property
    def latency_samples(self) -> int:
        """Delay from input to output, in samples: ``n_fft - 1``."""
        return self.n_fft - 1

    def reset(self) -> None:
        """Clear all buffers to silence (input FIFO: ``n_fft - hop`` zeros, output FIFO: ``hop - 1``)."""
        self._inbuf.fill(0.0)
        self._ola.fill(0.0)
        self._outq.fill(0.0)
        self._state[0] = self.n_fft - self.hop
        self._state[1] = self.hop - 1

    def process(self, block: np.ndarray, frame_fn: Callable[[np.ndarray], None] | None = None) -> int:
        """Process ``block`` (float32 C-contiguous ``(frames, channels)``) in place.

        ``frame_fn(spectra)`` is called once, with a ``(k, channels, n_bins)`` view of the frames
        analysed during this block, when ``k > 0``; it may change them in place. Returns ``k``.
        No allocation apart from that view.
        """
        k = _stream_analyse(
            block, self._state, self._inbuf, self.analysis_window, self._ztime, self._zfreq,
            self.spectra, self.n_fft, self.hop,
        )
        if k and frame_fn is not None:
            frame_fn(self.spectra[:k])
        _stream_synthesise(
            block, self._state, self.spectra, k, self._zfreq, self._ztime,
            self._synthesis_scaled, self._ola, self._outq, self.n_fft, self.hop,
        )
        return k


# ----------------------------------------------------------------------------------------------
# Batch transforms
# ----------------------------------------------------------------------------------------------


def n_frames(length: int, n_fft: int, hop: int, center: bool = True) -> int:
    """Number of STFT frames :func:`stft` makes for ``length`` samples.

    ``center=True``: ``1 + length // hop`` (like ``torch.stft``); otherwise
    ``1 + (length - n_fft) // hop`` (0 if ``length < n_fft``).
    """
    if center:
        return 1 + length // hop
    return 0 if length < n_fft else 1 + (length - n_fft) // hop


@njit(nogil=True, cache=True)
def _frame_windowed(padded, window, hop, frames_out):
    channels = frames_out.shape[0]
    n_frames_ = frames_out.shape[1]
    n_fft = frames_out.shape[2]
    for c in range(channels):
        for f in range(n_frames_):
            start = f * hop
            for j in range(n_fft):
                frames_out[c, f, j] = window[j] * padded[c, start + j]


@njit(nogil=True, cache=True)
def _stft_kernel(padded, window, hop, frames_buf, spec_out):
    _frame_windowed(padded, window, hop, frames_buf)
    r2c(frames_buf, spec_out, _AXIS_LAST_3D, True, 1.0, 1)


@njit(nogil=True, cache=True)
def _istft_kernel(spec, window, hop, frames_buf, out, envelope):
    """Inverse FFT, synthesis window, overlap-add into ``out`` (float64), divide by the envelope."""
    channels = frames_buf.shape[0]
    n_frames_ = frames_buf.shape[1]
    n_fft = frames_buf.shape[2]
    c2r(spec, frames_buf, _AXIS_LAST_3D, False, 1.0 / n_fft, 1)
    total = out.shape[1]
    for j in range(total):
        envelope[j] = 0.0
    for f in range(n_frames_):
        start = f * hop
        for j in range(n_fft):
            w = window[j]
            envelope[start + j] += w * w
    for c in range(channels):
        for f in range(n_frames_):
            start = f * hop
            row = frames_buf[c, f]
            for j in range(n_fft):
                out[c, start + j] += window[j] * row[j]
        for j in range(total):
            e = envelope[j]
            if e > 1e-10:
                out[c, j] /= e
            else:
                out[c, j] = 0.0


def stft(x: np.ndarray, n_fft: int, hop: int, window="hann", center: bool = True) -> np.ndarray:
    """Short-time Fourier transform of ``x`` (``(channels, samples)`` or ``(samples,)``).

    Args:
        x: real signal, float; 1-D is treated as one channel.
        n_fft: frame length in samples. hop: frame advance in samples.
        window: a :func:`make_window` name or an array of ``n_fft`` samples.
        center: ``True`` pads ``n_fft // 2`` zeros on both sides so that frame ``f`` is centred on
            sample ``f * hop`` (zero padding, not reflection, so that :func:`istft` inverts it
            exactly); ``False`` starts frame ``f`` at sample ``f * hop`` with no padding.

    Returns:
        complex64 ``(channels, frames, n_fft // 2 + 1)`` with ``frames = n_frames(samples, ...)``
        (for 1-D input, ``(frames, n_bins)``).
    """
    arr = np.asarray(x)
    squeeze = arr.ndim == 1
    arr = arr.reshape(1, -1) if squeeze else arr
    if arr.ndim != 2:
        raise ValueError(f"x must be (channels, samples) or (samples,), got shape {np.shape(x)}")
    channels, length = arr.shape
    n_fft, hop = int(n_fft), int(hop)
    if n_fft < 2 or not 1 <= hop:
        raise ValueError(f"need n_fft >= 2 and hop >= 1 samples, got {n_fft}, {hop}")
    win = as_window(window, n_fft, "analysis")
    frames = n_frames(length, n_fft, hop, center)
    pad = n_fft // 2 if center else 0
    needed = (frames - 1) * hop + n_fft if frames else 0
    padded = np.zeros((channels, max(needed, pad + length)), dtype=np.float32)
    padded[:, pad : pad + length] = arr
    frames_buf = np.empty((channels, frames, n_fft), dtype=np.float32)
    spec = np.empty((channels, frames, n_fft // 2 + 1), dtype=np.complex64)
    if frames:
        _stft_kernel(padded, win, hop, frames_buf, spec)
    return spec[0] if squeeze else spec


def istft(
    spec: np.ndarray,
    n_fft: int,
    hop: int,
    window="hann",
    length: int | None = None,
    center: bool = True,
) -> np.ndarray:
    """Inverse of :func:`stft` by weighted overlap-add with least-squares normalisation.

    Each frame is inverse transformed, multiplied by ``window`` again, overlap-added, and the sum
    is divided by ``sum_f window[t - f hop]**2`` (like ``torch.istft``). So ``istft(stft(x))``
    reproduces ``x`` (to float32 rounding) for *any* window, COLA or not, wherever that envelope
    is non-zero: everywhere with ``center=True`` and ``hop <= n_fft // 2``. Samples with a zero
    envelope (with ``center=False``: where the window is 0 at the first sample, or after the last
    whole frame) come back as 0; next to them (the first and last hop with ``center=False``) the
    envelope is tiny and the float32 rounding is amplified (errors up to ~1e-3 of full scale).

    Args:
        spec: complex ``(channels, frames, n_bins)`` or ``(frames, n_bins)``.
        n_fft, hop, window, center: as given to :func:`stft`.
        length: number of output samples (default: everything the frames cover, minus padding).

    Returns:
        float32 ``(channels, length)`` (1-D for 2-D ``spec``).
    """
    arr = np.asarray(spec)
    squeeze = arr.ndim == 2
    arr = arr[None] if squeeze else arr
    if arr.ndim != 3 or arr.shape[2] != n_fft // 2 + 1:
        raise ValueError(f"spec must be (channels, frames, {n_fft // 2 + 1}), got {np.shape(spec)}")
    channels, frames, _ = arr.shape
    n_fft, hop = int(n_fft), int(hop)
    win = as_window(window, n_fft, "synthesis")
    pad = n_fft // 2 if center else 0
    total = (frames - 1) * hop + n_fft if frames else 0
    if length is None:
        length = max(total - 2 * pad, 0)
    out = np.zeros((channels, max(total, pad + length)), dtype=np.float64)
    if frames:
        frames_buf = np.empty((channels, frames, n_fft), dtype=np.float32)
        envelope = np.zeros(out.shape[1], dtype=np.float64)
        spec_c = np.ascontiguousarray(arr, dtype=np.complex64)
        _istft_kernel(spec_c, win, hop, frames_buf, out, envelope)
    result = out[:, pad : pad + length].astype(np.float32)
    return result[0] if squeeze else result
