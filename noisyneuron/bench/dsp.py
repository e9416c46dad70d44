"""DSP benchmark: STFT -> centre mask -> inverse STFT on the demo song, numba vs numpy vs torch.

Every path runs in the same process on the same input (the demo mix, stereo), pinned to one
thread (numba kernels are single-threaded, numpy's pocketfft is, torch gets
``torch.set_num_threads(1)``), and is timed as the best of ``repeats`` runs after a warm-up.
Speeds are reported as multiples of real time (seconds of audio per second of CPU) and as
ratios to the numba batch path, because absolute timings drift by up to 2x between runs on the
shared development machines.

Paths:

- ``numba batch``: :func:`noisyneuron.dsp.stft.stft` -> :func:`noisyneuron.dsp.centre.centre_cut_lr`
  -> :func:`noisyneuron.dsp.stft.istft` (batched real FFTs inside numba).
- ``numpy batch``: ``np.fft.rfft`` over a strided view of all frames, the same mask in
  vectorised numpy, ``np.fft.irfft``, overlap-add.
- ``torch batch``: ``torch.stft`` / ``torch.istft`` with the same mask in torch ops.
- ``karaoke stream N``: the real product path, :class:`CentreCutKaraoke.process` on blocks of
  ``N`` frames (one numba call per block; the processor's own latency-compensated STFT).
- ``karaoke chain 256``: the same processor inside a :class:`~noisyneuron.realtime.chain.Chain`
  (NaN guards, bypass and dry delay lines), as the engine runs it.
- ``generic stream 512``: :class:`~noisyneuron.dsp.stft.StreamingStft` with
  :func:`~noisyneuron.dsp.centre.centre_cut` as ``frame_fn`` (for comparison).

The batch paths use centred frames (``n_fft // 2`` zeros of padding at both ends), a sqrt-Hann
window for analysis and synthesis, and the processor's default mask settings (width 60 %,
120 Hz .. 12 kHz, centre removed).
"""

from __future__ import annotations

import time

import numpy as np

from noisyneuron.demo import make_demo_mix
from noisyneuron.dsp.centre import centre_cut, centre_cut_lr, centre_threshold
from noisyneuron.dsp.stft import StreamingStft, istft, make_window, stft
from noisyneuron.realtime.chain import Chain
from noisyneuron.realtime.processors.centre_cut import CentreCutKaraoke

__all__ = ["run_dsp_bench", "format_table", "TARGET_X_REALTIME"]

#: Goal for the karaoke chain on one core (44.1 kHz stereo, n_fft 2048, hop 512).
TARGET_X_REALTIME = 500.0

_WIDTH = 0.6
_GAIN = 0.0
_LOW_HZ = 120.0
_HIGH_HZ = 12000.0


def _timed(fn):
    """Wrap a batch path: returns ``(elapsed seconds, output)``."""

    def run():
        start = time.perf_counter()
        out = fn()
        return time.perf_counter() - start, out

    return run


def _best_of(run, repeats: int) -> tuple[float, object]:
    _, result = run()  # warm-up: compilation, caches, FFT plans
    best = float("inf")
    for _ in range(repeats):
        elapsed, result = run()
        best = min(best, elapsed)
    return best, result


def _numba_batch(x_ct: np.ndarray, sample_rate: float, n_fft: int, hop: int) -> np.ndarray:
    spec = stft(x_ct, n_fft, hop, "sqrt_hann", center=True)
    centre_cut_lr(spec[0], spec[1], _WIDTH, _GAIN, sample_rate, n_fft, _LOW_HZ, _HIGH_HZ)
    return istft(spec, n_fft, hop, "sqrt_hann", length=x_ct.shape[1], center=True)


def _numpy_mask(left, right, sample_rate: float, n_fft: int):
    """The centre mask of dsp.centre in vectorised numpy (same formulas)."""
    c_w, inv_span = centre_threshold(_WIDTH)
    energy = left.real**2 + left.imag**2 + right.real**2 + right.imag**2 + np.float32(1e-30)
    c = 2.0 * (left.real * right.real + left.imag * right.imag) / energy
    t = np.clip((c - np.float32(c_w)) * np.float32(inv_span), 0.0, 1.0)
    k = np.arange(left.shape[-1], dtype=np.float32)
    lo, hi = _LOW_HZ * n_fft / sample_rate, _HIGH_HZ * n_fft / sample_rate
    band = np.clip(np.minimum((k - lo) * 0.5 + 1.0, (hi - k) * 0.5 + 1.0), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t) * band).astype(np.float32)


