"""Evaluation of streaming music / speech / noise / silence classifiers on a built data set.

A **classifier system** is any object with:

- ``name`` (str), ``classes`` (tuple of labels: a subset of :data:`CLASSES` in any order, plus
  at most one catch-all label that is not in :data:`CLASSES`, e.g. ``("speech", "not speech")``),
- ``sample_rate`` (Hz; clips are resampled to it), ``hop`` (samples per decision),
- ``reset()`` (forget all state: a new stream starts),
- ``process(block)`` taking mono float32 audio of any length and returning the labels decided
  for each hop *completed* by this block (a list, possibly empty), in order.

Decision ``k`` of a stream is timed at the end of its hop, ``(k + 1) * hop / sample_rate``
seconds: the moment the audio it may depend on has arrived.

Systems are made by factories in :data:`CLASSIFIER_SYSTEMS` (register more with
:func:`register_classifier`); a factory raises :class:`SystemUnavailable` (one line, what to
install) when its system cannot run here, and the report then skips it.

Metrics (:func:`evaluate_classifiers`):

- **clip level**: each clip alone from ``reset()``, fed in 512-sample blocks; its label is the
  majority of the decisions timed after its first 0.5 s (ties: the earlier class in
  ``classes``). A clip's true label maps onto the system's classes (a label the system does not
  have becomes its catch-all). Accuracy, per-class precision / recall / F1, macro F1, and a
  confusion matrix (rows: the 4 true labels; columns: the system's classes).
- **speech vs rest**, for every system: speech decided vs speech true (accuracy, F1 of speech).
- **decision latency**: the split's clips, shuffled with a fixed seed, are concatenated into
  one stream and fed in 512-sample blocks. At each change of the (mapped) true label, at time
  ``T``, the latency is ``t - T`` for the first decision time ``t >= T`` whose decision equals the
  new label and every decision in ``[t, t + 0.5 s)`` does too, before the next change; changes
  where that never happens are "unsettled" (their fraction is reported). Mean and median in
  seconds.
- **real-time factor**: processing seconds per audio second over the clip-level pass (lower is
  faster; 0.01 = 100x faster than real time), one thread.
- **by origin**: the clip-level metrics again for the clips of **real recordings** (every source
  recorded: music, voices, effects; in a test split built by the classification builder these come
  from packages and speakers training never heard, whole) and for the **synthetic** clips (a
  generator or TTS voice in them; silence), each with the packages or generators it holds. The
  real-recording figure is the one that counts; the whole split's is reported beside it.
- **split leaks**: :func:`~noisyneuron.datasets.disjoint.classification_leaks` over the
  evaluated set (and a training set, if given): any package, speaker or source in two splits is
  listed in the report and on stderr.

Writes ``classifier.md``, ``classifier.json`` and ``confusion-<system>.png`` into the output
folder.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from noisyneuron.audio.atomic import atomic_write_text
from noisyneuron.audio.resampling import resample
from noisyneuron.errors import UserError
from noisyneuron.datasets.layout import CLASSES, CLASSIFICATION_RATE, classification_clips

__all__ = [
    "ClassifierSystem",
    "SystemUnavailable",
    "CLASSIFIER_SYSTEMS",
    "register_classifier",
    "make_system",
    "OurClassifier",
    "EnergyBaseline",
    "SileroVad",
    "prf",
    "decision_latencies",
    "evaluate_classifiers",
    "add_cli_arguments",
    "cli_main",
    "BLOCK",
    "SETTLE_SECONDS",
    "CLIP_SKIP_SECONDS",
]

#: Samples per block fed to a system.
BLOCK = 512
#: How long a decision must stay right to count as settled, seconds.
SETTLE_SECONDS = 0.5
#: Decisions this early in a clip are ignored for its clip-level label, seconds.
CLIP_SKIP_SECONDS = 0.5
#: Seed of the stream order for the latency measurement.
STREAM_SEED = 1234


class ClassifierSystem(Protocol):
    """What :func:`evaluate_classifiers` needs of a streaming classifier (see the module docstring)."""

    name: str
    classes: tuple[str, ...]
    sample_rate: int
    hop: int

    def reset(self) -> None: ...

    def process(self, block: np.ndarray) -> list[str]: ...


class SystemUnavailable(Exception):
    """A system that cannot run here; the message says, in one line, what to install."""


#: name -> factory (no arguments) returning a fresh system; see :func:`register_classifier`.
CLASSIFIER_SYSTEMS: dict[str, Callable[[], ClassifierSystem]] = {}


def register_classifier(name: str, factory: Callable[[], ClassifierSystem]) -> None:
    """Make ``factory()`` available as system ``name`` (replacing one of that name)."""
    CLASSIFIER_SYSTEMS[name] = factory


def make_system(name: str) -> ClassifierSystem:
    """A fresh system ``name``; ``UserError`` if unknown, :class:`SystemUnavailable` if it cannot run."""
    if name not in CLASSIFIER_SYSTEMS:
        raise UserError(f"unknown classifier system {name!r}; known: {', '.join(CLASSIFIER_SYSTEMS)}")
    return CLASSIFIER_SYSTEMS[name]()


class _HopStream:
    """Cuts an incoming stream into hops and keeps the last ``frame`` samples for analysis."""

    def __init__(self, hop: int, frame: int) -> None:
        self.hop, self.frame = hop, frame
        self.reset_stream()

    def reset_stream(self) -> None:
        self._history = np.zeros(self.frame, dtype=np.float64)
        self._pending = np.zeros(0, dtype=np.float64)

    def hops(self, block: np.ndarray):
        """Yield the analysis frame (last ``frame`` samples) at each completed hop."""
        data = np.concatenate([self._pending, np.asarray(block, dtype=np.float64).reshape(-1)])
        k = 0
        while len(data) - k >= self.hop:
            self._history = np.concatenate([self._history[self.hop :], data[k : k + self.hop]])
            k += self.hop
            yield self._history
        self._pending = data[k:]


# ----- energy baseline ------------------------------------------------------------------------
class EnergyBaseline:
    """A simple, honest DSP baseline for the 4 classes (16 kHz, a decision every 512 samples = 32 ms).

    Per hop, on the last 1024 samples (Hann window): the level (dBFS RMS of the hop), spectral
    flatness over 150-6000 Hz, harmonicity (peak of the normalised, window-unbiased
    autocorrelation at 2-20 ms lags, i.e. a 50-500 Hz pitch) and the power in 24 log-spaced
    bands (80-7000 Hz). Over the last second (32 hops):

    - **silence**: the last 0.25 s averages below -55 dBFS RMS;
    - **speech**: syllable-rate level dips (more than 15 % of hops 15 dB below the loudest),
      a wide level spread (> 6 dB) and pitched hops that come and go (mostly-voiced is not
      required, whispers and consonants count);
    - **noise**: a stationary spectrum (band levels averaged over 8 hops change by less than
      1.8 dB from one quarter second to the next: hiss, hum, fan, rain, drones), or broadband
      and unpitched (flatness > 0.3, harmonicity < 0.45);
    - **music**: the rest (a changing, mostly pitched spectrum without speech's dips).

    Thresholds were set by hand from feature distributions (on the fixture and a small built
    training split), not trained; it is the floor a learned model must clear.
    """

    name = "energy-baseline"
    classes = CLASSES
    sample_rate = CLASSIFICATION_RATE
    hop = 512

    SILENCE_DBFS = -55.0
    WINDOW_HOPS = 32
    N_FFT = 1024

    def __init__(self) -> None:
        n = self.N_FFT
        self._stream = _HopStream(self.hop, n)
        self._window = np.hanning(n + 1)[:-1]
        freqs = np.fft.rfftfreq(n, 1.0 / self.sample_rate)
        self._flat_band = (freqs >= 150) & (freqs <= 6000)
        edges = np.geomspace(80, 7000, 25)
        self._band_index = np.digitize(freqs, edges) - 1  # bin -> band (-1 / 24: outside)
        self._band_ok = (self._band_index >= 0) & (self._band_index < 24)
        self._lag_lo, self._lag_hi = int(self.sample_rate / 500), int(self.sample_rate / 50)
        # autocorrelation of the window, to unbias the frame's autocorrelation
        w_ac = np.fft.irfft(np.abs(np.fft.rfft(self._window, 2 * n)) ** 2)[:n]
        self._w_ac = w_ac / w_ac[0]
        self.reset()

    def reset(self) -> None:
        self._stream.reset_stream()
        self._scalars: list[tuple[float, float, float]] = []
        self._bands: list[np.ndarray] = []

    def _features(self, frame: np.ndarray) -> None:
        hop_part = frame[-self.hop :]
        level = 10.0 * math.log10(float(np.mean(hop_part * hop_part)) + 1e-13)
        spec = np.fft.rfft(frame * self._window)
        p = spec.real**2 + spec.imag**2 + 1e-18
        pb = p[self._flat_band]
        flatness = float(np.exp(np.mean(np.log(pb))) / np.mean(pb))
        ac = np.fft.irfft(p)[: self.N_FFT]
        if ac[0] > 1e-9:
            r = ac[self._lag_lo : self._lag_hi] / (ac[0] * self._w_ac[self._lag_lo : self._lag_hi])
            harm = float(np.clip(np.max(r), 0.0, 1.0))
        else:
            harm = 0.0
        self._scalars.append((level, flatness, harm))
        self._bands.append(np.bincount(self._band_index[self._band_ok], weights=p[self._band_ok], minlength=24))
        if len(self._scalars) > 4 * self.WINDOW_HOPS:
            del self._scalars[: -self.WINDOW_HOPS]
            del self._bands[: -self.WINDOW_HOPS]

    def _decide(self) -> str:
        f = np.array(self._scalars[-self.WINDOW_HOPS :])
        level, flat, harm = f[:, 0], f[:, 1], f[:, 2]
        if 10 * math.log10(float(np.mean(10 ** (level[-8:] / 10)))) < self.SILENCE_DBFS:
            return "silence"
        top = float(np.max(level))
        active = level > max(top - 40.0, self.SILENCE_DBFS - 10.0)
        lv = np.maximum(level, top - 40.0)
        spread = float(np.std(lv))
        dips = float(np.mean(lv < top - 15.0))
        h = harm[active]
        voiced = float(np.mean(h > 0.5))
        harm_mean = float(np.mean(h))
        flat_mean = float(np.mean(flat[active]))
        # spectral change between quarter-second averages
        bands = np.array(self._bands[-self.WINDOW_HOPS :])
        q = len(bands) // 4
        if q >= 2:
            blocks = 10 * np.log10(bands[-4 * q :].reshape(4, q, -1).mean(axis=1) + 1e-18)
            blocks = np.maximum(blocks, blocks.max() - 50.0)
            change = float(np.mean(np.abs(np.diff(blocks, axis=0))))
        else:
            change = 0.0
        if dips > 0.15 and spread > 6.0 and 0.1 < voiced:
            return "speech"
        if change < 1.8:
            return "noise"
        if flat_mean > 0.3 and harm_mean < 0.45:
            return "noise"
        return "music"

    def process(self, block: np.ndarray) -> list[str]:
        out = []
        for frame in self._stream.hops(block):
            self._features(frame)
            out.append(self._decide())
        return out


# ----- silero-vad ---------------------------------------------------------------------------
class SileroVad:
    """Silero VAD (PyPI ``silero-vad``, MIT; the JIT model in the wheel, no network): speech vs not speech.

    16 kHz, a decision per 512 samples (32 ms): speech when the model's probability is >= 0.5.
    Torch runs on one thread.
    """

    name = "silero-vad"
    classes = ("speech", "not speech")
    sample_rate = 16000
    hop = 512
    THRESHOLD = 0.5

    def __init__(self) -> None:
        try:
            import torch
            from silero_vad import load_silero_vad
        except ImportError:
            raise SystemUnavailable("silero-vad is not installed: pip install silero-vad (or run scripts/install-data-tools.sh)") from None
        import warnings

        torch.set_num_threads(1)
        self._torch = torch
        with warnings.catch_warnings():  # its loader's deprecation notices (importlib path, torch.jit)
            warnings.simplefilter("ignore", DeprecationWarning)
            self._model = load_silero_vad(onnx=False)
        self._stream = _HopStream(self.hop, self.hop)
        self.reset()

    def reset(self) -> None:
        self._model.reset_states()
        self._stream.reset_stream()

    def process(self, block: np.ndarray) -> list[str]:
        out = []
        with self._torch.inference_mode():
            for frame in self._stream.hops(block):
                prob = float(self._model(self._torch.from_numpy(frame.astype(np.float32)), self.sample_rate))
                out.append("speech" if prob >= self.THRESHOLD else "not speech")
        return out


# ----- ours -----------------------------------------------------------------------------------
class OurClassifier:
    """NoisyNeuron's streaming classifier (:mod:`noisyneuron.models.classifier`) at 16 kHz: a
    decision every 0.1 s (1600 samples) from the last 1 s, smoothed, with hysteresis and the
    level gate, exactly as live. Weights: ``$NOISYNEURON_CLASSIFIER_WEIGHTS`` (the CLI's
    ``--classifier-weights``) or the shipped ones; never a user's calibration profile (reports
    must not depend on who runs them). Torch runs on one thread.
    """

    name = "ours"
    sample_rate = CLASSIFICATION_RATE

    def __init__(self, weights: str | Path | None = None, name: str | None = None) -> None:
        import os

        from noisyneuron.models.classifier import CLASSIFIER_WEIGHTS_ENV, has_shipped_classifier, load_classifier

        if name:
            self.name = name
        if weights is None and not os.environ.get(CLASSIFIER_WEIGHTS_ENV) and not has_shipped_classifier():
            raise SystemUnavailable("no classifier weights: train and export some (noisyneuron train classifier --export FILE) and pass --classifier-weights FILE")
        net = load_classifier(weights, use_profile=False) if weights is not None else load_classifier(use_profile=False)
        self._attach(net)

    @classmethod
    def for_net(cls, net, name: str | None = None) -> OurClassifier:
        """The system on a network in memory (e.g. one being tuned), not a weights file."""
        system = cls.__new__(cls)
        if name:
            system.name = name
        system._attach(net)
        return system

    def _attach(self, net) -> None:
        from noisyneuron.models.classifier import StreamingClassifier

        self._sc = StreamingClassifier(net, self.sample_rate)
        self.classes = self._sc.labels
        self.hop = self._sc.decision_samples
        self._out: list[str] = []
        self._sc.on_decision = self._collect
        self.source = getattr(net, "source", "in memory")

    def _collect(self, sc) -> None:
        self._out.append(sc.labels[sc.label_index])

    def reset(self) -> None:
        self._sc.reset()

    def process(self, block: np.ndarray) -> list[str]:
        self._out = []
        self._sc.process(np.ascontiguousarray(block, dtype=np.float32))
        return self._out


register_classifier("ours", OurClassifier)
register_classifier("energy-baseline", EnergyBaseline)
register_classifier("silero-vad", SileroVad)


# ----- metrics ------------------------------------------------------------------------------
def _catch_all(classes: tuple[str, ...]) -> str | None:
    extra = [c for c in classes if c not in CLASSES]
    if len(extra) > 1:
        raise ValueError(f"a system may have at most one label outside {CLASSES}, got {extra}")
    return extra[0] if extra else None


def map_label(label: str, classes: tuple[str, ...]) -> str | None:
    """``label`` (one of :data:`CLASSES`) as the system with ``classes`` should say it (None: it cannot)."""
    return label if label in classes else _catch_all(classes)


def _square_confusion(confusion: np.ndarray, classes, col: dict) -> np.ndarray:
    """The square confusion over the system's ``classes``: rows of ``confusion`` (true labels in
    :data:`CLASSES` order) mapped onto the system's classes (``col``: class -> column)."""
    square = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for i, label in enumerate(CLASSES):
        mapped = map_label(label, classes)
        if mapped is not None:
            square[col[mapped]] += confusion[i]
    return square


