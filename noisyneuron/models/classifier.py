"""The streaming music / speech / noise / silence classifier: log-mel front end, a small CNN,
posterior smoothing with hysteresis and a level gate.

Pipeline, for mono float32 audio at the device rate (16, 44.1 or 48 kHz, any rate >= 16 kHz;
stereo is averaged to mono):

1. **Front end** (:class:`MelFrontEnd`, numba, allocation-free): causal frames of
   ``window_seconds`` (40 ms) every ``hop_seconds`` (20 ms), computed *at the input rate* with the
   window and hop scaled to the same durations (640/320 samples at 16 kHz, 1764/882 at 44.1 kHz,
   1920/960 at 48 kHz), so no resampler is needed. Frame ``j`` covers input samples
   ``[j hop + hop - n_fft, j hop + hop)`` (zeros before the start). Periodic Hann window, power
   ``|X|^2 (2 / sum w)^2`` (a full-scale sine reads 0 dB in its bin, whatever the rate), Slaney
   mel filters (:func:`noisyneuron.dsp.features.mel_filterbank`, ``n_mels`` 64, 30..7500 Hz:
   the band every supported rate and the 16 kHz training clips share), ``10 log10`` floored at
   ``floor_db`` (-100 dB). Each frame also records the mean square of its newest hop, for the
   level gate.
2. **Network** (:class:`ClassifierNet`): the last ``context_frames`` (50 = 1.0 s) log-mel
   frames, normalised by the window's own level (each value minus ``10 log10`` of the window's
   mean mel power, floored 80 dB below it, divided by 20: the network is blind to gain), four
   3x3 conv blocks (12-24-48-96 channels, batch norm, ReLU; 2x2 max-pool after the first three),
   mean over frequency, mean and max over time, then the **head**: linear 192 -> 64, ReLU,
   dropout, linear 64 -> classes. The time pooling accepts any number of frames, so the context
   length is a run-time setting.
3. **Level gate**: the RMS of the last ``gate_seconds`` (0.4 s), in dBFS; below ``silence_dbfs``
   (-58 dBFS) the decision's raw posterior is "silence" (one-hot) and the network does not run.
   The shipped model's classes are music, speech and noise; "silence" comes from the gate
   (a model trained with a silence class keeps it, and the gate feeds the same label).
4. **Smoothing and hysteresis** (:func:`smooth_and_decide`): a decision every
   ``decision_seconds`` (0.1 s). The posteriors are averaged exponentially with time constant
   ``smoothing_seconds`` (0.15 s), and the label changes only when another label's smoothed
   posterior exceeds the current one's by ``hysteresis`` (0.1): a posterior that toggles
   around 0.5 does not make the label flicker.

:class:`StreamingClassifier` runs this on blocks of any size and gives exactly (to float32
rounding of the network) what :func:`batch_decisions` gives on the whole signal. Decision ``k``
is made when input sample ``(k + 1) * decision_samples`` has arrived (its stream time).

Exported files (:func:`export_classifier`, :func:`load_classifier`) hold a float16 or float32
state dict and metadata (config, labels, gate and smoothing defaults, training steps, the
training data's manifest hash, validation accuracy, NoisyNeuron version, date); they load with
``torch.load(weights_only=True)``. A *calibration profile* (``noisyneuron classify calibrate``) is
the same format with a fine-tuned head, saved in the user's config directory
(:func:`default_profile_path`); :func:`load_classifier` prefers it to the shipped weights.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from numba import njit
from rocket_fft import r2c
from torch import nn

from noisyneuron.dsp.features import mel_filterbank
from noisyneuron.errors import UserError
from noisyneuron.models.run_folder import cast_state, noisyneuron_version, read_export, write_export

__all__ = [
    "DEFAULT_LABELS",
    "DEFAULT_STREAM",
    "SILENCE",
    "EXPORT_FORMAT",
    "SHIPPED_CLASSIFIER",
    "CLASSIFIER_WEIGHTS_ENV",
    "PROFILE_ENV",
    "ClassifierConfig",
    "ClassifierNet",
    "MelFrontEnd",
    "StreamingClassifier",
    "smooth_and_decide",
    "log_mel_frames",
    "decide_frames",
    "batch_decisions",
    "export_classifier",
    "load_classifier",
    "has_shipped_classifier",
    "user_config_dir",
    "default_profile_path",
]

#: The shipped model's classes (silence comes from the level gate).
DEFAULT_LABELS = ("music", "speech", "noise")
#: The level gate's label.
SILENCE = "silence"
#: ``format`` tag of an exported classifier (or calibration profile) file.
EXPORT_FORMAT = "noisyneuron-classifier"
#: The classifier checkpoint shipped in the package.
SHIPPED_CLASSIFIER = Path(__file__).resolve().parent / "weights" / "classifier.pt"
#: Environment variable naming exported weights to use instead of the profile / shipped ones.
CLASSIFIER_WEIGHTS_ENV = "NOISYNEURON_CLASSIFIER_WEIGHTS"
#: Environment variable naming the calibration profile (default: :func:`default_profile_path`).
PROFILE_ENV = "NOISYNEURON_CLASSIFIER_PROFILE"

#: Streaming defaults an exported file carries (``stream`` metadata) unless it says otherwise:
#: gate threshold (RMS dBFS) and window (s), smoothing time constant (s), hysteresis margin (0..1).
#: Chosen on the validation split: the gate's 0.4 s window and -58 dBFS halve the label changes
#: inside clips (pauses in quiet speech) against 0.3 s / -55 dBFS at the same median latency.
DEFAULT_STREAM = {"silence_dbfs": -58.0, "gate_seconds": 0.4, "smoothing_seconds": 0.15, "hysteresis": 0.1}

_EXPORT_LIMIT_BYTES = 5 * 1024 * 1024
_AXIS0 = np.array([0], dtype=np.int64)


# ----- configuration --------------------------------------------------------------------------
@dataclass
class ClassifierConfig:
    """Hyper-parameters of :class:`ClassifierNet` and its front end.

    Attributes:
        labels: the network's classes, in output order.
        n_mels: mel bands.
        window_seconds: analysis window, seconds (40 ms).
        hop_seconds: frame advance, seconds (20 ms); decisions come every whole number of hops.
        fmin, fmax: mel filterbank edges, Hz (fmax is capped at 0.49 of the input rate).
        context_frames: frames the network was trained on (50 = 1.0 s).
        channels: output channels of the conv blocks.
        head_hidden: width of the head's hidden layer.
        dropout: dropout before the head's last layer (training only).
        floor_db: lowest log-mel value, dB (digital silence reads this).
        relative_floor_db: the normalised input is floored this far below the window's level, dB.
    """

    labels: tuple[str, ...] = DEFAULT_LABELS
    n_mels: int = 64
    window_seconds: float = 0.04
    hop_seconds: float = 0.02
    fmin: float = 30.0
    fmax: float = 7500.0
    context_frames: int = 50
    channels: tuple[int, ...] = (12, 24, 48, 96)
    head_hidden: int = 64
    dropout: float = 0.2
    floor_db: float = -100.0
    relative_floor_db: float = -80.0

    def geometry(self, sample_rate: float) -> tuple[int, int]:
        """``(n_fft, hop)`` in samples at ``sample_rate`` Hz (the window and hop durations)."""
        hop = int(round(self.hop_seconds * sample_rate))
        n_fft = int(round(self.window_seconds * sample_rate))
        if hop < 1 or n_fft < hop:
            raise ValueError(f"sample rate {sample_rate} Hz is too low for the classifier's front end")
        return n_fft, hop

    def as_dict(self) -> dict:
        d = asdict(self)
        d["labels"], d["channels"] = list(self.labels), list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ClassifierConfig:
        d = {k: v for k, v in dict(d).items() if k in cls.__dataclass_fields__}
        for key in ("labels", "channels"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


# ----- the network ----------------------------------------------------------------------------
class ClassifierNet(nn.Module):
    """The CNN. ``forward(mel)``: ``(batch, frames, n_mels)`` log-mel in dB -> logits
    ``(batch, classes)``. :meth:`embed` is everything but the head (what calibration freezes)."""

    def __init__(self, config: ClassifierConfig | None = None):
        super().__init__()
        self.config = cfg = config or ClassifierConfig()
        layers: list[nn.Module] = []
        prev = 1
        for i, ch in enumerate(cfg.channels):
            layers += [nn.Conv2d(prev, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU()]
            if i < len(cfg.channels) - 1:
                layers.append(nn.MaxPool2d(2))
            prev = ch
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Linear(2 * prev, cfg.head_hidden), nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.head_hidden, len(cfg.labels))
        )
        self.export_meta: dict = {}
        self.source = "untrained"

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.config.labels)

    def normalise(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, T, M)`` dB -> ``(B, 1, M, T)``: minus the window's level, floored, / 20."""
        power = torch.pow(10.0, mel * 0.1).mean(dim=(1, 2), keepdim=True)
        level = 10.0 * torch.log10(power.clamp_min(1e-30))
        x = torch.clamp(mel - level, min=self.config.relative_floor_db) * (1.0 / 20.0)
        return x.transpose(1, 2).unsqueeze(1)

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, T, M)`` dB -> pooled features ``(B, 2 * channels[-1])`` (the head's input)."""
        h = self.features(self.normalise(mel))  # (B, C, F', T')
        h = h.mean(dim=2)
        return torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(mel))

    def fused(self) -> ClassifierNet:
        """A copy for inference with each batch norm folded into its convolution (eval mode)."""
        import copy

        net = copy.deepcopy(self).eval()
        mods = list(net.features)
        out: list[nn.Module] = []
        i = 0
        while i < len(mods):
            m = mods[i]
            if isinstance(m, nn.Conv2d) and i + 1 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm2d):
                bn = mods[i + 1]
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                conv = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, padding=m.padding, bias=True)
                with torch.no_grad():
                    conv.weight.copy_(m.weight * scale[:, None, None, None])
                    conv.bias.copy_(bn.bias - bn.running_mean * scale)
                out.append(conv)
                i += 2
            else:
                out.append(m)
                i += 1
        net.features = nn.Sequential(*out)
        return net.eval()