def _numpy_batch(x_ct: np.ndarray, sample_rate: float, n_fft: int, hop: int) -> np.ndarray:
    channels, length = x_ct.shape
    pad = n_fft // 2
    frames = 1 + length // hop
    padded = np.zeros((channels, (frames - 1) * hop + n_fft), dtype=np.float32)
    padded[:, pad : pad + length] = x_ct
    window = make_window("sqrt_hann", n_fft)
    framed = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[:, ::hop][:, :frames]
    spec = np.fft.rfft(framed * window, axis=-1)
    mask = _numpy_mask(spec[0], spec[1], sample_rate, n_fft)
    centre = (0.5 * (1.0 - _GAIN)) * mask * (spec[0] + spec[1])
    spec[0] -= centre
    spec[1] -= centre
    time_frames = np.fft.irfft(spec, n=n_fft, axis=-1).astype(np.float32) * window
    out = np.zeros((channels, (frames - 1) * hop + n_fft), dtype=np.float32)
    envelope = np.zeros(out.shape[1], dtype=np.float32)
    if n_fft % hop == 0:  # overlap-add in n_fft / hop vectorised steps
        parts = n_fft // hop
        segments = time_frames.reshape(channels, frames, parts, hop)
        acc = np.zeros((channels, frames + parts - 1, hop), dtype=np.float32)
        env = np.zeros((frames + parts - 1, hop), dtype=np.float32)
        wsq = (window * window).reshape(parts, hop)
        for q in range(parts):
            acc[:, q : q + frames] += segments[:, :, q]
            env[q : q + frames] += wsq[q]
        out[:] = acc.reshape(channels, -1)[:, : out.shape[1]]
        envelope[:] = env.reshape(-1)[: out.shape[1]]
    else:
        for f in range(frames):
            out[:, f * hop : f * hop + n_fft] += time_frames[:, f]
            envelope[f * hop : f * hop + n_fft] += window * window
    result = out[:, pad : pad + length]
    env = envelope[pad : pad + length]
    return np.where(env > 1e-10, result / np.maximum(env, 1e-10), 0.0).astype(np.float32)


def _torch_batch(torch, x_t, window_t, sample_rate: float, n_fft: int, hop: int, length: int):
    spec = torch.stft(
        x_t, n_fft, hop, window=window_t, center=True, pad_mode="constant", return_complex=True
    )  # (channels, n_bins, frames)
    left, right = spec[0], spec[1]
    c_w, inv_span = centre_threshold(_WIDTH)
    energy = left.real**2 + left.imag**2 + right.real**2 + right.imag**2 + 1e-30
    c = 2.0 * (left.real * right.real + left.imag * right.imag) / energy
    t = torch.clamp((c - c_w) * inv_span, 0.0, 1.0)
    k = torch.arange(left.shape[0], dtype=torch.float32)[:, None]
    lo, hi = _LOW_HZ * n_fft / sample_rate, _HIGH_HZ * n_fft / sample_rate
    band = torch.clamp(torch.minimum((k - lo) * 0.5 + 1.0, (hi - k) * 0.5 + 1.0), 0.0, 1.0)
    mask = t * t * (3.0 - 2.0 * t) * band
    centre = (0.5 * (1.0 - _GAIN)) * mask * (left + right)
    spec = torch.stack((left - centre, right - centre))
    return torch.istft(spec, n_fft, hop, window=window_t, center=True, length=length)


def _stream_karaoke(mix: np.ndarray, sample_rate: float, n_fft: int, hop: int, block: int,
                    in_chain: bool = False):
    """The karaoke processor streaming in blocks of ``block`` frames; with ``in_chain``, inside a
    :class:`~noisyneuron.realtime.chain.Chain` (NaN guards, bypass and dry blends): what the
    engine runs. Times only the block loop (prepare and the input copy are outside)."""
    proc = CentreCutKaraoke(n_fft=n_fft, hop=hop)
    proc.width.set(_WIDTH * 100.0)
    proc.low_cut.set(_LOW_HZ)
    proc.high_cut.set(_HIGH_HZ)
    runner = Chain([proc], name="karaoke") if in_chain else proc
    runner.prepare(sample_rate, block, mix.shape[1])
    y = mix.copy()
    process = runner.process
    start_time = time.perf_counter()
    for start in range(0, y.shape[0], block):
        process(y[start : start + block])
    return time.perf_counter() - start_time, y


def _stream_generic(mix: np.ndarray, sample_rate: float, n_fft: int, hop: int, block: int):
    """Times only the block loop (construction and the input copy are outside)."""
    engine = StreamingStft(n_fft, hop, mix.shape[1], block, "sqrt_hann")

    def frame_fn(spectra):
        centre_cut(spectra, _WIDTH, _GAIN, sample_rate, n_fft, _LOW_HZ, _HIGH_HZ)

    y = mix.copy()
    start_time = time.perf_counter()
    for start in range(0, y.shape[0], block):
        engine.process(y[start : start + block], frame_fn)
    return time.perf_counter() - start_time, y