def prf(confusion: np.ndarray) -> dict:
    """Per-class precision, recall, F1 (0 where undefined) and accuracy, macro F1 of a square confusion.

    ``confusion[i, j]`` counts items of true class ``i`` decided as ``j``.
    """
    c = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(c)
    pred = c.sum(axis=0)
    true = c.sum(axis=1)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    total = c.sum()
    present = true > 0
    return {
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "accuracy": float(tp.sum() / total) if total > 0 else 0.0,
        "macro_f1": float(np.mean(f1[present])) if np.any(present) else 0.0,
    }


def _feed(system: ClassifierSystem, audio: np.ndarray) -> list[str]:
    out: list[str] = []
    x = np.asarray(audio, dtype=np.float32)
    for k in range(0, len(x), BLOCK):
        out += system.process(x[k : k + BLOCK])
    return out


def decision_latencies(decisions: list[str], hop: int, sample_rate: int, changes: list[tuple[int, str]], settle: float = SETTLE_SECONDS) -> tuple[list[float], int]:
    """Latency of each label change: (settled latencies in seconds, number never settled).

    Args:
        decisions: one label per hop; decision ``k`` is timed at ``(k + 1) * hop / sample_rate`` s.
        changes: ``(sample, new_label)`` for each change of the true label, in order (the
            evaluation leaves out the stream's start: a reset system has no previous label).
        settle: how long the decision must then stay equal to the new label, seconds.
    """
    times = (np.arange(len(decisions)) + 1) * hop / sample_rate
    labels = np.array(decisions, dtype=object)
    settled: list[float] = []
    never = 0
    for idx, (at, label) in enumerate(changes):
        t_change = at / sample_rate
        t_next = changes[idx + 1][0] / sample_rate if idx + 1 < len(changes) else math.inf
        lo = int(np.searchsorted(times, t_change - 1e-9))
        hi = int(np.searchsorted(times, t_next - 1e-9))  # decisions before the next change
        ok = labels[lo:hi] == label
        found = None
        run_start = None
        for j in range(len(ok)):
            if ok[j]:
                if run_start is None:
                    run_start = j
                if times[lo + j] - times[lo + run_start] + hop / sample_rate >= settle - 1e-9:
                    found = run_start
                    break
            else:
                run_start = None
        if found is None:
            never += 1
        else:
            settled.append(float(times[lo + found] - t_change))
    return settled, never


