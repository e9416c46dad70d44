"""Offline separation of whole signals with :class:`~noisyneuron.models.separator.SeparatorNet`,
chunk by chunk so that long files fit in memory.

:func:`separate_array` gives, to float rounding, exactly what ``net(whole_signal)`` gives, but it
never holds more than one chunk of spectra: the causal STFT, the network (with its GRU state
carried from chunk to chunk) and the inverse STFT run on ``chunk_seconds`` of frames at a time,
and the overlap-add tail of each chunk (``n_fft - hop`` samples) is carried into the next. The
memory it needs is the input, the returned stems, and one chunk's spectra (about 0.5 GB for the
default 30 s chunk at 44.1 kHz, 4 stems, 2 channels, as complex64 plus the network activations).

Channels (the network sees two):

- stereo: separated as is;
- mono: copied to both channels for the network; each returned stem is the mean of its two
  channels, so it is mono again and the stems still sum to the input;
- more than two channels: the first two are separated; the remaining channels are put, unchanged,
  into ``"other"`` (the other stems are silent there), so the stems still sum to the input.
  Downmix such files first to separate every channel.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = ["separate_array", "as_frames_channels"]


def _padded_segment(wave: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """``wave[..., start:stop]`` with zeros wherever the range lies outside ``wave`` (samples)."""
    t = wave.shape[-1]
    lo, hi = max(start, 0), min(stop, t)
    seg = wave[..., lo:hi] if hi > lo else wave[..., :0]
    left = lo - start
    right = stop - start - left - seg.shape[-1]
    if left or right:
        seg = nn.functional.pad(seg, (left, right))
    return seg


def as_frames_channels(audio: np.ndarray) -> tuple[np.ndarray, bool]:
    """``audio`` as float32 (frames, channels), and whether it was 1-D (mono without an axis)."""
    x = np.asarray(audio, dtype=np.float32)
    one_d = x.ndim == 1
    if one_d:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"audio must be (frames, channels), got shape {np.shape(audio)}")
    return x, one_d


def separate_array(
    net,
    audio: np.ndarray,
    sample_rate: float,
    progress: bool = False,
    chunk_seconds: float = 30.0,
) -> dict[str, np.ndarray]:
    """Separate a whole signal into the net's stems, chunk by chunk.

    Args:
        net: a :class:`~noisyneuron.models.separator.SeparatorNet` (two-channel; its mode is not
            changed: it has no dropout or normalisation statistics, so train/eval do not matter).
        audio: float ``(frames, channels)`` samples (a 1-D ``(frames,)`` array is taken as mono
            and the stems are returned 1-D).
        sample_rate: Hz; any rate runs natively (the STFT is scaled to the trained durations,
            see :meth:`SeparatorConfig.geometry`), 44.1 and 48 kHz are the intended ones.
        progress: show a tqdm bar over the chunks (on stderr).
        chunk_seconds: audio per chunk, in seconds (rounded to whole STFT hops, at least one).
            Only memory and speed depend on it, not the result.

    Returns:
        ``{stem: float32 (frames, channels)}`` for each of ``net.config.stems``, in that order,
        aligned sample for sample with ``audio`` (no delay); the stems sum to ``audio``. Equal,
        to float rounding (~1e-6), to ``net(audio.T[None], sample_rate)``.

    Torch's thread count is left to the caller; runs under :func:`torch.inference_mode`.
    """
    cfg = net.config
    stems = tuple(cfg.stems)
    x, one_d = as_frames_channels(audio)
    if not (math.isfinite(sample_rate) and sample_rate > 0):
        raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    if not chunk_seconds > 0:
        raise ValueError(f"chunk_seconds must be > 0, got {chunk_seconds}")
    frames, channels = x.shape
    net_channels = cfg.channels
    out = {name: np.zeros((frames, channels), dtype=np.float32) for name in stems}

    if frames:
        # The network's channels: mono duplicated, extra channels left out (added to "other").
        if channels == 1:
            net_in = np.repeat(x, net_channels, axis=1)
        else:
            net_in = x[:, :net_channels]
            if net_in.shape[1] < net_channels:
                raise ValueError(f"the net needs {net_channels} channels, got {channels}")
        wave = torch.from_numpy(np.ascontiguousarray(net_in.T))[None]  # (1, C, T)
        result = np.zeros((len(stems), frames, net_channels), dtype=np.float32)
        with torch.inference_mode():
            _run_chunks(net, wave, sample_rate, chunk_seconds, progress, result)
        for i, name in enumerate(stems):
            if channels == 1:
                out[name][:, 0] = result[i].mean(axis=1)
            else:
                out[name][:, :net_channels] = result[i]
        if channels > net_channels:
            if "other" not in out:
                raise ValueError(f"audio has {channels} channels and the net has no 'other' stem to put the extra ones in")
            out["other"][:, net_channels:] = x[:, net_channels:]

    if one_d:
        return {name: a[:, 0] for name, a in out.items()}
    return out


def _run_chunks(net, wave: torch.Tensor, sample_rate: float, chunk_seconds: float, progress: bool, result: np.ndarray) -> None:
    """The chunked forward pass: ``wave`` (1, C, T) -> ``result`` (S, T, C), written in place.

    Frame ``t`` of the causal STFT covers padded samples ``[t*hop, t*hop + n_fft)`` where the
    padded signal has ``lead = n_fft - hop`` zeros before sample 0 (see ``SeparatorNet.analyse``);
    the output of ``synthesise`` is the overlap-add from padded sample ``lead`` on. After the
    frames ``[a, b)`` every padded sample below ``b*hop`` is final; the ``lead`` samples after it
    are carried into the next chunk.
    """
    n_fft, hop = net.config.geometry(sample_rate)
    window, gain = net.window(n_fft)
    synth_window = window / gain
    lead = n_fft - hop
    total = wave.shape[-1]
    n_frames = -(-(total + n_fft - hop) // hop)
    per_chunk = max(1, int(round(chunk_seconds * sample_rate / hop)))
    n_stems = result.shape[0]
    channels = wave.shape[1]
    n_bins = n_fft // 2 + 1

    starts = range(0, n_frames, per_chunk)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, total=len(starts), unit="chunk", desc="separating", leave=False)

    state = None
    carry = torch.zeros(n_stems, channels, lead)
    for a in starts:
        b = min(a + per_chunk, n_frames)
        k = b - a
        seg = _padded_segment(wave, a * hop - lead, (b - 1) * hop + n_fft - lead)  # (1, C, L)
        spec = torch.fft.rfft(seg.unfold(-1, n_fft, hop) * window, dim=-1).transpose(-1, -2)  # (1, C, F, k)
        masks, state = net.masks(net.features(spec), state, n_bins)  # (1, S, C, F, k)
        y = masks * spec.unsqueeze(1)
        del masks, spec
        x = torch.fft.irfft(y.transpose(-1, -2), n=n_fft, dim=-1) * synth_window  # (1, S, C, k, n_fft)
        del y
        length = (k - 1) * hop + n_fft
        ola = nn.functional.fold(
            x.reshape(-1, k, n_fft).transpose(1, 2), output_size=(1, length), kernel_size=(1, n_fft), stride=(1, hop)
        ).reshape(n_stems, channels, length)
        del x
        ola[..., :lead] += carry
        carry = ola[..., k * hop :].clone()
        # Padded samples [a*hop, b*hop) are final: they are output samples [a*hop - lead, b*hop - lead).
        lo, hi = a * hop - lead, min(b * hop - lead, total)
        skip = max(0, -lo)
        if hi > lo + skip:
            result[:, lo + skip : hi, :] = ola[..., skip : hi - lo].permute(0, 2, 1).numpy()