# ----- front end ------------------------------------------------------------------------------
@njit(nogil=True, cache=True)
def _front_end(x, fifo, state, window, frame, spec, power, fb, lo, hi, scale, floor_power, mel, ms, start_row, hop):
    """Push ``x`` (frames, channels) averaged to mono; analyse every completed hop.

    Frame rows go to ``mel[(start_row + k) % rows]`` and ``ms[...]``; returns frames made.
    ``state[0]`` is the FIFO fill (samples)."""
    n = x.shape[0]
    channels = x.shape[1]
    n_fft = fifo.shape[0]
    n_bins = spec.shape[0]
    n_mels = fb.shape[0]
    rows = mel.shape[0]
    inv_c = 1.0 / channels
    fill = state[0]
    made = 0
    pos = 0
    while pos < n:
        take = n_fft - fill
        if take > n - pos:
            take = n - pos
        for i in range(take):
            acc = 0.0
            for c in range(channels):
                acc += x[pos + i, c]
            fifo[fill + i] = acc * inv_c
        fill += take
        pos += take
        if fill == n_fft:
            for j in range(n_fft):
                frame[j] = window[j] * fifo[j]
            r2c(frame, spec, _AXIS0, True, 1.0, 1)
            for k in range(n_bins):
                v = spec[k]
                power[k] = (v.real * v.real + v.imag * v.imag) * scale
            row = (start_row + made) % rows
            for m in range(n_mels):
                acc = 0.0
                for k in range(lo[m], hi[m]):
                    acc += fb[m, k] * power[k]
                if acc < floor_power:
                    acc = floor_power
                mel[row, m] = 10.0 * math.log10(acc)
            e = 0.0
            for j in range(n_fft - hop, n_fft):
                e += fifo[j] * fifo[j]
            ms[row] = e / hop
            keep = n_fft - hop
            for j in range(keep):
                fifo[j] = fifo[j + hop]
            fill = keep
            made += 1
    state[0] = fill
    return made