def run_dsp_bench(
    seconds: float = 10.0,
    sample_rate: int = 44100,
    n_fft: int = 2048,
    hop: int = 512,
    repeats: int = 3,
) -> dict:
    """Time every path on ``seconds`` of the demo mix; see the module docstring.

    Returns:
        ``{"config": {...}, "paths": {name: {"seconds": best time (s), "x_realtime": audio
        seconds per CPU second, "vs_numba": x_realtime / numba batch x_realtime}},
        "max_abs_diff_vs_numba": {"numpy batch": float, "torch batch": float},
        "target_x_realtime": 500.0, "karaoke_meets_target": bool (the processor, both block sizes),
        "chain_meets_target": bool (inside a Chain, 256-frame blocks),
        "numba_fastest_batch": bool}``.
    """
    import torch

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        mix = make_demo_mix(sample_rate, seconds)["mix"]
        audio_seconds = mix.shape[0] / sample_rate
        x_ct = np.ascontiguousarray(mix.T)
        x_t = torch.from_numpy(x_ct.copy())
        window_t = torch.from_numpy(make_window("sqrt_hann", n_fft))
        sr = float(sample_rate)
        runs = {
            "numba batch": _timed(lambda: _numba_batch(x_ct, sr, n_fft, hop)),
            "numpy batch": _timed(lambda: _numpy_batch(x_ct, sr, n_fft, hop)),
            "torch batch": _timed(lambda: _torch_batch(torch, x_t, window_t, sr, n_fft, hop, x_ct.shape[1])),
            "karaoke stream 256": lambda: _stream_karaoke(mix, sr, n_fft, hop, 256),
            "karaoke stream 512": lambda: _stream_karaoke(mix, sr, n_fft, hop, 512),
            "karaoke chain 256": lambda: _stream_karaoke(mix, sr, n_fft, hop, 256, in_chain=True),
            "generic stream 512": lambda: _stream_generic(mix, sr, n_fft, hop, 512),
        }
        times, outputs = {}, {}
        with torch.inference_mode():
            for name, fn in runs.items():
                times[name], outputs[name] = _best_of(fn, repeats)
        reference = outputs["numba batch"]
        diffs = {
            "numpy batch": float(np.max(np.abs(outputs["numpy batch"] - reference))),
            "torch batch": float(np.max(np.abs(outputs["torch batch"].numpy() - reference))),
            "generic stream 512 vs karaoke stream 512": float(
                np.max(np.abs(outputs["generic stream 512"] - outputs["karaoke stream 512"]))
            ),
        }
    finally:
        torch.set_num_threads(previous_threads)
    numba_xrt = audio_seconds / times["numba batch"]
    paths = {
        name: {
            "seconds": t,
            "x_realtime": audio_seconds / t,
            "vs_numba": (audio_seconds / t) / numba_xrt,
        }
        for name, t in times.items()
    }
    return {
        "config": {
            "audio_seconds": audio_seconds,
            "sample_rate": sample_rate,
            "channels": 2,
            "n_fft": n_fft,
            "hop": hop,
            "repeats": repeats,
            "threads": 1,
        },
        "paths": paths,
        "max_abs_diff_vs_numba": diffs,
        "target_x_realtime": TARGET_X_REALTIME,
        "karaoke_meets_target": all(
            paths[name]["x_realtime"] >= TARGET_X_REALTIME for name in ("karaoke stream 256", "karaoke stream 512")
        ),
        "chain_meets_target": paths["karaoke chain 256"]["x_realtime"] >= TARGET_X_REALTIME,
        "numba_fastest_batch": numba_xrt > max(paths["numpy batch"]["x_realtime"], paths["torch batch"]["x_realtime"]),
    }


def format_table(result: dict) -> str:
    """A plain-text table of :func:`run_dsp_bench`'s result."""
    cfg = result["config"]
    lines = [
        f"STFT -> centre mask -> iSTFT, {cfg['audio_seconds']:.1f} s stereo at {cfg['sample_rate']} Hz, "
        f"n_fft {cfg['n_fft']}, hop {cfg['hop']}, 1 thread, best of {cfg['repeats']}",
        f"{'path':<22}{'time (ms)':>11}{'x real time':>13}{'vs numba':>10}",
    ]
    for name, row in result["paths"].items():
        lines.append(f"{name:<22}{row['seconds'] * 1e3:>11.1f}{row['x_realtime']:>13.0f}{row['vs_numba']:>10.2f}")
    diffs = ", ".join(f"{k} {v:.1e}" for k, v in result["max_abs_diff_vs_numba"].items())
    lines.append(f"max |difference| (full scale 1): {diffs}")
    yes = lambda flag: "yes" if flag else "NO"  # noqa: E731
    lines.append(
        f"karaoke processor >= {result['target_x_realtime']:.0f}x real time: {yes(result['karaoke_meets_target'])}; "
        f"in a Chain: {yes(result['chain_meets_target'])}; "
        f"numba batch fastest batch path: {yes(result['numba_fastest_batch'])}"
    )
    return "\n".join(lines)