@dataclass
class _Clip:
    id: str
    label: str
    audio: np.ndarray
    origin: str = "synthetic"
    packages: tuple[str, ...] = ()


#: Clip origins reported apart, in order: real recordings first (the figure that counts).
ORIGINS = ("real", "synthetic", "mixture")


def _load_clips(data_dir: Path, split: str, max_clips: int | None) -> list[_Clip]:
    clips = classification_clips(data_dir, split)
    order = np.random.default_rng(STREAM_SEED).permutation(len(clips))
    clips = [clips[i] for i in order]
    if max_clips is not None:
        clips = clips[: max(0, int(max_clips))]
    from noisyneuron.datasets.classification import clip_origin

    return [_Clip(c.id, c.label, c.load(), clip_origin(c.meta), tuple(sorted({s.get("package", "?") for s in c.meta.get("sources", [])}))) for c in clips]


def _resample(x: np.ndarray, rate: int) -> np.ndarray:
    return x if rate == CLASSIFICATION_RATE else resample(x, CLASSIFICATION_RATE, rate).astype(np.float32)


def _clip_decisions(system: ClassifierSystem, clips: list[_Clip], progress: bool) -> dict:
    """Each clip through ``system`` from a reset, decided by the majority of its decisions after
    the first :data:`CLIP_SKIP_SECONDS`: the confusion (true :data:`CLASSES` x the system's
    classes), speech-vs-rest counts, per-clip results and the processing time."""
    classes = tuple(system.classes)
    rate, hop = int(system.sample_rate), int(system.hop)
    col = {c: j for j, c in enumerate(classes)}
    confusion = np.zeros((len(CLASSES), len(classes)), dtype=np.int64)
    speech = np.zeros((2, 2), dtype=np.int64)  # rows true (speech, rest), cols decided
    processing = 0.0
    audio_seconds = 0.0
    clip_results = []
    iterator = clips
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(clips, desc=f"{system.name} clips", unit="clip", file=sys.stderr, dynamic_ncols=True)
        iterator = bar
    for clip in iterator:
        x = _resample(clip.audio, rate)
        system.reset()
        t0 = time.perf_counter()
        decisions = _feed(system, x)
        processing += time.perf_counter() - t0
        audio_seconds += len(x) / rate
        times = (np.arange(len(decisions)) + 1) * hop / rate
        late = [d for d, t in zip(decisions, times) if t > CLIP_SKIP_SECONDS] or decisions
        if late:
            counts = {c: late.count(c) for c in classes}
            best = max(counts.values())
            decided = next(c for c in classes if counts[c] == best)
        else:
            decided = classes[-1]
        confusion[CLASSES.index(clip.label), col[decided]] += 1
        speech[0 if clip.label == "speech" else 1, 0 if decided == "speech" else 1] += 1
        clip_results.append({"id": clip.id, "label": clip.label, "decided": decided, "origin": clip.origin})
    if bar is not None:
        bar.close()
    return {"classes": classes, "col": col, "confusion": confusion, "speech": speech, "clip_results": clip_results,
            "processing": processing, "audio_seconds": audio_seconds}