class MelFrontEnd:
    """Causal log-mel frames at the input rate, into a ring of ``rows`` frames (see the module docstring).

    Args:
        config: the model's front-end settings.
        sample_rate: input rate, Hz.
        rows: frames the ring keeps (``mel`` float32 ``(rows, n_mels)`` dB, ``ms`` float64
            ``(rows,)`` mean square of each frame's newest hop, full scale 1.0).

    :meth:`push` allocates nothing. :attr:`count` is the number of frames made since
    :meth:`reset`; frame ``j`` is in row ``j % rows``.
    """

    def __init__(self, config: ClassifierConfig, sample_rate: float, rows: int) -> None:
        self.config = config
        self.sample_rate = float(sample_rate)
        self.n_fft, self.hop = config.geometry(sample_rate)
        n = np.arange(self.n_fft, dtype=np.float64)
        window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / self.n_fft)
        self.window = window.astype(np.float32)
        self.scale = float((2.0 / window.sum()) ** 2)
        fmax = min(config.fmax, 0.49 * self.sample_rate)
        fb = mel_filterbank(self.sample_rate, self.n_fft, config.n_mels, config.fmin, fmax)
        self.fb = np.ascontiguousarray(fb, dtype=np.float32)
        nz = fb > 0
        self.lo = np.array([int(np.argmax(r)) if r.any() else 0 for r in nz], dtype=np.int64)
        self.hi = np.array([len(r) - int(np.argmax(r[::-1])) if r.any() else 0 for r in nz], dtype=np.int64)
        self.floor_power = float(10.0 ** (config.floor_db / 10.0))
        n_bins = self.n_fft // 2 + 1
        self.fifo = np.zeros(self.n_fft, dtype=np.float32)
        self.frame = np.zeros(self.n_fft, dtype=np.float32)
        self.spec = np.zeros(n_bins, dtype=np.complex64)
        self.power = np.zeros(n_bins, dtype=np.float32)
        self.state = np.zeros(1, dtype=np.int64)
        self.rows = int(rows)
        self.mel = np.zeros((self.rows, config.n_mels), dtype=np.float32)
        self.ms = np.zeros(self.rows, dtype=np.float64)
        self.count = 0
        self.reset()

    def reset(self) -> None:
        """Back to the start of a stream (zeros before it)."""
        self.fifo[:] = 0.0
        self.state[0] = self.n_fft - self.hop
        self.mel[:] = self.config.floor_db
        self.ms[:] = 0.0
        self.count = 0

    def push(self, x: np.ndarray) -> int:
        """Feed float32 samples, ``(frames,)`` or ``(frames, channels)`` (averaged); returns the
        number of new frames (at most ``rows`` should be made per call, or older ones are overwritten)."""
        x2 = x.reshape(-1, 1) if x.ndim == 1 else x
        made = _front_end(x2, self.fifo, self.state, self.window, self.frame, self.spec, self.power, self.fb, self.lo, self.hi,
                          self.scale, self.floor_power, self.mel, self.ms, self.count % self.rows, self.hop)
        self.count += made
        return made


