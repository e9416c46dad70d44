"""The streaming causal source separator: vocals, drums, bass and other, 22.8 ms at 44.1 kHz.

A spectral-mask network in the spirit of Open-Unmix's unidirectional mode and HS-TasNet's
latency budget:

- analysis: a causal STFT of each channel, ``n_fft`` 1008 samples (22.9 ms at 44.1 kHz), hop 504
  (half the frames of a 75 % overlap: half the compute, which matters on a 2-core CPU for
  training and live), square-root Hann windows; frame ``t`` covers the input samples ``[t*hop - n_fft + hop, t*hop + hop)``;
- network, one frame at a time: features of both channels (the ``features`` design:
  log-magnitudes of left and right; ``mid-side`` adds those of mid ``(L+R)/2`` and side
  ``(L-R)/2``, the cue a centred voice leaves; ``mid-side-phase`` adds the inter-channel phase
  coherence ``Re(L R*) / (|L| |R|)``) -> per-bin normalisation -> linear -> GRU layers (unidirectional: state carries the past, nothing looks ahead) -> linear
  -> one mask per stem, channel and bin, a softmax over the stems;
- synthesis: each stem's masked complex spectrum, inverse FFT, overlap-add.

Because the masks sum to one over the stems, **the stems always sum to the input**: all gains at
0 dB give the input back (sample for sample, up to float rounding), and "accompaniment" is
exactly "mixture minus vocals".

The algorithmic latency is ``n_fft - 1`` samples (1007 = 22.83 ms at 44.1 kHz): an output sample
is final once the last frame that overlaps it has been seen. :class:`StreamingSeparator` runs the
same model one hop at a time with carried state and gives exactly (to float rounding) what
:meth:`SeparatorNet.forward` gives on the whole signal.

Other sample rates (48 kHz devices) run natively, with no resampler and its latency: the STFT is
scaled to the same duration and bin spacing (``n_fft`` 1096, hop 548 at 48 kHz: 43.8 Hz bins,
11.4 ms hops, within 0.1 % of the trained geometry); the network sees the bins up to the trained
Nyquist (22.05 kHz) and bins above it take the mask of the highest one. Latency is then
``n_fft - 1`` at that rate (1095 samples = 22.8 ms at 48 kHz).

Shapes: waveforms ``(batch, channels, samples)`` float32; stems ``(batch, stems, channels,
samples)``. Mono input: duplicate to two channels (the model is trained with mono examples).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

__all__ = ["FEATURE_DESIGNS", "SeparatorConfig", "SeparatorNet", "StreamingSeparator", "STEMS"]

#: Stems the separator returns, in order.
STEMS = ("vocals", "drums", "bass", "other")

#: Input feature designs and the planes (one value per bin) each gives the network, in order.
FEATURE_DESIGNS: dict[str, tuple[str, ...]] = {
    "magnitudes": ("left", "right"),
    "mid-side": ("left", "right", "mid", "side"),
    "mid-side-phase": ("left", "right", "mid", "side", "coherence"),
}


@dataclass
class SeparatorConfig:
    """Hyper-parameters of :class:`SeparatorNet`.

    Attributes:
        sample_rate: Hz the model was trained at.
        n_fft: analysis window and FFT length, samples (latency ``n_fft - 1``).
        hop: frame advance, samples: ``n_fft / 2`` or ``n_fft / 4`` (square-root Hann pairs are
            COLA at both; half the frames of ``/ 4`` halve the compute, the CPU-trainable choice).
        channels: audio channels the network sees (2; mono is duplicated).
        hidden: width of the recurrent layers.
        layers: number of GRU layers.
        stems: stem names, in output order.
        features: the input design, a key of :data:`FEATURE_DESIGNS` (weights from before the
            choice existed are ``"magnitudes"``).
    """

    sample_rate: int = 44100
    n_fft: int = 1008
    hop: int = 504
    channels: int = 2
    hidden: int = 256
    layers: int = 2
    stems: tuple[str, ...] = field(default_factory=lambda: STEMS)
    features: str = "magnitudes"

    def __post_init__(self) -> None:
        if self.features not in FEATURE_DESIGNS:
            raise ValueError(f"features must be one of {', '.join(FEATURE_DESIGNS)}, not {self.features!r}")
        if self.features != "magnitudes" and self.channels != 2:
            raise ValueError(f"features {self.features!r} needs 2 channels, not {self.channels}")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def planes(self) -> int:
        """Feature values per bin and frame (2 magnitudes for stereo, up to 5)."""
        return self.channels if self.features == "magnitudes" else len(FEATURE_DESIGNS[self.features])

    @property
    def latency_samples(self) -> int:
        """Algorithmic latency at :attr:`sample_rate`, samples."""
        return self.n_fft - 1

    @property
    def overlap(self) -> int:
        """Frames overlapping each sample, ``n_fft / hop`` (2 or 4: square-root Hann is COLA)."""
        return self.n_fft // self.hop

    def geometry(self, sample_rate: float) -> tuple[int, int]:
        """``(n_fft, hop)`` in samples at ``sample_rate`` Hz: the trained window and hop
        durations, ``n_fft`` a multiple of 4 and the trained overlap (so the windows stay COLA)."""
        if int(round(sample_rate)) == self.sample_rate:
            return self.n_fft, self.hop
        n_fft = 4 * int(round(self.n_fft * sample_rate / self.sample_rate / 4.0))
        return n_fft, n_fft // self.overlap

    def as_dict(self) -> dict:
        d = asdict(self)
        d["stems"] = list(self.stems)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SeparatorConfig:
        d = dict(d)
        d["stems"] = tuple(d.get("stems", STEMS))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _sqrt_hann(n: int) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float64)
    return torch.sqrt(0.5 - 0.5 * torch.cos(2 * math.pi * k / n)).float()


class SeparatorNet(nn.Module):
    """The separator. ``forward(wave)`` on whole signals (training, offline); the per-frame
    :meth:`frame_masks` with carried state is what :class:`StreamingSeparator` steps."""

    def __init__(self, config: SeparatorConfig | None = None):
        super().__init__()
        self.config = cfg = config or SeparatorConfig()
        f, c, h, s = cfg.n_bins, cfg.channels, cfg.hidden, len(cfg.stems)
        p = cfg.planes
        self._windows: dict[int, tuple[torch.Tensor, float]] = {}
        self.input_mean = nn.Parameter(torch.zeros(p * f))
        self.input_scale = nn.Parameter(torch.ones(p * f))
        self.encode = nn.Linear(p * f, h)
        self.gru = nn.GRU(h, h, num_layers=cfg.layers, batch_first=True)
        self.decode = nn.Sequential(nn.Linear(2 * h, h), nn.GELU(), nn.Linear(h, s * c * f))

    # ----- spectra ----------------------------------------------------------------------------
    def window(self, n_fft: int) -> tuple[torch.Tensor, float]:
        """The square-root Hann window of ``n_fft`` samples and the overlap-add gain of the
        analysis * synthesis pair at the model's overlap (a constant: 1.0 at 2, 2.0 at 4)."""
        if n_fft not in self._windows:
            w = _sqrt_hann(n_fft)
            hop = n_fft // self.config.overlap
            ola = torch.zeros(2 * n_fft)
            for start in range(0, n_fft, hop):
                ola[start : start + n_fft] += w**2
            self._windows[n_fft] = (w, float(ola[n_fft]))
        return self._windows[n_fft]

    def analyse(self, wave: torch.Tensor, sample_rate: float | None = None) -> torch.Tensor:
        """Causal STFT: (B, C, T) -> (B, C, F, frames) complex.

        Frames run until the last input sample is covered by every frame that overlaps it
        (``ceil((T + n_fft - hop) / hop)`` frames), so :meth:`synthesise` reconstructs all of it.
        """
        n_fft, hop = self.config.geometry(sample_rate or self.config.sample_rate)
        window, _ = self.window(n_fft)
        b, c, t = wave.shape
        frames = -(-(t + n_fft - hop) // hop)
        pad_right = frames * hop - t
        x = nn.functional.pad(wave, (n_fft - hop, pad_right))
        x = x.unfold(-1, n_fft, hop)  # (B, C, frames, n_fft)
        spec = torch.fft.rfft(x * window, dim=-1)  # (B, C, frames, F)
        return spec.transpose(-1, -2)

    def synthesise(self, spec: torch.Tensor, length: int, sample_rate: float | None = None) -> torch.Tensor:
        """Inverse of :meth:`analyse`: (..., F, frames) complex -> (..., length) aligned with the
        input (the offline view: no delay)."""
        n_fft, hop = self.config.geometry(sample_rate or self.config.sample_rate)
        window, gain = self.window(n_fft)
        frames = spec.shape[-1]
        x = torch.fft.irfft(spec.transpose(-1, -2), n=n_fft, dim=-1) * (window / gain)
        lead = x.shape[:-2]
        total = (frames - 1) * hop + n_fft
        out = nn.functional.fold(
            x.reshape(-1, frames, n_fft).transpose(1, 2), output_size=(1, total), kernel_size=(1, n_fft), stride=(1, hop)
        ).reshape(*lead, total)
        start = n_fft - hop
        return out[..., start : start + length]

    # ----- network ----------------------------------------------------------------------------
    def raw_features(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, C, F', frames) complex -> (B, frames, P*F) features of the first F trained bins
        before normalisation (zero-padded when a lower sample rate has fewer): ``log1p`` of the
        magnitudes of each plane of the design, the coherence in [-1, 1] as it is."""
        f = self.config.n_bins
        spec = spec[:, :, :f]
        if spec.shape[2] < f:
            spec = nn.functional.pad(spec, (0, 0, 0, f - spec.shape[2]))
        planes = [torch.log1p(spec.abs())]  # (B, C, F, frames)
        design = self.config.features
        if design != "magnitudes":
            left, right = spec[:, 0], spec[:, 1]
            planes.append(torch.log1p(torch.stack([(left + right).abs(), (left - right).abs()], dim=1) * 0.5))
            if design == "mid-side-phase":
                cross = (left * right.conj()).real
                planes.append((cross / (left.abs() * right.abs() + 1e-8)).unsqueeze(1))
        x = torch.cat(planes, dim=1) if len(planes) > 1 else planes[0]
        return x.permute(0, 3, 1, 2).flatten(2)  # (B, frames, P*F)

    def features(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, C, F', frames) complex -> (B, frames, P*F) normalised features (see
        :meth:`raw_features`)."""
        return (self.raw_features(spec) - self.input_mean) * self.input_scale

    def masks(self, feats: torch.Tensor, state: torch.Tensor | None = None, n_bins: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, frames, P*F) -> masks (B, S, C, n_bins, frames) summing to 1 over S, and the GRU
        state. ``n_bins`` (default the trained F): bins past F take the mask of the last one."""
        cfg = self.config
        x = torch.tanh(self.encode(feats))
        y, state = self.gru(x, state)
        logits = self.decode(torch.cat([x, y], dim=-1))  # (B, frames, S*C*F)
        b, n, _ = logits.shape
        logits = logits.view(b, n, len(cfg.stems), cfg.channels, cfg.n_bins).permute(0, 2, 3, 4, 1)
        m = torch.softmax(logits, dim=1)
        n_bins = n_bins or cfg.n_bins
        if n_bins > cfg.n_bins:
            m = torch.cat([m, m[:, :, :, -1:].expand(-1, -1, -1, n_bins - cfg.n_bins, -1)], dim=3)
        elif n_bins < cfg.n_bins:
            m = m[:, :, :, :n_bins]
        return m, state

    def forward(self, wave: torch.Tensor, sample_rate: float | None = None) -> torch.Tensor:
        """(B, C, T) float at ``sample_rate`` Hz (default: trained rate) -> stems (B, S, C, T),
        aligned with the input; stems sum to the input."""
        spec = self.analyse(wave, sample_rate)
        m, _ = self.masks(self.features(spec), n_bins=spec.shape[2])
        return self.synthesise(m * spec.unsqueeze(1), wave.shape[-1], sample_rate)

    def separate_spectra(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, C, F, frames) complex -> per-stem spectra (B, S, C, F, frames) (training losses)."""
        m, _ = self.masks(self.features(spec), n_bins=spec.shape[2])
        return m * spec.unsqueeze(1)


class StreamingSeparator:
    """Runs a :class:`SeparatorNet` one hop at a time with carried state (like DemucsStreamer).

    ``push(samples)`` takes any number of new input samples (C, n) and returns the stems of the
    samples that became final, (S, C, m), ``m`` a multiple of ``hop``. Output sample ``i`` is
    stem output for input sample ``i - latency`` (``latency = n_fft - 1 - (hop - 1)`` here,
    since whole hops go in; a caller that feeds arbitrary blocks adds up to ``hop - 1`` of
    buffering: :attr:`latency_samples` is the total, ``n_fft - 1``). The first ``n_fft - hop``
    output samples belong to times before the signal started: the stems there sum to zero.

    Identical, to float rounding, to ``net(wave)`` delayed by ``n_fft - hop`` samples.
    """

    def __init__(self, net: SeparatorNet, sample_rate: float | None = None):
        self.net = net.eval()
        cfg = net.config
        self.sample_rate = float(sample_rate or cfg.sample_rate)
        self.n_fft, self.hop = cfg.geometry(self.sample_rate)
        self.window, self.ola_gain = net.window(self.n_fft)
        self.n_bins = self.n_fft // 2 + 1
        self.channels = cfg.channels
        self.stems = len(cfg.stems)
        self.reset()

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
        self._frame = torch.zeros(self.channels, self.n_fft)
        self._ola = torch.zeros(self.stems, self.channels, self.n_fft)
        self._pending = torch.zeros(self.channels, 0)
        self._state: torch.Tensor | None = None

    @torch.no_grad()
    def step(self, hop_samples: torch.Tensor) -> torch.Tensor:
        """One hop (C, hop) in -> one hop of stems (S, C, hop) out."""
        net, hop, n = self.net, self.hop, self.n_fft
        self._frame = torch.cat([self._frame[:, hop:], hop_samples], dim=1)
        spec = torch.fft.rfft(self._frame * self.window, dim=-1)  # (C, F)
        feats = net.features(spec.unsqueeze(0).unsqueeze(-1))  # (1, 1, C*F)
        m, self._state = net.masks(feats, self._state, self.n_bins)  # (1, S, C, F, 1)
        stems = m[0, ..., 0] * spec.unsqueeze(0)  # (S, C, F)
        frame_out = torch.fft.irfft(stems, n=n, dim=-1) * (self.window / self.ola_gain)
        self._ola += frame_out
        out = self._ola[..., :hop].clone()
        self._ola = torch.cat([self._ola[..., hop:], torch.zeros(self.stems, self.channels, hop)], dim=-1)
        return out

    @torch.no_grad()
    def push(self, samples: torch.Tensor) -> torch.Tensor:
        """Any number of samples (C, n) in; the stems of every completed hop out (S, C, k*hop)."""
        self._pending = torch.cat([self._pending, samples], dim=1)
        outs = []
        while self._pending.shape[1] >= self.hop:
            outs.append(self.step(self._pending[:, : self.hop]))
            self._pending = self._pending[:, self.hop :]
        if not outs:
            return torch.zeros(self.stems, self.channels, 0)
        return torch.cat(outs, dim=-1)