def _evaluate_one(system: ClassifierSystem, clips: list[_Clip], progress: bool) -> dict:
    run = _clip_decisions(system, clips, progress)
    classes, col, confusion, speech = run["classes"], run["col"], run["confusion"], run["speech"]
    clip_results, processing, audio_seconds = run["clip_results"], run["processing"], run["audio_seconds"]
    rate, hop = int(system.sample_rate), int(system.hop)
    square = _square_confusion(confusion, classes, col)
    scores = prf(square)
    sp = prf(speech)
    groups = {}
    for origin in ORIGINS:
        members = [(c, r) for c, r in zip(clips, clip_results) if c.origin == origin]
        if members:
            groups[origin] = _group_scores(members, classes, col)
    # latency over one continuous stream
    system.reset()
    stream_labels = []
    for clip in clips:
        mapped = map_label(clip.label, classes)
        stream_labels.append(mapped if mapped is not None else clip.label)
    pieces = [_resample(c.audio, rate) for c in clips]
    changes = []
    pos = 0
    for label, piece in zip(stream_labels, pieces):
        if not changes or changes[-1][1] != label:
            changes.append((pos, label))
        pos += len(piece)
    stream = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    decisions = _feed(system, stream)
    settled, never = decision_latencies(decisions, hop, rate, changes[1:] if len(changes) > 1 else [])
    n_changes = max(0, len(changes) - 1)
    return {
        "name": system.name,
        "classes": list(classes),
        "clips": len(clips),
        "sample_rate": rate,
        "hop": hop,
        "confusion": {"rows": list(CLASSES), "columns": list(classes), "counts": confusion.tolist()},
        "confusion_mapped": {"rows": list(classes), "columns": list(classes), "counts": square.tolist()},
        "accuracy": scores["accuracy"],
        "macro_f1": scores["macro_f1"],
        "per_class": {c: {"precision": scores["precision"][j], "recall": scores["recall"][j], "f1": scores["f1"][j], "support": int(square[j].sum())} for j, c in enumerate(classes)},
        "speech_vs_rest": {"accuracy": sp["accuracy"], "f1": sp["f1"][0], "precision": sp["precision"][0], "recall": sp["recall"][0], "confusion": speech.tolist()},
        "latency": {
            "changes": n_changes,
            "settled": len(settled),
            "unsettled_fraction": (never / n_changes) if n_changes else 0.0,
            "mean_s": float(np.mean(settled)) if settled else None,
            "median_s": float(np.median(settled)) if settled else None,
            "settle_s": SETTLE_SECONDS,
        },
        "realtime_factor": processing / audio_seconds if audio_seconds > 0 else None,
        "by_origin": groups,
        "clip_results": clip_results,
    }