def log_mel_frames(x: np.ndarray, sample_rate: float, config: ClassifierConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every causal frame of a whole signal: ``(mel (frames, n_mels) dB, ms (frames,))``.

    ``frames = len(x) // hop``: the frames a stream of ``x`` completes. Same kernel as the
    streaming front end, so the values are identical.
    """
    config = config or ClassifierConfig()
    x = np.ascontiguousarray(x, dtype=np.float32)
    _, hop = config.geometry(sample_rate)
    frames = len(x) // hop
    fe = MelFrontEnd(config, sample_rate, max(frames, 1))
    fe.push(x)
    return fe.mel[:frames].copy(), fe.ms[:frames].copy()


# ----- decisions ------------------------------------------------------------------------------
@njit(nogil=True, cache=True)
def smooth_and_decide(raw, smoothed, alpha, current, margin, first):
    """One decision: ``smoothed <- (1 - alpha) smoothed + alpha raw`` (``raw`` itself when
    ``first``), then the label index: the current one unless another's smoothed posterior
    exceeds it by ``margin`` (then the largest); the largest when ``current < 0``. In place,
    allocation-free."""
    n = raw.shape[0]
    for i in range(n):
        if first:
            smoothed[i] = raw[i]
        else:
            smoothed[i] = (1.0 - alpha) * smoothed[i] + alpha * raw[i]
    best = 0
    for i in range(1, n):
        if smoothed[i] > smoothed[best]:
            best = i
    if current < 0:
        return best
    if best != current and smoothed[best] >= smoothed[current] + margin:
        return best
    return current


def _level_dbfs(mean_square: float) -> float:
    return 10.0 * math.log10(mean_square) if mean_square > 1e-12 else -120.0


class StreamingClassifier:
    """The classifier on a stream: blocks of any size in, a decision every ``decision_seconds``.

    Args:
        net: a trained :class:`ClassifierNet` (default: :func:`load_classifier`'s choice).
        sample_rate: input rate, Hz (16 kHz and up; 44.1 and 48 kHz devices run natively).
        decision_seconds: time between decisions, seconds (rounded to whole 20 ms hops; 0.1).
        context_seconds: audio each decision looks at, seconds (default: the trained 1.0 s).
        silence_dbfs: level gate threshold, RMS dBFS (None: no gate; default the model's, -58).
        gate_seconds: the gate's RMS window, seconds (default the model's, 0.4).
        smoothing_seconds: time constant of the posterior average, seconds (0: none; 0.15).
        hysteresis: how much another label's smoothed posterior must exceed the current one's
            before the label changes (0..1; 0.1).

    After each decision: :attr:`label` (str), :attr:`label_index`, :attr:`smoothed` and
    :attr:`raw` (float32 ``(len(labels),)`` posteriors), :attr:`level_dbfs` (gate window RMS),
    :attr:`gated` (the gate decided), :attr:`decisions` (count), :attr:`stream_seconds`
    (stream time of the decision). ``on_decision(self)``, when set, is called after each one
    (inside :meth:`process`). Nothing is allocated per block except torch's intermediate tensors.
    Creating one sets torch to one thread (``torch.set_num_threads(1)``): the live path's setting.
    """

    def __init__(
        self,
        net: ClassifierNet | None = None,
        sample_rate: float = 16000.0,
        decision_seconds: float = 0.1,
        context_seconds: float | None = None,
        silence_dbfs: float | None | str = "model",
        gate_seconds: float | None = None,
        smoothing_seconds: float | None = None,
        hysteresis: float | None = None,
    ) -> None:
        if net is None:
            net = load_classifier()
        defaults = net.export_meta.get("stream", {}) if net.export_meta else {}
        cfg = net.config
        self.config = cfg
        self.sample_rate = float(sample_rate)
        self.n_fft, self.hop = cfg.geometry(sample_rate)
        self.decision_frames = max(1, int(round(decision_seconds / cfg.hop_seconds)))
        ctx = cfg.context_frames if context_seconds is None else max(4, int(round(context_seconds / cfg.hop_seconds)))
        self.context_frames = ctx
        if gate_seconds is None:
            gate_seconds = float(defaults.get("gate_seconds", DEFAULT_STREAM["gate_seconds"]))
        self.gate_seconds = float(gate_seconds)
        self.gate_frames = max(1, int(round(gate_seconds / cfg.hop_seconds)))
        if silence_dbfs == "model":
            silence_dbfs = defaults.get("silence_dbfs", DEFAULT_STREAM["silence_dbfs"])
        self.silence_dbfs = None if silence_dbfs is None else float(silence_dbfs)
        smoothing = defaults.get("smoothing_seconds", DEFAULT_STREAM["smoothing_seconds"]) if smoothing_seconds is None else float(smoothing_seconds)
        self.smoothing_seconds = smoothing
        self.hysteresis = float(defaults.get("hysteresis", DEFAULT_STREAM["hysteresis"]) if hysteresis is None else hysteresis)
        self.decision_samples = self.decision_frames * self.hop
        self.decision_seconds = self.decision_samples / self.sample_rate
        self.alpha = 1.0 - math.exp(-self.decision_seconds / smoothing) if smoothing > 0 else 1.0
        model_labels = tuple(cfg.labels)
        labels = list(model_labels)
        if self.silence_dbfs is not None and SILENCE not in labels:
            labels.append(SILENCE)
        self.labels = tuple(labels)
        self.model_labels = model_labels
        self._silence_index = self.labels.index(SILENCE) if SILENCE in self.labels else -1
        self._n_model = len(model_labels)
        torch.set_num_threads(1)
        self.net = net.fused() if any(isinstance(m, nn.BatchNorm2d) for m in net.modules()) else net.eval()
        rows = max(ctx, self.gate_frames) + self.decision_frames
        self.front = MelFrontEnd(cfg, sample_rate, rows)
        self._x = np.zeros((1, ctx, cfg.n_mels), dtype=np.float32)
        self._xt = torch.from_numpy(self._x)
        self.raw = np.zeros(len(self.labels), dtype=np.float32)
        self.smoothed = np.zeros(len(self.labels), dtype=np.float32)
        self.on_decision = None
        self.reset()

    def reset(self) -> None:
        """Forget the stream: a new one starts (no allocation)."""
        self.front.reset()
        self.raw[:] = 0.0
        self.smoothed[:] = 0.0
        self.label_index = -1
        self.decisions = 0
        self.level_dbfs = -120.0
        self.gated = False
        self.stream_seconds = 0.0
        self._since = 0  # samples since the last decision

    @property
    def label(self) -> str | None:
        """The current label (None before the first decision)."""
        return self.labels[self.label_index] if self.label_index >= 0 else None

    @property
    def latency_samples(self) -> int:
        """0: the classifier only listens."""
        return 0

    def _decide(self) -> None:
        fe = self.front
        rows = fe.rows
        end = fe.count % rows  # row after the newest frame
        # the gate: RMS over the last gate_frames hops
        g = self.gate_frames
        acc = 0.0
        for i in range(g, 0, -1):
            acc += fe.ms[(end - i) % rows]
        self.level_dbfs = _level_dbfs(acc / g)
        self.raw[:] = 0.0
        if self.silence_dbfs is not None and self.level_dbfs < self.silence_dbfs:
            self.gated = True
            self.raw[self._silence_index] = 1.0
        else:
            self.gated = False
            ctx = self.context_frames
            start = (end - ctx) % rows
            first = min(ctx, rows - start)
            self._x[0, :first] = fe.mel[start : start + first]
            if first < ctx:
                self._x[0, first:] = fe.mel[: ctx - first]
            with torch.inference_mode():
                probs = torch.softmax(self.net(self._xt), dim=1)
            self.raw[: self._n_model] = probs[0].numpy()
        self.label_index = smooth_and_decide(self.raw, self.smoothed, self.alpha, self.label_index, self.hysteresis, self.decisions == 0)
        self.decisions += 1
        self.stream_seconds = self.decisions * self.decision_seconds
        if self.on_decision is not None:
            self.on_decision(self)

    def process(self, block: np.ndarray) -> int:
        """Feed float32 audio ``(frames,)`` or ``(frames, channels)``; returns the number of
        decisions made during this block (each one updates the attributes in turn)."""
        n = block.shape[0]
        pos = 0
        made = 0
        while pos < n:
            take = min(self.decision_samples - self._since, n - pos)
            self.front.push(block[pos : pos + take])
            self._since += take
            pos += take
            if self._since == self.decision_samples:
                self._since = 0
                self._decide()
                made += 1
        return made


def decide_frames(
    net: ClassifierNet,
    mel: np.ndarray,
    ms: np.ndarray,
    labels: tuple[str, ...],
    decision_frames: int = 5,
    context_frames: int = 50,
    gate_frames: int = 20,
    silence_dbfs: float | None = -58.0,
    alpha: float = 1.0 - math.exp(-0.1 / 0.15),
    hysteresis: float = 0.1,
    batch_size: int = 16,
) -> dict:
    """Every decision over precomputed frames (:func:`log_mel_frames`), the network on batches.

    ``labels``: the network's labels, plus :data:`SILENCE` last when the gate adds it. Decision
    ``i`` looks at the frames before row ``(i + 1) * decision_frames`` (floor frames before the
    start), as :class:`StreamingClassifier` does. Returns ``{"labels", "index" (decisions,),
    "smoothed" and "raw" (decisions, labels) float32, "level_dbfs", "gated"}``.
    """
    cfg = net.config
    d = len(mel) // decision_frames
    n_model = len(cfg.labels)
    silence_index = labels.index(SILENCE) if SILENCE in labels else -1
    pad = max(context_frames, gate_frames)
    mel_p = np.concatenate([np.full((pad, cfg.n_mels), cfg.floor_db, dtype=np.float32), np.asarray(mel, dtype=np.float32)])
    ms_p = np.concatenate([np.zeros(pad), np.asarray(ms, dtype=np.float64)])
    ends = (np.arange(d) + 1) * decision_frames + pad  # exclusive end rows in the padded arrays
    level = np.array([_level_dbfs(float(np.sum(ms_p[e - gate_frames : e])) / gate_frames) for e in ends]) if d else np.zeros(0)
    gated = level < silence_dbfs if silence_dbfs is not None else np.zeros(d, dtype=bool)
    raw = np.zeros((d, len(labels)), dtype=np.float32)
    if silence_index >= 0:
        raw[gated, silence_index] = 1.0
    todo = np.flatnonzero(~gated)
    was_training = net.training
    net.eval()
    with torch.inference_mode():
        for k in range(0, len(todo), batch_size):
            idx = todo[k : k + batch_size]
            windows = np.stack([mel_p[ends[i] - context_frames : ends[i]] for i in idx])
            probs = torch.softmax(net(torch.from_numpy(windows)), dim=1).numpy()
            raw[idx, :n_model] = probs
    net.train(was_training)
    smoothed = np.zeros_like(raw)
    index = np.zeros(d, dtype=np.int64)
    current = -1
    state = np.zeros(len(labels), dtype=np.float32)
    for i in range(d):
        current = smooth_and_decide(raw[i], state, alpha, current, hysteresis, i == 0)
        smoothed[i] = state
        index[i] = current
    return {"labels": tuple(labels), "index": index, "smoothed": smoothed, "raw": raw, "level_dbfs": level, "gated": gated}


def batch_decisions(
    net: ClassifierNet, x: np.ndarray, sample_rate: float, batch_size: int = 16, **stream_kwargs
) -> dict:
    """Every decision of a whole signal at once (offline): the values
    :class:`StreamingClassifier` (made with ``stream_kwargs``) gives when fed ``x`` in blocks,
    but with the network on batches of windows. ``x``: float ``(samples,)`` or ``(samples, channels)``.

    Returns :func:`decide_frames`'s dict plus ``"times"`` (stream seconds of each decision) and
    ``"decision_seconds"``.
    """
    sc = StreamingClassifier(net, sample_rate, **stream_kwargs)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float32)
    mel, ms = log_mel_frames(x, sample_rate, sc.config)
    out = decide_frames(
        sc.net, mel, ms, sc.labels, sc.decision_frames, sc.context_frames, sc.gate_frames, sc.silence_dbfs,
        sc.alpha, sc.hysteresis, batch_size,
    )
    out["times"] = (np.arange(len(out["index"])) + 1) * sc.decision_seconds
    out["decision_seconds"] = sc.decision_seconds
    return out


# ----- files: export, load, profiles -----------------------------------------------------------
def user_config_dir() -> Path:
    """NoisyNeuron's folder in the platform's user config directory: ``$XDG_CONFIG_HOME/noisyneuron``
    (default ``~/.config/noisyneuron``) on Linux, ``~/Library/Application Support/noisyneuron`` on
    macOS, ``%APPDATA%\\noisyneuron`` on Windows."""
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Roaming")
    elif sys.platform == "darwin":
        base = os.path.join(os.path.expanduser("~"), "Library", "Application Support")
    else:
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "noisyneuron"


def default_profile_path() -> Path:
    """Where ``classify calibrate`` saves the profile: ``$NOISYNEURON_CLASSIFIER_PROFILE``, else
    ``user_config_dir() / "classifier-profile.pt"``."""
    env = os.environ.get(PROFILE_ENV)
    return Path(env) if env else user_config_dir() / "classifier-profile.pt"


def has_shipped_classifier() -> bool:
    """Whether this installation carries the classifier weights."""
    return SHIPPED_CLASSIFIER.is_file()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def export_classifier(net: ClassifierNet, dest: str | os.PathLike, dtype: str = "float16", **meta) -> dict:
    """Write ``net`` as an exported classifier file (atomically); returns its metadata + ``bytes``.

    ``meta`` adds fields (e.g. ``training_steps``, ``data_manifest_hash``, ``valid``, ``stream``:
    the streaming defaults ``silence_dbfs``/``smoothing_seconds``/``hysteresis``, ``profile``).
    Raises :class:`UserError` when the file would reach 5 MB.
    """
    state = cast_state(net.state_dict(), dtype)
    info = {
        "format": EXPORT_FORMAT,
        "format_version": 1,
        "config": net.config.as_dict(),
        "labels": list(net.config.labels),
        "noisyneuron_version": noisyneuron_version(),
        "dtype": dtype,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "stream": dict(DEFAULT_STREAM),
    }
    info.update(meta)
    size = write_export(dest, info, state, _EXPORT_LIMIT_BYTES, "classifier", "train a smaller model")
    return {**info, "bytes": size}


def _read_export(path: Path) -> ClassifierNet:
    return read_export(path, EXPORT_FORMAT, "classifier", "train one with `noisyneuron train classifier`",
                       lambda config: ClassifierNet(ClassifierConfig.from_dict(config)))


def load_classifier(path: str | os.PathLike | None = None, use_profile: bool = True) -> ClassifierNet:
    """A :class:`ClassifierNet` (float32, CPU, eval mode) from an exported file.

    Without ``path``: ``$NOISYNEURON_CLASSIFIER_WEIGHTS``, else the calibration profile
    (:func:`default_profile_path`) when it exists and ``use_profile``, else the shipped weights.
    ``net.source`` says which ("shipped", "profile PATH", "file PATH"); ``net.export_meta``
    holds the metadata. One-line :class:`UserError` for a missing or foreign file.
    """
    if path is None:
        path = os.environ.get(CLASSIFIER_WEIGHTS_ENV) or None
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"{p}: no such classifier weights file")
        net = _read_export(p)
        net.source = f"profile {p}" if net.export_meta.get("profile") else f"file {p}"
        return net
    if use_profile:
        profile = default_profile_path()
        if profile.is_file():
            net = _read_export(profile)
            net.source = f"profile {profile}"
            return net
    if not SHIPPED_CLASSIFIER.is_file():
        raise UserError(
            "this build ships no classifier weights (noisyneuron/models/weights/classifier.pt); train one: "
            "noisyneuron train classifier --data DIR --export noisyneuron/models/weights/classifier.pt"
        )
    net = _read_export(SHIPPED_CLASSIFIER)
    net.source = "shipped"
    return net
