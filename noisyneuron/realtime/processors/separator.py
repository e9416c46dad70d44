"""Neural separation live: per-stem gains (vocals, drums, bass, other) over the streaming model.

Wraps :class:`~noisyneuron.models.separator.SeparatorNet` as a chain processor, run one hop at a
time with carried state by :class:`~noisyneuron.models.separator_fast.FastStreamingSeparator`
(one compiled step per hop, float16 weights: exact for the shipped float16 weights, and 4-5x
less time per hop than the torch step on these CPUs; ``step="torch"`` runs
:class:`~noisyneuron.models.separator.StreamingSeparator` instead, the benchmark's peer):

- parameters: ``vocals``, ``drums``, ``bass``, ``other`` in dB (-60 = off, +6 max; vocals off is
  karaoke) and ``solo`` (0 = none, 1..4 = only that stem, at its own gain);
- latency: exactly ``n_fft - 1`` samples (1007 at 44.1 kHz = 22.83 ms; 1095 at 48 kHz, where the
  model runs natively with its STFT scaled, see :mod:`noisyneuron.models.separator`) for any block size: the
  input is gathered into hops, and the output is read from a queue prefilled with ``hop - 1``
  zeros, so every output sample is the model's output for the input ``n_fft - 1`` samples earlier;
- all gains at 0 dB return the input (the model's stems sum to it), delayed by the latency;
- mono input is duplicated for the model and the two output channels averaged; with more than
  two channels, 0 and 1 are separated and the others delayed.

The step runs in the engine's processing thread, never in the PortAudio callback, with the GIL
released (numba ``nogil``); torch is set to one thread (in :meth:`prepare`) for the torch step.
Per block the work is one model step per completed hop and the gains' mix into the output
queue (compiled, no allocation).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from noisyneuron.realtime.parameters import Parameter, db_to_gain
from noisyneuron.realtime.processor import Processor

__all__ = ["NeuralSeparator"]

_OFF_DB = -60.0

#: Streaming implementations ``NeuralSeparator(step=...)`` accepts.
STEPS = ("fast", "torch")


@njit(nogil=True, cache=True)
def _mix_into(stems, gains, outq, first, mono):
    """Write ``sum_s gains[s] * stems[s]`` ((S, 2, hop) -> (hop, 2), or the channels' mean
    when ``mono``) into the ring ``outq`` from row ``first`` on, wrapping."""
    size = outq.shape[0]
    n_stems, channels, hop = stems.shape
    for i in range(hop):
        row = (first + i) % size
        left = np.float32(0.0)
        right = np.float32(0.0)
        for s in range(n_stems):
            left += gains[s] * stems[s, 0, i]
            right += gains[s] * stems[s, 1, i]
        if mono:
            outq[row, 0] = np.float32(0.5) * (left + right)
        else:
            outq[row, 0] = left
            outq[row, 1] = right


class NeuralSeparator(Processor):
    """Live 4-stem separation with per-stem gains.

    Args:
        net: a trained :class:`~noisyneuron.models.separator.SeparatorNet`; default: the
            checkpoint shipped in the package (:func:`noisyneuron.models.pretrained.load_separator`).
        name: instance name in the chain.
        vocals_db: initial vocals gain, dB (default off: karaoke).
        step: ``"fast"`` (default: the compiled float16-weight step) or ``"torch"`` (the float32
            torch step, :class:`~noisyneuron.models.separator.StreamingSeparator`).
        weights: the fast step's matrix storage (``float16``, exact for float16-exported
            weights; ``float32``; ``int8``, lossy), see
            :class:`~noisyneuron.models.separator_fast.FastStreamingSeparator`.
    """

    kind = "separator"

    def __init__(self, net=None, name: str | None = None, vocals_db: float = _OFF_DB, step: str = "fast",
                 weights: str = "float16") -> None:
        super().__init__(name)
        if step not in STEPS:
            raise ValueError(f"step must be one of {', '.join(STEPS)}, not {step!r}")
        self.step_kind = step
        self.weights = weights
        if net is None:
            from noisyneuron.models.pretrained import load_separator

            net = load_separator()
        self.net = net.eval()
        self.stem_names = tuple(net.config.stems)
        self.gains = []
        for stem in self.stem_names:
            default = vocals_db if stem == "vocals" else 0.0
            self.gains.append(
                self.add_parameter(
                    Parameter(stem, _OFF_DB, 6.0, default, "dB", f"level of the {stem} stem (-60 = off)", off_at_minimum=True)
                )
            )
        self.solo = self.add_parameter(
            Parameter("solo", 0, len(self.stem_names), 0, "", "0 = all stems; 1.." + str(len(self.stem_names)) + " = only " + "/".join(self.stem_names), smoothing_seconds=0.0, step=1)
        )
        self._hop = net.config.hop
        self._n_fft = net.config.n_fft
        self.streamer = None

    @property
    def model_sample_rate(self) -> int:
        """Hz the model was trained at."""
        return int(self.net.config.sample_rate)

    @property
    def latency_samples(self) -> int:
        return self._n_fft - 1

    def prepare(self, sample_rate: float, max_block: int, channels: int) -> None:
        super().prepare(sample_rate, max_block, channels)
        torch.set_num_threads(1)
        if self.step_kind == "fast":
            from noisyneuron.models.separator_fast import FastStreamingSeparator

            self.streamer = FastStreamingSeparator(self.net, sample_rate, weights=self.weights)
        else:
            from noisyneuron.models.separator import StreamingSeparator

            self.streamer = StreamingSeparator(self.net, sample_rate)
        self._n_fft, self._hop = self.streamer.n_fft, self.streamer.hop
        hop = self._hop
        self._acc = np.zeros((2, hop), dtype=np.float32)
        self._acc_fill = 0
        # output queue: prefilled with hop - 1 zeros (see the module docstring), room for a block
        size = max_block + 2 * hop
        self._outq = np.zeros((size, channels), dtype=np.float32)
        from noisyneuron.dsp.delay import DelayLine

        extra = max(channels - 2, 0)
        self._others = DelayLine(self.latency_samples, max(extra, 1), max_block)
        self._others_out = np.zeros((max_block, max(extra, 1)), dtype=np.float32)
        self._stem_gain = np.zeros(len(self.stem_names), dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        super().reset()
        if self.streamer is not None:
            self.streamer.reset()
        self._acc_fill = 0
        self._q_read = 0
        self._q_len = self._hop - 1
        if hasattr(self, "_outq"):
            self._outq[:] = 0.0
            self._others.reset()

    def _gains(self, frames: int) -> np.ndarray:
        solo = int(round(self.solo.advance(frames)))
        for i, p in enumerate(self.gains):
            db = p.advance(frames)
            g = db_to_gain(db, _OFF_DB)
            self._stem_gain[i] = g if (solo == 0 or solo == i + 1) else 0.0
        return self._stem_gain

    def _emit(self, stems, gains: np.ndarray) -> None:
        """Mix one hop of stems (S, 2, hop) with ``gains`` and append it to the output queue."""
        if isinstance(stems, torch.Tensor):
            stems = stems.numpy()
        first = (self._q_read + self._q_len) % len(self._outq)
        _mix_into(stems, gains, self._outq, first, self.channels < 2)
        self._q_len += self._hop

    def process(self, block: np.ndarray) -> None:
        frames = block.shape[0]
        gains = self._gains(frames)
        hop = self._hop
        if self.channels > 2:
            self._others.process(np.ascontiguousarray(block[:, 2:]), self._others_out[:frames])
        pos = 0
        while pos < frames:
            take = min(hop - self._acc_fill, frames - pos)
            piece = block[pos : pos + take]
            if self.channels >= 2:
                self._acc[:, self._acc_fill : self._acc_fill + take] = piece[:, :2].T
            else:
                self._acc[:, self._acc_fill : self._acc_fill + take] = piece[:, 0]
            self._acc_fill += take
            pos += take
            if self._acc_fill == hop:
                hop_in = self._acc if self.step_kind == "fast" else torch.from_numpy(self._acc)
                self._emit(self.streamer.step(hop_in), gains)
                self._acc_fill = 0
        # this block's output: the oldest ``frames`` samples of the queue
        size = len(self._outq)
        width = min(self.channels, 2)
        first = self._q_read
        n1 = min(frames, size - first)
        block[:n1, :width] = self._outq[first : first + n1, :width]
        if n1 < frames:
            block[n1:frames, :width] = self._outq[: frames - n1, :width]
        self._q_read = (first + frames) % size
        self._q_len -= frames
        if self.channels > 2:
            block[:, 2:] = self._others_out[:frames]
