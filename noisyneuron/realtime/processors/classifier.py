"""The ``classifier`` processor: a live music / speech / noise / silence monitor in the chain.

Analysis only: the audio passes through untouched (bit for bit; latency 0). It wraps
:class:`~noisyneuron.models.classifier.StreamingClassifier` (a decision every 0.1 s from the
last 1 s of real audio, smoothed, with hysteresis and a gate relative to the input's own floor)
on the mean of the block's channels, at the device rate (44.1 / 48 kHz natively, no resampler).

Each decision is *published* without a lock, for control threads (OSC, MIDI, the UI) to poll
with :meth:`ClassifierProcessor.reading` (None until the first decision), as
:func:`noisyneuron.control.readings.poll_readings` does for the UI, OSC and MIDI: the audio side writes the label index, the smoothed
posteriors, the level and the stream time into preallocated arrays between two increments of a
sequence counter (a seqlock: odd while writing, even when done; the counter is written last).
A reader copies the arrays and keeps the copy only if the counter was even and unchanged
across the copy, so it never sees a half-written decision and the audio side never waits.

Parameters (``--set monitor.gate=-50``):

- ``gate``: the gate's level threshold, RMS dBFS over the last 0.4 s (-90..-20; -58): below it
  the label is "silence" (and the network does not run) unless the input stands out from its
  own floor (10 dB in some band for 60 ms: a quiet talker does, a steady noise floor or hum
  does not); at or above it nothing is silence;
- ``hysteresis``: how far (in %) another label's smoothed confidence must exceed the current
  label's before the label changes (0..50; 10).

The network comes from :func:`~noisyneuron.models.classifier.load_classifier`: the user's
calibration profile when there is one (``noisyneuron classify calibrate``), else the shipped
weights; :attr:`ClassifierProcessor.source` says which.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from noisyneuron.realtime.parameters import Parameter
from noisyneuron.realtime.processor import Processor

__all__ = ["ClassifierReading", "ClassifierProcessor"]


@dataclass(frozen=True)
class ClassifierReading:
    """One published decision (a snapshot; immutable).

    Attributes:
        label: the current label.
        confidences: smoothed posterior per label, 0..1 (they sum to 1).
        level_dbfs: RMS level of the gate's window (the last 0.4 s), dBFS (-120 = digital silence).
        sequence: decisions published since prepare / reset (1 for the first): a new value is a new decision.
        stream_seconds: stream time of the decision, seconds since prepare / reset.
        gated: the gate decided silence (below the threshold and nothing standing out from the
            input's floor; the network did not run).
    """

    label: str | None
    confidences: dict[str, float]
    level_dbfs: float
    sequence: int
    stream_seconds: float
    gated: bool


class ClassifierProcessor(Processor):
    """Live classifier; see the module docstring.

    Args:
        net: a :class:`~noisyneuron.models.classifier.ClassifierNet` (default: the profile or
            the shipped weights).
        name: instance name in the chain (default "monitor").
        decision_seconds, context_seconds, smoothing_seconds: see
            :class:`~noisyneuron.models.classifier.StreamingClassifier`.
    """

    kind = "classifier"

    def __init__(self, net=None, name: str | None = "monitor", decision_seconds: float = 0.1,
                 context_seconds: float | None = None, smoothing_seconds: float | None = None) -> None:
        super().__init__(name)
        if net is None:
            from noisyneuron.models.classifier import load_classifier

            net = load_classifier()
        self.net = net
        self.source = getattr(net, "source", "given")
        stream = (net.export_meta or {}).get("stream", {})
        self.gate = self.add_parameter(Parameter(
            "gate", -90.0, -20.0, float(stream.get("silence_dbfs", -58.0)), "dB",
            "gate: below this RMS (dBFS, last 0.4 s) the label is silence unless the input stands out from its own floor", smoothing_seconds=0.0))
        self.hysteresis = self.add_parameter(Parameter(
            "hysteresis", 0.0, 50.0, 100.0 * float(stream.get("hysteresis", 0.1)), "%",
            "how far another label's confidence must exceed the current one's to take over", smoothing_seconds=0.0))
        self._kwargs = {"decision_seconds": decision_seconds, "context_seconds": context_seconds, "smoothing_seconds": smoothing_seconds}
        self.classifier = None
        from noisyneuron.models.classifier import SILENCE

        labels = list(net.config.labels)
        if SILENCE not in labels:
            labels.append(SILENCE)
        self.labels: tuple[str, ...] = tuple(labels)
        self._seq = np.zeros(1, dtype=np.int64)
        self._conf = np.zeros(len(self.labels), dtype=np.float32)
        self._meta = np.zeros(5, dtype=np.float64)  # label index, level dBFS, stream seconds, gated, decisions

    def prepare(self, sample_rate: float, max_block: int, channels: int) -> None:
        import torch

        from noisyneuron.models.classifier import StreamingClassifier

        super().prepare(sample_rate, max_block, channels)
        torch.set_num_threads(1)
        self.classifier = StreamingClassifier(self.net, sample_rate, silence_dbfs=self.gate.value, **self._kwargs)
        self.classifier.on_decision = self._publish
        self.labels = self.classifier.labels
        self._conf = np.zeros(len(self.labels), dtype=np.float32)
        # warm up (numba compile, torch's first-call costs) off the audio thread, gate open, until
        # the network has run (the first decisions after a start are held: too little real audio)
        sc = self.classifier
        sc.silence_dbfs = None
        warm = np.zeros(sc.decision_samples, dtype=np.float32)
        for _ in range(sc.onset_frames // sc.decision_frames + 2):
            sc.process(warm)
            if not sc.held:
                break
        sc.silence_dbfs = self.gate.value
        self.reset()

    def reset(self) -> None:
        super().reset()
        if self.classifier is not None:
            self.classifier.reset()
        self._seq[0] += 1
        self._conf[:] = 0.0
        self._meta[:] = (-1.0, -120.0, 0.0, 0.0, 0.0)
        self._seq[0] += 1

    @property
    def latency_samples(self) -> int:
        return 0

    def _publish(self, sc) -> None:
        """Audio side: write the decision between two counter increments (seqlock)."""
        self._seq[0] += 1  # odd: writing
        self._conf[:] = sc.smoothed
        self._meta[0] = sc.label_index
        self._meta[1] = sc.level_dbfs
        self._meta[2] = sc.stream_seconds
        self._meta[3] = 1.0 if sc.gated else 0.0
        self._meta[4] = sc.decisions
        self._seq[0] += 1  # even: done (written last)

    def process(self, block: np.ndarray) -> None:
        sc = self.classifier
        gate = self.gate.advance(block.shape[0])
        sc.silence_dbfs = gate
        sc.hysteresis = self.hysteresis.advance(block.shape[0]) * 0.01
        sc.process(block)

    def reading(self, retries: int = 1000) -> ClassifierReading | None:
        """The latest decision, consistent (any thread; never blocks the audio side); None
        before the first decision since prepare / reset.

        Raises ``RuntimeError`` only if the audio side kept writing through ``retries``
        attempts (it writes for microseconds ten times a second)."""
        seq = self._seq
        for _ in range(retries):
            s1 = int(seq[0])
            if s1 & 1:
                continue
            conf = self._conf.copy()
            meta = self._meta.copy()
            if int(seq[0]) == s1:
                if meta[4] < 1:
                    return None
                index = int(meta[0])
                labels = self.labels
                return ClassifierReading(
                    label=labels[index] if 0 <= index < len(labels) else None,
                    confidences={lab: float(c) for lab, c in zip(labels, conf)},
                    level_dbfs=float(meta[1]),
                    sequence=int(meta[4]),
                    stream_seconds=float(meta[2]),
                    gated=bool(meta[3]),
                )
        raise RuntimeError("classifier reading kept changing while being read")

    def describe(self) -> str:
        base = super().describe()
        return f"{base}; labels {'/'.join(self.labels)}; weights: {self.source}"

