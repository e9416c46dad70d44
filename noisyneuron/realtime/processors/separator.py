"""Neural separation live: per-stem gains (vocals, drums, bass, other) over the streaming model.

Wraps :class:`~noisyneuron.models.separator.SeparatorNet` (through
:class:`~noisyneuron.models.separator.StreamingSeparator`, one hop at a time with carried
state) as a chain processor:

- parameters: ``vocals``, ``drums``, ``bass``, ``other`` in dB (-60 = off, +6 max; vocals off is
  karaoke) and ``solo`` (0 = none, 1..4 = only that stem, at its own gain);
- latency: exactly ``n_fft - 1`` samples (1007 at 44.1 kHz = 22.83 ms; 1095 at 48 kHz, where the
  model runs natively with its STFT scaled, see :mod:`noisyneuron.models.separator`) for any block size: the
  input is gathered into hops, and the output is read from a queue prefilled with ``hop - 1``
  zeros, so every output sample is the model's output for the input ``n_fft - 1`` samples earlier;
- all gains at 0 dB return the input (the model's stems sum to it), delayed by the latency;
- mono input is duplicated for the model and the two output channels averaged; with more than
  two channels, 0 and 1 are separated and the others delayed.

Torch runs with one thread here (set in :meth:`prepare` and per block), in the engine's
processing thread, never in the PortAudio callback. Per block the work is one model step per
completed hop; the hop arrays are allocated by torch (small, reused by its caching allocator).
"""

from __future__ import annotations

import numpy as np
import torch

from noisyneuron.realtime.parameters import Parameter, db_to_gain
from noisyneuron.realtime.processor import Processor

__all__ = ["NeuralSeparator"]

_OFF_DB = -60.0


class NeuralSeparator(Processor):
    """Live 4-stem separation with per-stem gains.

    Args:
        net: a trained :class:`~noisyneuron.models.separator.SeparatorNet`; default: the
            checkpoint shipped in the package (:func:`noisyneuron.models.pretrained.load_separator`).
        name: instance name in the chain.
        vocals_db: initial vocals gain, dB (default off: karaoke).
    """

    kind = "separator"

    def __init__(self, net=None, name: str | None = None, vocals_db: float = _OFF_DB) -> None:
        super().__init__(name)
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
        from noisyneuron.models.separator import StreamingSeparator

        super().prepare(sample_rate, max_block, channels)
        torch.set_num_threads(1)
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

    def _emit(self, stems: torch.Tensor, gains: np.ndarray) -> None:
        """Mix one hop of stems (S, 2, hop) with ``gains`` and append it to the output queue."""
        mixed = torch.einsum("s,sch->hc", torch.from_numpy(gains), stems).numpy()  # (hop, 2)
        if self.channels < 2:
            mixed = mixed.mean(axis=1, keepdims=True)
        hop, size = self._hop, len(self._outq)
        width = mixed.shape[1]
        first = (self._q_read + self._q_len) % size
        n1 = min(hop, size - first)
        self._outq[first : first + n1, :width] = mixed[:n1]
        if n1 < hop:
            self._outq[: hop - n1, :width] = mixed[n1:]
        self._q_len += hop

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
                self._emit(self.streamer.step(torch.from_numpy(self._acc)), gains)
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
