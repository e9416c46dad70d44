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
3. **Gate** (over the last ``gate_seconds``, 0.4 s): silence when the RMS is below
   ``silence_dbfs`` (-58 dBFS) while fewer than :data:`GATE_ACTIVE_FRAMES` (3) of the window's
   20 ms frames stand ``activity_db`` (10 dB) above the input's own floor in some band. The
   floor is measured on the input itself, per group of mel bands (:data:`GATE_GROUPS`, 8: its
   spectrum), as the lowest 60 ms mean power inside the window: a steady noise floor (white,
   pink, hum; -90..-60 dBFS) and digital zero are silence, a quiet talker (-40 dBFS peak:
   syllables 20-30 dB over the pauses) is not. At or above ``silence_dbfs`` nothing is silence.
   The comparison uses the log-mel bands, which stop at ``floor_db`` (-100 dB, where a -75 dBFS
   white noise lies): sound quieter than that cannot stand out (a talker below about -50 dBFS
   peak is silence). On silence the decision's raw posterior is "silence" (one-hot) and the
   network does not run. The shipped model's classes are music, speech and noise; "silence"
   comes from the gate (a model trained with a silence class keeps it, and the gate feeds the
   same label).
   **Onsets**: the network judges real audio only, never the zeros before the stream or the
   silence before a sound. After a reset or a silence, the real audio starts at the first frame
   of the decision that is real sound (it stands out from the floor, or its hop reaches
   ``silence_dbfs``); while less than ``onset_seconds`` (0.06 s) of it has arrived the
   decision is *held* (the label kept; "silence" at the very start), and until there is a full
   context of it the window is that real audio repeated back to back. The window ends on the
   decision's last frame of real sound, so the quiet after a sound that stops is not judged
   either; a decision whose own frames are all quiet (the sound stopped; the gate window still
   holds it) is held.
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
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from numba import njit
from rocket_fft import r2c
from torch import nn

from noisyneuron import paths
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
#: the gate's level threshold (RMS dBFS: at or above it the input is never silence) and window
#: (s), the gate's activity margin (dB above the input's own floor that makes a quieter window
#: sound, not silence), the real audio the first decision after start or silence waits for (s),
#: the smoothing time constant (s) and the hysteresis margin (0..1). A file that lacks a key
#: gets the value here.
#: Chosen on the validation split: the gate's 0.4 s window and -58 dBFS halve the label changes
#: inside clips (pauses in quiet speech) against 0.3 s / -55 dBFS at the same median latency.
DEFAULT_STREAM = {
    "silence_dbfs": -58.0,
    "gate_seconds": 0.4,
    "activity_db": 10.0,
    "onset_seconds": 0.06,
    "smoothing_seconds": 0.15,
    "hysteresis": 0.1,
}
#: Bands of the gate's floor comparison (the mel bands summed in this many equal groups; fewer
#: when the model has fewer mel bands).
GATE_GROUPS = 8
#: Frames (20 ms each) of a gate window that must stand ``activity_db`` above the floor.
GATE_ACTIVE_FRAMES = 3

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


