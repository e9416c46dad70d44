"""Offline separation with :class:`~noisyneuron.models.separator.SeparatorNet`, chunk by chunk,
so that memory does not grow with the length of the audio.

:class:`ChunkedSeparation` takes the signal in pieces of any length (``push``) and returns the
stems of every sample that is final so far; :func:`separate_array` runs it over a whole array.
Either gives, to float rounding, exactly what ``net(whole_signal)`` gives, whatever the pieces:
the causal STFT, the network (with its GRU state carried from chunk to chunk) and the inverse
STFT run on at most ``chunk_seconds`` of frames at a time, and the overlap-add tail of each
chunk (``n_fft - hop`` samples) is carried into the next. Working memory is one chunk's spectra
(about 0.17 GB for a 10 s chunk at 44.1 kHz, 4 stems, 2 channels, as complex64 plus the
network activations) and the unfinished ``n_fft`` samples: ``noisyneuron separate`` streams files
through it from disk to disk.

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

__all__ = ["ChunkedSeparation", "separate_array", "as_frames_channels"]


def as_frames_channels(audio: np.ndarray) -> tuple[np.ndarray, bool]:
    """``audio`` as float32 (frames, channels), and whether it was 1-D (mono without an axis)."""
    x = np.asarray(audio, dtype=np.float32)
    one_d = x.ndim == 1
    if one_d:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"audio must be (frames, channels), got shape {np.shape(audio)}")
    return x, one_d


class ChunkedSeparation:
    """Separate a signal given in pieces: ``push`` samples in, the stems of the final samples out.

    Output lags input by up to ``n_fft`` samples (the frames not yet complete); :meth:`finish`
    returns the rest, so that the outputs of all calls together are exactly as long as the
    input, sample-aligned with it (no delay), and sum to it.

    Channels follow :mod:`this module's <noisyneuron.models.apply>` rule: mono is copied to the
    network's two channels and each stem is the mean of its two; channels past the network's
    are delayed to line up and go, unchanged, into ``"other"``.

    Args:
        net: a :class:`~noisyneuron.models.separator.SeparatorNet`.
        sample_rate: Hz (any rate runs natively; see :func:`separate_array`).
        channels: channels of the pushed audio (1 or more).
        chunk_seconds: at most this much audio goes through the network at once, in seconds
            (rounded to whole hops, at least one): only memory and speed depend on it.

    Torch's thread count is left to the caller; each call runs under :func:`torch.inference_mode`.
    """

    def __init__(self, net, sample_rate: float, channels: int, chunk_seconds: float = 10.0) -> None:
        if not (math.isfinite(sample_rate) and sample_rate > 0):
            raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
        if not chunk_seconds > 0:
            raise ValueError(f"chunk_seconds must be > 0, got {chunk_seconds}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.net = net
        cfg = net.config
        self.stems = tuple(cfg.stems)
        self.channels = int(channels)
        self.net_channels = cfg.channels
        if self.channels > self.net_channels and "other" not in self.stems:
            raise ValueError(f"audio has {channels} channels and the net has no 'other' stem to put the extra ones in")
        if 1 < self.channels < self.net_channels:
            raise ValueError(f"the net needs {self.net_channels} channels, got {channels}")
        self.n_fft, self.hop = cfg.geometry(sample_rate)
        window, gain = net.window(self.n_fft)
        self._window, self._synth = window, window / gain
        self._lead = self.n_fft - self.hop
        self._per_chunk = max(1, int(round(chunk_seconds * sample_rate / self.hop)))
        self._n_bins = self.n_fft // 2 + 1
        self._state = None
        self._carry = torch.zeros(len(self.stems), self.net_channels, self._lead)
        # padded input not yet consumed by a frame: starts with the causal STFT's lead zeros
        self._buf = torch.zeros(self.net_channels, self._lead)
        self._skip = self._lead  # the first lead output samples precede sample 0
        self._extra = np.zeros((0, max(0, self.channels - self.net_channels)), dtype=np.float32)
        self.frames_in = 0
        self.frames_out = 0
        self._finished = False

    @property
    def chunk_samples(self) -> int:
        """Input samples that make one chunk of frames: pushing pieces of this size keeps every
        network call at most ``chunk_seconds`` long."""
        return self._per_chunk * self.hop

    def push(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """Samples ``(frames, channels)`` in; ``{stem: (k, channels)}`` out for the next ``k``
        final samples (``k`` may be 0)."""
        if self._finished:
            raise RuntimeError("push after finish")
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise ValueError(f"audio must be (frames, {self.channels}), got shape {x.shape}")
        self.frames_in += len(x)
        return self._run(x, limit=None)

    def finish(self) -> dict[str, np.ndarray]:
        """The stems of the remaining samples (up to ``n_fft``); the stream ends here."""
        if self._finished:
            raise RuntimeError("finish called twice")
        self._finished = True
        tail = np.zeros((self.n_fft, self.channels), dtype=np.float32)  # completes every frame
        return self._run(tail, limit=self.frames_in - self.frames_out)

    def _run(self, x: np.ndarray, limit: int | None) -> dict[str, np.ndarray]:
        if self.channels == 1:
            net_in = np.repeat(x, self.net_channels, axis=1)
        else:
            net_in = x[:, : self.net_channels]
        if self._extra.shape[1]:
            self._extra = np.concatenate([self._extra, x[:, self.net_channels :]])
        self._buf = torch.cat([self._buf, torch.from_numpy(np.ascontiguousarray(net_in.T))], dim=1)
        pieces = []
        with torch.inference_mode():
            while (k := min(self._per_chunk, (self._buf.shape[1] - self.n_fft) // self.hop + 1)) > 0:
                pieces.append(self._frames(k))
        if pieces:
            y = np.concatenate(pieces, axis=1)  # (S, k, net channels)
        else:
            y = np.zeros((len(self.stems), 0, self.net_channels), dtype=np.float32)
        if limit is not None:
            y = y[:, :limit]
        self.frames_out += y.shape[1]
        out = {}
        for i, name in enumerate(self.stems):
            stem = np.zeros((y.shape[1], self.channels), dtype=np.float32)
            if self.channels == 1:
                stem[:, 0] = y[i].mean(axis=1)
            else:
                stem[:, : self.net_channels] = y[i]
            out[name] = stem
        if self._extra.shape[1]:
            n = y.shape[1]
            out["other"][:, self.net_channels :] = self._extra[:n]
            self._extra = self._extra[n:]
        return out

    def _frames(self, k: int) -> np.ndarray:
        """Run the next ``k`` complete frames; the final samples they give, (S, n, C) float32.

        Frame ``t`` covers padded samples ``[t*hop, t*hop + n_fft)``; after it, padded samples
        below ``(t+1)*hop`` are final, and the ``lead`` after them are carried."""
        n_fft, hop, lead = self.n_fft, self.hop, self._lead
        seg = self._buf[:, : (k - 1) * hop + n_fft][None]  # (1, C, L)
        spec = torch.fft.rfft(seg.unfold(-1, n_fft, hop) * self._window, dim=-1).transpose(-1, -2)  # (1, C, F, k)
        masks, self._state = self.net.masks(self.net.features(spec), self._state, self._n_bins)  # (1, S, C, F, k)
        y = masks * spec.unsqueeze(1)
        del masks, spec
        frames = torch.fft.irfft(y.transpose(-1, -2), n=n_fft, dim=-1) * self._synth  # (1, S, C, k, n_fft)
        del y
        length = (k - 1) * hop + n_fft
        stems, channels = len(self.stems), self.net_channels
        ola = nn.functional.fold(
            frames.reshape(-1, k, n_fft).transpose(1, 2), output_size=(1, length), kernel_size=(1, n_fft), stride=(1, hop)
        ).reshape(stems, channels, length)
        del frames
        ola[..., :lead] += self._carry
        self._carry = ola[..., k * hop :].clone()
        self._buf = self._buf[:, k * hop :]
        final = ola[..., : k * hop]
        if self._skip:
            skip = min(self._skip, final.shape[-1])
            final = final[..., skip:]
            self._skip -= skip
        return final.permute(0, 2, 1).numpy().copy()


def separate_array(
    net,
    audio: np.ndarray,
    sample_rate: float,
    progress: bool = False,
    chunk_seconds: float = 10.0,
) -> dict[str, np.ndarray]:
    """Separate a whole signal into the net's stems, chunk by chunk (:class:`ChunkedSeparation`).

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

    Torch's thread count is left to the caller.
    """
    x, one_d = as_frames_channels(audio)
    run = ChunkedSeparation(net, sample_rate, x.shape[1], chunk_seconds)
    step = run.chunk_samples
    starts = range(0, len(x), step)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, total=len(starts), unit="chunk", desc="separating", leave=False)
    parts = [run.push(x[a : a + step]) for a in starts]
    parts.append(run.finish())
    out = {name: np.concatenate([p[name] for p in parts]) for name in run.stems}
    if one_d:
        return {name: a[:, 0] for name, a in out.items()}
    return out