def _group_scores(members: list, classes: tuple[str, ...], col: dict[str, int]) -> dict:
    """Clip-level scores of a subset of clips: ``members`` are (clip, its result) pairs."""
    confusion = np.zeros((len(CLASSES), len(classes)), dtype=np.int64)
    for clip, res in members:
        confusion[CLASSES.index(clip.label), col[res["decided"]]] += 1
    square = _square_confusion(confusion, classes, col)
    scores = prf(square)
    packages: dict[str, int] = {}
    for clip, _ in members:
        for pkg in clip.packages:
            packages[pkg] = packages.get(pkg, 0) + 1
    return {
        "clips": len(members),
        "accuracy": scores["accuracy"],
        "macro_f1": scores["macro_f1"],
        "per_class": {c: {"precision": scores["precision"][j], "recall": scores["recall"][j], "f1": scores["f1"][j], "support": int(square[j].sum())} for j, c in enumerate(classes)},
        "confusion": {"rows": list(CLASSES), "columns": list(classes), "counts": confusion.tolist()},
        "packages": dict(sorted(packages.items())),
    }


def _plot_confusion(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.array(result["confusion"]["counts"])
    rows, cols = result["confusion"]["rows"], result["confusion"]["columns"]
    fig, ax = plt.subplots(figsize=(1.2 * len(cols) + 2.5, 1.0 * len(rows) + 1.8))
    norm = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("decided")
    ax.set_ylabel("true")
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(f"{result['name']}: clip accuracy {result['accuracy']:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fmt(x, digits=3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _markdown(report: dict) -> str:
    lines = [
        "# Classifier evaluation",
        "",
        f"Data: `{report['data_dir']}`, split `{report['split']}`, {report['clips']} clips ({report['audio_seconds'] / 60:.1f} min). "
        f"Clip label: majority of decisions after the first {CLIP_SKIP_SECONDS} s. Latency: clips concatenated (seed {STREAM_SEED}), "
        f"time from a label change until the decision is right and stays right for {SETTLE_SECONDS} s. RTF: processing time / audio time, one thread.",
        "",
        "| system | classes | accuracy | macro F1 | speech acc | speech F1 | latency mean (s) | latency median (s) | unsettled | RTF |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["systems"].values():
        lat = r["latency"]
        lines.append(
            f"| {r['name']} | {'/'.join(r['classes'])} | {_fmt(r['accuracy'])} | {_fmt(r['macro_f1'])} | {_fmt(r['speech_vs_rest']['accuracy'])} | "
            f"{_fmt(r['speech_vs_rest']['f1'])} | {_fmt(lat['mean_s'], 2)} | {_fmt(lat['median_s'], 2)} | {lat['unsettled_fraction']:.1%} | {_fmt(r['realtime_factor'], 4)} |"
        )
    origins = [o for o in ORIGINS if any(o in r.get("by_origin", {}) for r in report["systems"].values())]
    if origins:
        names = {"real": "real recordings", "synthetic": "synthetic (generators, TTS, silence)", "mixture": "real speech over real music or noise"}
        lines += ["", "By origin, clip level. Real recordings: every source recorded (music, voices, effects); in the test split of a "
                  "classification-v3 build they come only from packages and speakers that no training clip comes from (held out whole): "
                  "the figure that counts. Synthetic: our generators and TTS voices, and silence. Mixtures: a real speaker over real music "
                  "(10-25 dB below the speech) or in real noise (5-20 dB SNR), labelled speech.", "",
                  "| system | clips | accuracy | macro F1 | F1 " + " / ".join(CLASSES) + " |", "|---|---|---|---|---|"]
        for origin in origins:
            for r in report["systems"].values():
                g = r.get("by_origin", {}).get(origin)
                if g is None:
                    continue
                f1 = " / ".join(_fmt(g["per_class"][c]["f1"]) if c in g["per_class"] and g["per_class"][c]["support"] else "-" for c in CLASSES)
                lines.append(f"| {r['name']} on {names[origin]} | {g['clips']} | {_fmt(g['accuracy'])} | {_fmt(g['macro_f1'])} | {f1} |")
        first = next(iter(report["systems"].values()))
        for origin in origins:
            g = first.get("by_origin", {}).get(origin)
            if g is not None:
                lines += ["", f"{names[origin][0].upper() + names[origin][1:]}: clips per package: " + ", ".join(f"{p} {n}" for p, n in g["packages"].items()) + "."]
    leaks = report.get("split_leaks")
    if leaks is not None:
        roots = ", ".join(f"`{r}`" for r in report.get("leak_check_roots", []))
        lines += ["", f"Split check over {roots}: " + ("no package, speaker or source is in two splits." if not leaks else f"**{len(leaks)} in two splits**:")]
        lines += [f"- {x}" for x in leaks[:20]]
    for r in report["systems"].values():
        lines += ["", f"## {r['name']}", "", "| class | precision | recall | F1 | clips |", "|---|---|---|---|---|"]
        for c, v in r["per_class"].items():
            lines.append(f"| {c} | {_fmt(v['precision'])} | {_fmt(v['recall'])} | {_fmt(v['f1'])} | {v['support']} |")
        cols = r["confusion"]["columns"]
        lines += ["", "Confusion (rows true, columns decided):", "", "| true \\ decided | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for row, counts in zip(r["confusion"]["rows"], r["confusion"]["counts"]):
            lines.append(f"| {row} | " + " | ".join(str(v) for v in counts) + " |")
    if report["skipped"]:
        lines += ["", "Skipped:", ""] + [f"- {k}: {v}" for k, v in report["skipped"].items()]
    return "\n".join(lines) + "\n"


def evaluate_classifiers(
    data_dir: str | Path,
    systems: list[str] | None = None,
    split: str = "test",
    out_dir: str | Path = Path("reports/classifier"),
    max_clips: int | None = None,
    progress: bool = True,
    train_data: str | Path | None = None,
) -> dict:
    """Evaluate classifier ``systems`` (default: all registered) on ``split`` of a classification set.

    Args:
        data_dir: a built classification set (``noisyneuron data build classification``).
        systems: names in :data:`CLASSIFIER_SYSTEMS`; unavailable ones are skipped with a message.
        split: "train", "valid" or "test".
        out_dir: where ``classifier.md``, ``classifier.json``, ``confusion-<system>.png`` go.
        max_clips: evaluate only this many clips (the first of a fixed shuffle).
        progress: tqdm bars on stderr.
        train_data: the training set of the system evaluated: the split check covers it too.

    Returns the report (as written to ``classifier.json``). Raises ``UserError`` for a missing
    data set, an empty split or an unknown system.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(f"{data_dir}: no such data set; build one with `noisyneuron data build classification --out {data_dir}`")
    names = list(systems) if systems else list(CLASSIFIER_SYSTEMS)
    unknown = [n for n in names if n not in CLASSIFIER_SYSTEMS]
    if unknown:
        raise UserError(f"unknown classifier system {unknown[0]!r}; known: {', '.join(CLASSIFIER_SYSTEMS)}")
    clips = _load_clips(data_dir, split, max_clips)
    if not clips:
        raise UserError(f"{data_dir}: no classification clips in split {split!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "data_dir": str(data_dir),
        "split": split,
        "clips": len(clips),
        "audio_seconds": float(sum(len(c.audio) for c in clips) / CLASSIFICATION_RATE),
        "labels": {c: sum(1 for k in clips if k.label == c) for c in CLASSES},
        "systems": {},
        "skipped": {},
    }
    from noisyneuron.datasets.disjoint import classification_leaks

    roots = [data_dir] + ([Path(train_data)] if train_data else [])
    report["leak_check_roots"] = [str(r) for r in roots]
    report["split_leaks"] = classification_leaks(roots)
    for line in report["split_leaks"][:10]:
        print(f"eval classifier: split leak: {line}", file=sys.stderr)
    for name in names:
        try:
            system = make_system(name)
        except SystemUnavailable as e:
            print(f"eval classifier: skipping {name}: {e}", file=sys.stderr)
            report["skipped"][name] = str(e)
            continue
        result = _evaluate_one(system, clips, progress)
        report["systems"][name] = result
        _plot_confusion(result, out_dir / f"confusion-{name}.png")
    (out_dir / "classifier.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "classifier.md").write_text(_markdown(report))
    return report


# ----- recorded quality -----------------------------------------------------------------------
def classifier_quality(report: dict) -> dict:
    """The figures recorded beside the weights, from an evaluation report (``classifier.json``):
    per system, accuracy, macro F1 and per-class F1 on the real recordings of the test split (packages
    and speakers held out whole: the figure that counts), and apart on the synthetic and mixture clips
    and the whole split, with the packages measured.

    Raises:
        UserError: not the test split, no real recordings in it, a split leak, or no 'ours' in it.
    """
    if report.get("split") != "test":
        raise UserError("--record-quality takes figures from the test split only")
    if report.get("split_leaks"):
        raise UserError(f"--record-quality refuses a report with split leaks ({len(report['split_leaks'])}; the first: {report['split_leaks'][0]})")
    systems = report.get("systems", {})
    if "ours" not in systems:
        raise UserError("--record-quality needs the 'ours' system in the report")
    if "real" not in systems["ours"].get("by_origin", {}):
        raise UserError("--record-quality needs real recordings in the split (a classification-v3 build: noisyneuron data build classification)")

    def figures(g: dict) -> dict:
        return {"clips": g["clips"], "accuracy": round(g["accuracy"], 4), "macro_f1": round(g["macro_f1"], 4),
                "f1": {c: round(v["f1"], 4) for c, v in g["per_class"].items() if v["support"]}}

    out = {
        "metric": "clip accuracy, macro F1 and per-class F1 (majority of decisions after the first 0.5 s)",
        "section": "real recordings of held-out packages and speakers",
        "data": str(report.get("data_dir")),
        "split": report["split"],
        "leak_check_roots": report.get("leak_check_roots", []),
        "packages": systems["ours"]["by_origin"]["real"]["packages"],
        "systems": {},
    }
    for name, r in systems.items():
        entry = {origin: figures(g) for origin, g in r.get("by_origin", {}).items()}
        entry["whole_split"] = {"clips": r["clips"], "accuracy": round(r["accuracy"], 4), "macro_f1": round(r["macro_f1"], 4)}
        entry["latency_median_s"] = r["latency"]["median_s"]
        out["systems"][name] = entry
    return out


def record_classifier_quality(figures: dict, weights: str | Path | None = None) -> Path:
    """Write ``figures`` beside the classifier weights evaluated (``classifier-quality.json`` for
    ``classifier.pt``), with the weights' SHA-256 so the figures never outlive them. Returns the file."""
    import hashlib
    import os

    from noisyneuron.models.classifier import CLASSIFIER_WEIGHTS_ENV, SHIPPED_CLASSIFIER

    path = Path(weights or os.environ.get(CLASSIFIER_WEIGHTS_ENV) or SHIPPED_CLASSIFIER)
    target = path.with_name(path.stem + "-quality.json")
    atomic_write_text(target, json.dumps({**figures, "weights_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}, indent=2) + "\n")
    return target


# ----- CLI ------------------------------------------------------------------------------------
#: Offsets tried on the head's last bias (logits) by :func:`tune_priors`, per class.
PRIOR_GRID: dict[str, tuple[float, ...]] = {"noise": (0.0, 0.5, 1.0, 1.5), "music": (0.0, -0.5)}


def tune_priors(data_dir: Path, dest: Path, weights: str | Path | None = None, origin: str = "real",
                progress: bool = True) -> dict:
    """Prior correction on held-out packages: add offsets (:data:`PRIOR_GRID`) to the logits of
    ``weights`` (default: the shipped ones), score every combination on the VALID split's
    ``origin`` clips (packages held out from training and from the test split) by macro F1 as the
    report scores it, and write the best (ties: the smallest offsets) to ``dest`` with the
    offsets, the grid and the valid scores in its metadata. The test split is not read.

    Returns ``{"offsets", "valid_macro_f1", "valid_accuracy", "grid": [...], "dest"}``.
    """
    import itertools

    import torch

    from noisyneuron.models.classifier import export_classifier, load_classifier

    clips = [c for c in _load_clips(Path(data_dir), "valid", None) if c.origin == origin]
    if not clips:
        raise UserError(f"{data_dir}: no {origin} clips in the valid split to tune on")
    net = load_classifier(weights, use_profile=False) if weights is not None else load_classifier(use_profile=False)
    labels = tuple(net.config.labels)
    names = [n for n in PRIOR_GRID if n in labels]
    bias = net.head[-1].bias
    start = bias.detach().clone()
    grid = []
    for values in itertools.product(*(PRIOR_GRID[n] for n in names)):
        offsets = dict(zip(names, values))
        with torch.no_grad():
            bias.copy_(start)
            for n, v in offsets.items():
                bias[labels.index(n)] += v
        run = _clip_decisions(OurClassifier.for_net(net), clips, progress=False)  # the report's system
        scores = prf(_square_confusion(run["confusion"], run["classes"], run["col"]))
        grid.append({"offsets": offsets, "macro_f1": scores["macro_f1"], "accuracy": scores["accuracy"]})
        if progress:
            print(f"  {', '.join(f'{n} {v:+.1f}' for n, v in offsets.items())}: valid {origin} accuracy "
                  f"{scores['accuracy']:.3f}, macro F1 {scores['macro_f1']:.3f}", file=sys.stderr, flush=True)
    best = max(grid, key=lambda g: (round(g["macro_f1"], 6), -sum(abs(v) for v in g["offsets"].values())))
    with torch.no_grad():
        bias.copy_(start)
        for n, v in best["offsets"].items():
            bias[labels.index(n)] += v
    meta = dict(net.export_meta)
    for key in ("format", "format_version", "config", "labels", "noisyneuron_version", "dtype", "created", "bytes"):
        meta.pop(key, None)
    meta["prior_offsets"] = {"offsets": best["offsets"], "tuned_on": f"valid split, {origin} clips ({len(clips)})",
                             "valid_macro_f1": best["macro_f1"], "valid_accuracy": best["accuracy"], "grid": grid}
    export_classifier(net, dest, **meta)
    return {"offsets": best["offsets"], "valid_macro_f1": best["macro_f1"], "valid_accuracy": best["accuracy"],
            "grid": grid, "dest": str(dest)}


def add_cli_arguments(parser) -> None:
    """Arguments of ``noisyneuron eval classifier``."""
    parser.add_argument("--data", required=True, type=Path, help="a classification data set (noisyneuron data build classification)")
    parser.add_argument("--system", action="append", default=None, metavar="NAME", help=f"a system to evaluate (repeatable; default: all of {', '.join(CLASSIFIER_SYSTEMS)})")
    parser.add_argument("--split", default="test", choices=("train", "valid", "test"), help="which split (default: test)")
    parser.add_argument("--out", type=Path, default=Path("reports/classifier"), help="report folder (default: reports/classifier)")
    parser.add_argument("--max-clips", type=int, default=None, metavar="N", help="evaluate only N clips (a fixed shuffle)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--classifier-weights", metavar="FILE", default=None, help="exported classifier weights for the 'ours' system (default: the shipped ones)")
    parser.add_argument("--compare-weights", action="append", default=[], metavar="NAME=FILE",
                        help="also evaluate these exported classifier weights as system NAME, beside 'ours' (repeatable; e.g. previous=old.pt)")
    parser.add_argument("--record-quality", action="store_true",
                        help="also write the figures of 'ours' and the peers on the held-out real recordings (and apart, the synthetic and mixture clips) "
                             "next to the weights evaluated (<weights>-quality.json, tied to them by SHA-256); test split only, and never with a split leak")
    parser.add_argument("--train-data", type=Path, default=None, metavar="DIR", help="the classification set the model trained on: the split check covers it too")
    parser.add_argument("--tune-priors", type=Path, default=None, metavar="FILE",
                        help="instead of evaluating: add per-class logit offsets to the weights (a grid on noise and music), pick the best "
                             "macro F1 on the VALID split's real clips (held-out packages) and write the weights to FILE; "
                             "then evaluate FILE on the test split with --classifier-weights")


def cli_main(args) -> int:
    """Run the evaluation from parsed arguments; prints the table and where the report went."""
    if getattr(args, "classifier_weights", None):
        import os

        from noisyneuron.models.classifier import CLASSIFIER_WEIGHTS_ENV

        os.environ[CLASSIFIER_WEIGHTS_ENV] = str(Path(args.classifier_weights).resolve())
    systems = list(args.system) if args.system else None
    for spec in getattr(args, "compare_weights", None) or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--compare-weights wants NAME=FILE, got {spec!r}")
        if not Path(path).is_file():
            raise UserError(f"{path}: no such classifier weights file")
        register_classifier(name, lambda p=str(Path(path).resolve()), n=name: OurClassifier(p, n))
        if systems is not None and name not in systems:
            systems.append(name)
    args.system = systems
    if getattr(args, "tune_priors", None) is not None:
        result = tune_priors(args.data, args.tune_priors, getattr(args, "classifier_weights", None), progress=not getattr(args, "no_progress", False))
        offsets = ", ".join(f"{n} {v:+.1f}" for n, v in result["offsets"].items())
        print(f"wrote {result['dest']}: logit offsets {offsets} (valid real clips: accuracy {result['valid_accuracy']:.3f}, "
              f"macro F1 {result['valid_macro_f1']:.3f}); the test split was not read")
        return 0
    report = evaluate_classifiers(args.data, args.system, args.split, args.out, args.max_clips, progress=not getattr(args, "no_progress", False),
                                  train_data=getattr(args, "train_data", None))
    if not report["systems"]:
        raise UserError("no classifier system could run: " + "; ".join(report["skipped"].values()))
    if getattr(args, "record_quality", False):
        path = record_classifier_quality(classifier_quality(report))
        print(f"wrote {path}", file=sys.stderr)
    text = (Path(args.out) / "classifier.md").read_text()
    print(text.split("\n## ")[0].rstrip())
    print(f"report: {Path(args.out) / 'classifier.md'} (+ classifier.json, confusion-*.png)")
    return 0