@njit(nogil=True, cache=True)
def _gate_measure(mel, ms, count, lead, gate_frames, act_ratio, thr_power, power, floor, flags):
    """The gate's measurements for the decision made when ``count`` frames exist (no allocation).

    ``mel`` (rows, n_mels) dB and ``ms`` (rows,) are a ring: frame ``j`` is row ``j % rows``
    (the whole signal is a ring with ``rows`` = its frames); frames ``j < 0`` read as digital
    silence and frames ``j < lead`` (those still holding the zeros before the stream) are never
    real audio. ``power`` (gate_frames + 2, groups) and ``floor`` (groups,) are scratch.

    The **floor** of each group of mel bands (``power.shape[1]`` equal groups, power summed) is
    the lowest 3-frame (60 ms) mean of the group's power over the gate window: the input's own
    floor and its spectrum. A frame **stands out** when any group's power reaches
    ``act_ratio`` times its floor.

    Returns ``(mean square of the window's hops (full scale 1.0), frames of the window that stand
    out)``. ``flags[k]`` (``k < len(flags)``, the newest ``len(flags)`` frames in order) is 1 when
    frame ``count - len(flags) + k`` is real sound: it stands out, or its newest hop's mean square
    reaches ``thr_power``.
    """
    rows = mel.shape[0]
    n_mels = mel.shape[1]
    groups = power.shape[1]
    g = gate_frames
    acc = 0.0
    for j in range(count - g, count):
        if j >= 0:
            acc += ms[j % rows]
    first = count - g - 2
    for i in range(g + 2):
        j = first + i
        for q in range(groups):
            power[i, q] = 0.0
        if j >= lead:
            r = j % rows
            for q in range(groups):
                e = 0.0
                for m in range(q * n_mels // groups, (q + 1) * n_mels // groups):
                    e += 10.0 ** (0.1 * mel[r, m])
                power[i, q] = e
    for q in range(groups):
        floor[q] = -1.0
    for i in range(2, g + 2):
        if first + i < lead:
            continue
        for q in range(groups):
            e = 0.0
            n = 0
            for d in range(3):
                if first + i - d >= lead:
                    e += power[i - d, q]
                    n += 1
            e /= n
            if floor[q] < 0.0 or e < floor[q]:
                floor[q] = e
    active = 0
    newest = flags.shape[0]
    for k in range(newest):
        flags[k] = 0
    for i in range(2, g + 2):
        j = first + i
        if j < lead:
            continue
        loud = False
        for q in range(groups):
            if power[i, q] >= act_ratio * floor[q]:
                loud = True
                break
        if loud:
            active += 1
        k = j - (count - newest)
        if k >= 0 and (loud or ms[j % rows] >= thr_power):
            flags[k] = 1
    for k in range(newest - g):  # decisions longer than the gate window: level only there
        j = count - newest + k
        if j >= lead and ms[j % rows] >= thr_power:
            flags[k] = 1
    return acc / g, active


@njit(nogil=True, cache=True)
def _fill_window(mel, count, real, out):
    """``out`` (ctx, n_mels) <- the window the network judges when ``count`` frames exist (ring
    as in :func:`_gate_measure`): the newest ``ctx`` frames when ``real >= ctx``, else the newest
    ``real`` frames (the real audio since the onset) repeated back to back to fill it, ending on
    the newest frame. No allocation."""
    rows = mel.shape[0]
    ctx = out.shape[0]
    for k in range(ctx):
        back = ctx - k  # 1: the newest frame
        if real < ctx:
            back = (back - 1) % real + 1
        r = (count - back) % rows
        for m in range(out.shape[1]):
            out[k, m] = mel[r, m]


@njit(nogil=True, cache=True)
def _next_real(real, is_open, flags, context_frames):
    """Frames of real audio up to the newest one: 0 when gated (silence); after it (or a reset)
    counting from the first frame of the decision that is real sound; then growing by the
    decision's frames (kept below ``context_frames`` plus a decision: enough for any window)."""
    if not is_open:
        return 0
    n = flags.shape[0]
    if real == 0:
        for k in range(n):
            if flags[k]:
                return n - k
        return 0
    return min(context_frames + n, real + n)


@njit(nogil=True, cache=True)
def _trailing_quiet(flags):
    """Frames at the end of the decision after its last real-sound frame (all of them: none is)."""
    n = flags.shape[0]
    for k in range(n - 1, -1, -1):
        if flags[k]:
            return n - 1 - k
    return n


class StreamingClassifier:
    """The classifier on a stream: blocks of any size in, a decision every ``decision_seconds``.

    Args:
        net: a trained :class:`ClassifierNet` (default: :func:`load_classifier`'s choice).
        sample_rate: input rate, Hz (16 kHz and up; 44.1 and 48 kHz devices run natively).
        decision_seconds: time between decisions, seconds (rounded to whole 20 ms hops; 0.1).
        context_seconds: audio each decision looks at, seconds (default: the trained 1.0 s).
        silence_dbfs: the gate's level threshold, RMS dBFS over the gate window: at or above it
            the input is never silence (None: no gate; default the model's, -58).
        gate_seconds: the gate's window, seconds (default the model's, 0.4).
        activity_db: below ``silence_dbfs``, a window is sound, not silence, when at least
            :data:`GATE_ACTIVE_FRAMES` of its 20 ms frames stand this many dB above the input's own
            floor in some band (default the model's, 10 dB; None: the level alone decides).
        onset_seconds: after the start or a silence, the network judges only real audio: it
            waits until this much has arrived since the onset (seconds; default 0.06), holding
            the label meanwhile ("silence" at the start).
        smoothing_seconds: time constant of the posterior average, seconds (0: none; 0.15).
        hysteresis: how much another label's smoothed posterior must exceed the current one's
            before the label changes (0..1; 0.1).

    **The gate** (each decision, over the last ``gate_seconds``): silence when the RMS is below
    ``silence_dbfs`` with fewer than :data:`GATE_ACTIVE_FRAMES` frames standing ``activity_db``
    above the floor; else sound. The floor is the input's own:
    per group of mel bands (:data:`GATE_GROUPS`), the lowest 60 ms mean power inside the window,
    so a steady noise floor at any level below the threshold (white, pink, hum: -90..-60 dBFS)
    and digital zero are silence, while a quiet talker (syllables 20-30 dB over the pauses, at
    -40 dBFS peak) is sound. A steady floor's frames stand at most ~6 dB above that floor.

    **Onsets**: the network never judges audio from before the start or from a silence. After a
    reset or a gated decision, the real audio starts at the first frame of the decision that is
    real sound (it stands out, or its hop reaches ``silence_dbfs``); until ``onset_seconds`` of it
    have arrived the decision is *held*; after that, until there is ``context_seconds`` of it,
    the window is the real audio repeated back to back. The window ends on the decision's last
    frame of real sound; a decision whose own frames are all quiet (the sound just stopped; the
    gate is still open) is held.

    After each decision: :attr:`label` (str), :attr:`label_index`, :attr:`smoothed` and
    :attr:`raw` (float32 ``(len(labels),)`` posteriors), :attr:`level_dbfs` (gate window RMS),
    :attr:`gated` (the gate decided silence), :attr:`held` (the network did not run and the
    label was kept: ``raw`` is the previous ``smoothed``, or silence at the start),
    :attr:`decisions` (count), :attr:`stream_seconds` (stream time of the decision).
    ``on_decision(self)``, when set, is called after each one (inside :meth:`process`). Nothing
    is allocated per block except torch's intermediate tensors. Creating one sets torch to one
    thread (``torch.set_num_threads(1)``): the live path's setting.
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
        activity_db: float | None | str = "model",
        onset_seconds: float | None = None,
    ) -> None:
        if net is None:
            net = load_classifier()
        defaults = net.export_meta.get("stream", {}) if net.export_meta else {}

        def default(key):
            return float(defaults.get(key, DEFAULT_STREAM[key]))

        cfg = net.config
        self.config = cfg
        self.sample_rate = float(sample_rate)
        self.n_fft, self.hop = cfg.geometry(sample_rate)
        self.lead_frames = -(-(self.n_fft - self.hop) // self.hop)  # frames that still hold zeros from before the start
        self.decision_frames = max(1, int(round(decision_seconds / cfg.hop_seconds)))
        ctx = cfg.context_frames if context_seconds is None else max(4, int(round(context_seconds / cfg.hop_seconds)))
        self.context_frames = ctx
        if gate_seconds is None:
            gate_seconds = default("gate_seconds")
        self.gate_seconds = float(gate_seconds)
        self.gate_frames = max(1, int(round(gate_seconds / cfg.hop_seconds)))
        if silence_dbfs == "model":
            silence_dbfs = default("silence_dbfs")
        self.silence_dbfs = None if silence_dbfs is None else float(silence_dbfs)
        if activity_db == "model":
            activity_db = default("activity_db")
        self.activity_db = None if activity_db is None else float(activity_db)
        onset = default("onset_seconds") if onset_seconds is None else float(onset_seconds)
        self.onset_frames = max(1, int(round(onset / cfg.hop_seconds)))
        smoothing = default("smoothing_seconds") if smoothing_seconds is None else float(smoothing_seconds)
        self.smoothing_seconds = smoothing
        self.hysteresis = default("hysteresis") if hysteresis is None else float(hysteresis)
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
        rows = max(ctx, self.gate_frames + 2) + self.decision_frames
        self.front = MelFrontEnd(cfg, sample_rate, rows)
        self._x = np.zeros((1, ctx, cfg.n_mels), dtype=np.float32)
        self._xt = torch.from_numpy(self._x)
        groups = min(GATE_GROUPS, cfg.n_mels)
        self._power = np.zeros((self.gate_frames + 2, groups), dtype=np.float64)
        self._floor = np.zeros(groups, dtype=np.float64)
        self._flags = np.zeros(self.decision_frames, dtype=np.int64)
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
        self.held = False
        self.stream_seconds = 0.0
        self._since = 0  # samples since the last decision
        self._real = 0  # frames of real audio since the onset (capped at the context)

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
        count = fe.count
        thr = 0.0 if self.silence_dbfs is None else 10.0 ** (0.1 * self.silence_dbfs)
        act = math.inf if self.activity_db is None else 10.0 ** (0.1 * self.activity_db)
        mean_sq, active = _gate_measure(fe.mel, fe.ms, count, self.lead_frames, self.gate_frames, act, thr,
                                        self._power, self._floor, self._flags)
        self.level_dbfs = _level_dbfs(mean_sq)
        is_open = _gate_open(self.level_dbfs, active, self.silence_dbfs)
        self._real = _next_real(self._real, is_open, self._flags, self.context_frames)
        self.gated = not is_open
        self.held = is_open and _hold(self._real, self._flags, self.onset_frames, self.label_index, self._silence_index)
        first = self.decisions == 0
        if self.gated or (self.held and self.label_index < 0):  # silence; nothing yet without a silence label
            if self._silence_index >= 0:
                self.raw[:] = 0.0
                self.raw[self._silence_index] = 1.0
            else:
                self.raw[:] = 1.0 / len(self.raw)
        elif self.held:
            self.raw[:] = self.smoothed
        else:  # the window ends on the decision's last frame of real sound
            trail = _trailing_quiet(self._flags)
            _fill_window(fe.mel, count - trail, self._real - trail, self._x[0])
            with torch.inference_mode():
                probs = torch.softmax(self.net(self._xt), dim=1)
            self.raw[:] = 0.0
            self.raw[: self._n_model] = probs[0].numpy()
        self.label_index = smooth_and_decide(self.raw, self.smoothed, self.alpha, self.label_index, self.hysteresis, first)
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


def _gate_open(level_dbfs: float, active: int, silence_dbfs: float | None) -> bool:
    """The gate: sound (True) or silence, from the window's RMS (dBFS) and its frames that stand
    out from the floor (see :class:`StreamingClassifier`)."""
    return silence_dbfs is None or level_dbfs >= silence_dbfs or active >= GATE_ACTIVE_FRAMES


@njit(nogil=True, cache=True)
def _hold(real, flags, onset_frames, label_index, silence_index):
    """An open decision that does not run the network: less than ``onset_frames`` of real audio
    since the onset, or none of the decision's own frames is real sound (it just stopped). Without a
    silence label there is nothing to hold at the start: the network judges what real audio there is."""
    if label_index < 0 and silence_index < 0:
        return real == 0
    if real < onset_frames:
        return True
    for k in range(flags.shape[0]):
        if flags[k]:
            return False
    return True


def decide_frames(
    net: ClassifierNet,
    mel: np.ndarray,
    ms: np.ndarray,
    labels: tuple[str, ...],
    decision_frames: int = 5,
    context_frames: int = 50,
    gate_frames: int = 20,
    silence_dbfs: float | None = DEFAULT_STREAM["silence_dbfs"],
    alpha: float = 1.0 - math.exp(-0.1 / 0.15),
    hysteresis: float = 0.1,
    batch_size: int = 16,
    activity_db: float | None = DEFAULT_STREAM["activity_db"],
    onset_frames: int = 3,
    lead_frames: int = 1,
) -> dict:
    """Every decision over precomputed frames (:func:`log_mel_frames`), the network on batches.

    ``labels``: the network's labels, plus :data:`SILENCE` last when the gate adds it. Decision
    ``i`` is made when frame ``(i + 1) * decision_frames - 1`` is the newest, with the gate,
    onsets and holds of :class:`StreamingClassifier` (``lead_frames``: frames at the start that
    hold zeros from before it, 1 at the front end's geometry). Returns ``{"labels", "index"
    (decisions,), "smoothed" and "raw" (decisions, labels) float32, "level_dbfs", "gated",
    "held"}``.
    """
    cfg = net.config
    mel = np.ascontiguousarray(mel, dtype=np.float32)
    ms = np.ascontiguousarray(ms, dtype=np.float64)
    d = len(mel) // decision_frames
    n_model = len(cfg.labels)
    silence_index = labels.index(SILENCE) if SILENCE in labels else -1
    thr = 0.0 if silence_dbfs is None else 10.0 ** (0.1 * silence_dbfs)
    act = math.inf if activity_db is None else 10.0 ** (0.1 * activity_db)
    groups = min(GATE_GROUPS, cfg.n_mels)
    power = np.zeros((gate_frames + 2, groups))
    floor = np.zeros(groups)
    flags = np.zeros(decision_frames, dtype=np.int64)
    level = np.zeros(d)
    gated = np.zeros(d, dtype=bool)
    held = np.zeros(d, dtype=bool)
    real_at = np.zeros(d, dtype=np.int64)
    trail_at = np.zeros(d, dtype=np.int64)
    real = 0
    had_label = False  # a decision before this one set a label (a held start says silence)
    start_hold = np.zeros(d, dtype=bool)
    for i in range(d):
        count = (i + 1) * decision_frames
        mean_sq, active = _gate_measure(mel, ms, count, lead_frames, gate_frames, act, thr, power, floor, flags)
        level[i] = _level_dbfs(mean_sq)
        is_open = _gate_open(level[i], active, silence_dbfs)
        real = _next_real(real, is_open, flags, context_frames)
        gated[i] = not is_open
        held[i] = is_open and _hold(real, flags, onset_frames, 0 if had_label else -1, silence_index)
        start_hold[i] = held[i] and not had_label
        real_at[i] = real
        trail_at[i] = _trailing_quiet(flags)
        had_label = True
    raw = np.zeros((d, len(labels)), dtype=np.float32)
    if silence_index >= 0:
        raw[gated | start_hold, silence_index] = 1.0
    else:
        raw[start_hold] = 1.0 / len(labels)
    todo = np.flatnonzero(~gated & ~held)
    was_training = net.training
    net.eval()
    windows = np.zeros((batch_size, context_frames, cfg.n_mels), dtype=np.float32)
    with torch.inference_mode():
        for k in range(0, len(todo), batch_size):
            idx = todo[k : k + batch_size]
            for b, i in enumerate(idx):
                _fill_window(mel, (i + 1) * decision_frames - int(trail_at[i]), int(real_at[i] - trail_at[i]), windows[b])
            probs = torch.softmax(net(torch.from_numpy(windows[: len(idx)])), dim=1).numpy()
            raw[idx, :n_model] = probs
    net.train(was_training)
    smoothed = np.zeros_like(raw)
    index = np.zeros(d, dtype=np.int64)
    current = -1
    state = np.zeros(len(labels), dtype=np.float32)
    for i in range(d):
        if held[i] and not start_hold[i]:
            raw[i] = state
        current = smooth_and_decide(raw[i], state, alpha, current, hysteresis, i == 0)
        smoothed[i] = state
        index[i] = current
    return {"labels": tuple(labels), "index": index, "smoothed": smoothed, "raw": raw, "level_dbfs": level, "gated": gated, "held": held}


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
        sc.alpha, sc.hysteresis, batch_size, sc.activity_db, sc.onset_frames, sc.lead_frames,
    )
    out["times"] = (np.arange(len(out["index"])) + 1) * sc.decision_seconds
    out["decision_seconds"] = sc.decision_seconds
    return out


# ----- files: export, load, profiles -----------------------------------------------------------
def default_profile_path() -> Path:
    """Where ``classify calibrate`` saves the profile: ``$NOISYNEURON_CLASSIFIER_PROFILE``, else
    ``classifier-profile.pt`` in NoisyNeuron's config folder (:func:`noisyneuron.paths.config_dir`,
    beside the config file)."""
    env = os.environ.get(PROFILE_ENV)
    return Path(env) if env else paths.config_dir() / "classifier-profile.pt"


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
