"""The separator's live path: one fused, compiled step per hop with float16 weights.

:class:`FastStreamingSeparator` runs the same network as
:class:`~noisyneuron.models.separator.StreamingSeparator` (same STFT geometry, latency, stride
and carried GRU state) in one numba function per hop, instead of some forty torch calls:

- **float16 weights, float32 arithmetic.** The seven matrix-vector products read their weights
  once per hop, after the processing thread's sleep has left the caches cold, so they run at
  memory speed: storing the matrices as IEEE float16 (converted to float32 in registers, one
  ``vcvtph2ps`` per 16 weights) halves the bytes read. The shipped weights are float16 in their
  file, so for them the conversion is exact: the fast path computes the float path's function
  and differs only in summation order (float32 rounding). Float32-exported weights are rounded
  to float16 (relative error <= 2**-11 per weight). ``weights="float32"`` keeps them as they
  are; ``"int8"`` (symmetric, one scale per output row) reads a quarter of the bytes but is
  lossy (see ``docs/separator.md`` for the measured figures).
- **no per-hop allocation in the network.** The frame, overlap-add buffer, GRU state and every
  intermediate vector are preallocated; only the FFTs (rocket-fft) allocate their outputs.
- **the GIL is released** for the whole step (``nogil``), so other Python threads (UI, OSC) do
  not wait on it and it does not wait on them.

Any weights loaded through :func:`noisyneuron.models.pretrained.load_separator` (or any
:class:`~noisyneuron.models.separator.SeparatorNet`) work: the fast path reads the module's
parameters at construction.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

__all__ = ["FastStreamingSeparator", "WEIGHT_DTYPES"]

#: Weight storage the fast path supports.
WEIGHT_DTYPES = ("float16", "float32", "int8")


@intrinsic
def _half_to_float(typingctx, bits):
    """float16 bits (uint16) -> float32, exact (LLVM ``fpext half``: ``vcvtph2ps`` on x86)."""
    sig = types.float32(types.uint16)

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return sig, codegen


def _weight(v):  # pragma: no cover - replaced by the overload in compiled code
    raise NotImplementedError


@overload(_weight)
def _weight_overload(v):
    if v == types.uint16:
        return lambda v: _half_to_float(v)
    if v == types.int8:
        return lambda v: np.float32(v)
    return lambda v: v


@njit(fastmath={"reassoc", "contract"}, nogil=True, cache=True)
def _matvec(w, scale, bias, x, y):
    """``y = scale * (w @ x) + bias``, ``w`` (out, in) stored as float32, float16 bits or int8."""
    n_in = w.shape[1]
    for i in range(w.shape[0]):
        acc = np.float32(0.0)
        for j in range(n_in):
            acc += _weight(w[i, j]) * x[j]
        y[i] = acc * scale[i] + bias[i]


@njit(nogil=True, cache=True)
def _sigmoid(v):
    return np.float32(1.0) / (np.float32(1.0) + math.exp(-v))


@njit(nogil=True, cache=True)
def _step(x, frame, ola, state, out, window, synth, n_model_bins, planes, mean, inv_scale, mats, scales, biases, feats, enc, gi, gh, xy, dec, logits):
    """One hop: ``x`` (C, hop) in, ``out`` (S, C, hop) filled; every other array is state or
    scratch, updated in place (see :class:`FastStreamingSeparator`)."""
    channels, n_fft = frame.shape
    hop = x.shape[1]
    stems = ola.shape[0]
    hidden = state.shape[1]
    layers = state.shape[0]
    f = n_model_bins
    # frame: shift by one hop, append the new samples
    keep = n_fft - hop
    for c in range(channels):
        for i in range(keep):
            frame[c, i] = frame[c, i + hop]
        for i in range(hop):
            frame[c, keep + i] = x[c, i]
    spec = np.fft.rfft(frame * window)  # (C, n_bins) complex64
    n_bins = spec.shape[1]
    # features of the trained bins, normalised: log-magnitudes of each channel, then (planes
    # 4 and 5) of mid and side, then (plane 5) the inter-channel phase coherence
    for k in range(f):
        for c in range(channels):
            mag = np.float32(0.0)
            if k < n_bins:
                mag = abs(spec[c, k])
            idx = c * f + k
            feats[idx] = (np.float32(math.log1p(mag)) - mean[idx]) * inv_scale[idx]
        if planes > channels:
            left = np.complex64(0.0)
            right = np.complex64(0.0)
            if k < n_bins:
                left = spec[0, k]
                right = spec[1, k]
            mid = abs(left + right) * np.float32(0.5)
            side = abs(left - right) * np.float32(0.5)
            idx = 2 * f + k
            feats[idx] = (np.float32(math.log1p(mid)) - mean[idx]) * inv_scale[idx]
            idx = 3 * f + k
            feats[idx] = (np.float32(math.log1p(side)) - mean[idx]) * inv_scale[idx]
            if planes > 4:
                cross = left.real * right.real + left.imag * right.imag
                coherence = cross / (abs(left) * abs(right) + np.float32(1e-8))
                idx = 4 * f + k
                feats[idx] = (np.float32(coherence) - mean[idx]) * inv_scale[idx]
    # encoder
    _matvec(mats[0], scales[0], biases[0], feats, enc)
    for i in range(hidden):
        xy[i] = math.tanh(enc[i])
    # GRU layers (torch's gate order r, z, n)
    inp = xy[:hidden]
    for layer in range(layers):
        _matvec(mats[1 + 2 * layer], scales[1 + 2 * layer], biases[1 + 2 * layer], inp, gi)
        h = state[layer]
        _matvec(mats[2 + 2 * layer], scales[2 + 2 * layer], biases[2 + 2 * layer], h, gh)
        for i in range(hidden):
            r = _sigmoid(gi[i] + gh[i])
            z = _sigmoid(gi[hidden + i] + gh[hidden + i])
            n = np.float32(math.tanh(gi[2 * hidden + i] + r * gh[2 * hidden + i]))
            h[i] = (np.float32(1.0) - z) * n + z * h[i]
        inp = h
    for i in range(hidden):
        xy[hidden + i] = inp[i]
    # decoder: linear + exact GELU, linear to the stems' mask logits
    d = 1 + 2 * layers
    _matvec(mats[d], scales[d], biases[d], xy, dec)
    for i in range(dec.shape[0]):
        v = dec[i]
        dec[i] = np.float32(0.5) * v * (np.float32(1.0) + np.float32(math.erf(v * np.float32(0.7071067811865476))))
    _matvec(mats[d + 1], scales[d + 1], biases[d + 1], dec, logits)
    # softmax over the stems, in place: logits[(s * C + c) * F + k]
    cf = channels * f
    for j in range(cf):
        top = logits[j]
        for s in range(1, stems):
            top = max(top, logits[s * cf + j])
        total = np.float32(0.0)
        for s in range(stems):
            e = np.float32(math.exp(logits[s * cf + j] - top))
            logits[s * cf + j] = e
            total += e
        inv = np.float32(1.0) / total
        for s in range(stems):
            logits[s * cf + j] *= inv
    # masked spectra (bins past the trained ones take the last trained bin's mask), synthesis
    masked = np.empty((stems, channels, n_bins), dtype=np.complex64)
    for s in range(stems):
        for c in range(channels):
            base = (s * channels + c) * f
            for k in range(n_bins):
                masked[s, c, k] = logits[base + min(k, f - 1)] * spec[c, k]
    frames = np.fft.irfft(masked, n_fft)  # (S, C, n_fft) float32
    for s in range(stems):
        for c in range(channels):
            for i in range(n_fft):
                ola[s, c, i] += frames[s, c, i] * synth[i]
            for i in range(hop):
                out[s, c, i] = ola[s, c, i]
            for i in range(n_fft - hop):
                ola[s, c, i] = ola[s, c, i + hop]
            for i in range(n_fft - hop, n_fft):
                ola[s, c, i] = 0.0


def _store(w: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """A float32 matrix as stored for :func:`_matvec`: ``(weights, per-row scale)``."""
    ones = np.ones(w.shape[0], dtype=np.float32)
    if dtype == "float32":
        return np.ascontiguousarray(w, dtype=np.float32), ones
    if dtype == "float16":
        return np.ascontiguousarray(w.astype(np.float16).view(np.uint16)), ones
    if dtype == "int8":
        peak = np.abs(w).max(axis=1)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.round(w / scale[:, None]), -127, 127).astype(np.int8)
        return np.ascontiguousarray(q), scale
    raise ValueError(f"weights must be one of {', '.join(WEIGHT_DTYPES)}, not {dtype!r}")


class FastStreamingSeparator:
    """:class:`~noisyneuron.models.separator.StreamingSeparator`'s interface and results, one
    compiled step per hop (see the module docstring).

    Args:
        net: a :class:`~noisyneuron.models.separator.SeparatorNet` (its parameters are copied).
        sample_rate: Hz of the audio (default: the model's); the STFT scales as in the float path.
        weights: matrix storage, one of :data:`WEIGHT_DTYPES` (default float16: exact for
            float16-exported weights).

    :meth:`step` returns a view of a buffer the next step overwrites; :meth:`push` returns copies.
    """

    def __init__(self, net, sample_rate: float | None = None, weights: str = "float16"):
        import torch

        cfg = net.config
        if weights not in WEIGHT_DTYPES:
            raise ValueError(f"weights must be one of {', '.join(WEIGHT_DTYPES)}, not {weights!r}")
        self.weights = weights
        self.sample_rate = float(sample_rate or cfg.sample_rate)
        self.n_fft, self.hop = cfg.geometry(self.sample_rate)
        window, gain = net.window(self.n_fft)
        self.n_bins = self.n_fft // 2 + 1
        self.channels = cfg.channels
        self.stems = len(cfg.stems)
        self._model_bins = cfg.n_bins
        self._window = window.numpy().astype(np.float32)
        self._synth = (window / gain).numpy().astype(np.float32)

        def f32(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().to(torch.float32).cpu().numpy())

        self._mean = f32(net.input_mean)
        self._inv_scale = f32(net.input_scale)
        linear = [(net.encode.weight, net.encode.bias)]
        for layer in range(cfg.layers):
            linear.append((getattr(net.gru, f"weight_ih_l{layer}"), getattr(net.gru, f"bias_ih_l{layer}")))
            linear.append((getattr(net.gru, f"weight_hh_l{layer}"), getattr(net.gru, f"bias_hh_l{layer}")))
        linear += [(net.decode[0].weight, net.decode[0].bias), (net.decode[2].weight, net.decode[2].bias)]
        stored = [_store(f32(w), weights) for w, _ in linear]
        self._mats = tuple(m for m, _ in stored)
        self._scales = tuple(s for _, s in stored)
        self._biases = tuple(f32(b) for _, b in linear)
        h, f, c, s = cfg.hidden, cfg.n_bins, cfg.channels, self.stems
        self._planes = cfg.planes
        self._feats = np.zeros(cfg.planes * f, dtype=np.float32)
        self._enc = np.zeros(h, dtype=np.float32)
        self._gi = np.zeros(3 * h, dtype=np.float32)
        self._gh = np.zeros(3 * h, dtype=np.float32)
        self._xy = np.zeros(2 * h, dtype=np.float32)
        self._dec = np.zeros(h, dtype=np.float32)
        self._logits = np.zeros(s * c * f, dtype=np.float32)
        self._frame = np.zeros((c, self.n_fft), dtype=np.float32)
        self._ola = np.zeros((s, c, self.n_fft), dtype=np.float32)
        self._state = np.zeros((cfg.layers, h), dtype=np.float32)
        self._out = np.zeros((s, c, self.hop), dtype=np.float32)
        self._pending = np.zeros((c, 0), dtype=np.float32)
        self.step(np.zeros((c, self.hop), dtype=np.float32))  # compile (or load the cache) now
        self.reset()

    @property
    def nbytes(self) -> int:
        """Bytes of matrices read per hop."""
        return int(sum(m.nbytes for m in self._mats))

    @property
    def latency_samples(self) -> int:
        """Algorithmic latency with arbitrary input blocks, samples (``n_fft - 1``)."""
        return self.n_fft - 1

    @property
    def stride(self) -> int:
        """Samples consumed per step (one hop)."""
        return self.hop

    def reset(self) -> None:
        """Forget the past: silence before the next sample."""
        self._frame[:] = 0.0
        self._ola[:] = 0.0
        self._state[:] = 0.0
        self._pending = np.zeros((self.channels, 0), dtype=np.float32)

    def step(self, hop_samples) -> np.ndarray:
        """One hop (C, hop) in (numpy or torch, float32) -> one hop of stems (S, C, hop) out, in
        a buffer the next call overwrites."""
        x = hop_samples.numpy() if hasattr(hop_samples, "numpy") else hop_samples
        if x.dtype != np.float32 or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype=np.float32)
        _step(x, self._frame, self._ola, self._state, self._out, self._window, self._synth, self._model_bins, self._planes,
              self._mean, self._inv_scale, self._mats, self._scales, self._biases, self._feats, self._enc,
              self._gi, self._gh, self._xy, self._dec, self._logits)
        return self._out

    def push(self, samples) -> np.ndarray:
        """Any number of samples (C, n) in; the stems of every completed hop out (S, C, k*hop)."""
        x = samples.numpy() if hasattr(samples, "numpy") else np.asarray(samples, dtype=np.float32)
        self._pending = np.concatenate([self._pending, x.astype(np.float32, copy=False)], axis=1)
        outs = []
        while self._pending.shape[1] >= self.hop:
            outs.append(self.step(self._pending[:, : self.hop]).copy())
            self._pending = self._pending[:, self.hop :]
        if not outs:
            return np.zeros((self.stems, self.channels, 0), dtype=np.float32)
        return np.concatenate(outs, axis=-1)
