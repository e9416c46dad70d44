"""Offline processing: run a file or an array through a Chain faster than real time.

The same :class:`~noisyneuron.realtime.chain.Chain` object that runs live runs here, fed
fixed-size blocks (the last one zero padded), so offline and live give the same samples.
The chain's latency is compensated: the first ``latency_samples`` output frames are dropped and
``latency_samples`` extra zero frames are fed at the end to flush the tail, so the output lines
up sample-exactly with the input and has the input's length.

:func:`process_array` is the in-memory form; :func:`process_file` streams a file through the same
block loop (:class:`_AlignedRunner`) and writes the result atomically with
:class:`~noisyneuron.audio.files.FileSink`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from noisyneuron.realtime.chain import Chain
from noisyneuron.audio.files import FileSink, FileSource, audio_info, check_not_an_input

__all__ = ["OfflineReport", "process_array", "process_file"]


class _AlignedRunner:
    """The block loop: feeds ``chain`` blocks of exactly ``blocksize`` frames and hands each
    latency-compensated output piece to ``emit`` (a view, valid only during the call).

    :meth:`push` takes input of any length; :meth:`finish` pads the last block with zeros and
    feeds zeros until the output for every input frame has come out (``latency_samples`` frames
    after it), then stops exactly at the input's length.
    """

    def __init__(
        self, chain: Chain, blocksize: int, channels: int, emit: Callable[[np.ndarray], None]
    ) -> None:
        self.chain = chain
        self.blocksize = blocksize
        self.latency_samples = chain.latency_samples
        self._emit = emit
        self._block = np.zeros((blocksize, channels), dtype=np.float32)
        self._fill = 0
        self._skip = self.latency_samples  # output frames still to drop
        self._limit: int | None = None  # output frames wanted, known at finish()
        self.frames_in = 0
        self.frames_out = 0

    def push(self, audio: np.ndarray) -> None:
        """Feed ``audio`` (``(frames, channels)``); processes every block it completes."""
        i, n = 0, audio.shape[0]
        while i < n:
            k = min(self.blocksize - self._fill, n - i)
            self._block[self._fill : self._fill + k] = audio[i : i + k]
            self._fill += k
            self.frames_in += k
            i += k
            if self._fill == self.blocksize:
                self._run()

    def finish(self) -> None:
        """Flush: zero-pad and process until the output is as long as the input."""
        self._limit = self.frames_in
        while self.frames_out < self._limit:
            self._block[self._fill :] = 0.0
            self._run()

    def _run(self) -> None:
        self.chain.process(self._block)
        self._fill = 0
        start = min(self._skip, self.blocksize)
        self._skip -= start
        out = self._block[start:]
        if self._limit is not None:
            out = out[: self._limit - self.frames_out]
        if len(out):
            self._emit(out)
            self.frames_out += len(out)


#: progress in seconds of audio; the rate (audio seconds per second) is the speed in x real time
_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}, {rate_fmt}]"


def _check_blocksize(blocksize: int) -> int:
    if int(blocksize) != blocksize or blocksize < 1:
        raise ValueError(f"blocksize must be a whole number of frames >= 1, got {blocksize}")
    return int(blocksize)


def process_array(
    audio: np.ndarray, chain: Chain, blocksize: int = 512, sample_rate: float | None = None
) -> np.ndarray:
    """Run ``audio`` through ``chain`` and return the latency-compensated output.

    The output has the input's shape and lines up sample-exactly with it: output frame ``i`` is
    the chain's response to input frame ``i`` (its first ``latency_samples`` output frames are
    dropped and the tail is flushed with zeros). ``audio`` is not modified.

    Args:
        audio: float ``(frames, channels)`` input.
        chain: the chain to run; it is reset first so each call starts from silence.
        blocksize: frames per block fed to the chain (the last block is zero padded).
        sample_rate: rate in Hz to prepare the chain at (``chain.prepare(sample_rate,
            blocksize, channels)``). ``None`` uses the chain as already prepared, which must
            match the channels and allow ``blocksize`` frames.

    Returns:
        float32 ``(frames, channels)`` C-contiguous output.
    """
    blocksize = _check_blocksize(blocksize)
    audio = np.asarray(audio)
    if audio.ndim != 2:
        raise ValueError(f"audio must be (frames, channels), got shape {audio.shape}")
    channels = audio.shape[1]
    _prepare(chain, sample_rate, blocksize, channels)
    out = np.empty(audio.shape, dtype=np.float32)

    def emit(piece: np.ndarray) -> None:
        out[runner.frames_out : runner.frames_out + len(piece)] = piece

    runner = _AlignedRunner(chain, blocksize, channels, emit)
    runner.push(audio)
    runner.finish()
    return out


def _prepare(chain: Chain, sample_rate: float | None, blocksize: int, channels: int) -> None:
    if sample_rate is not None:
        chain.prepare(sample_rate, blocksize, channels)
        return
    if chain.sample_rate <= 0 or chain.channels != channels or chain.max_block < blocksize:
        raise ValueError(
            f"chain {chain.name!r} is prepared for {chain.channels} channels and blocks of "
            f"{chain.max_block} frames, not {channels} and {blocksize}; pass sample_rate to "
            f"prepare it"
        )
    chain.reset()


@dataclass(frozen=True)
class OfflineReport:
    """What :func:`process_file` did.

    Attributes:
        input_path: the file read.
        output_path: the file written.
        frames: frames written (= input frames at ``sample_rate``).
        sample_rate: processing and output rate, in Hz.
        channels: processing and output channels.
        seconds: duration of the audio, in seconds.
        wall_seconds: time the run took, in seconds.
        realtime_factor: ``wall_seconds / seconds`` (below 1 is faster than real time).
        speed: ``seconds / wall_seconds``, in "x real time".
        latency_samples: chain latency compensated, in samples.
        nonfinite_input: NaN/Inf sample values found in the input file (replaced with 0.0).
        nonfinite_output: NaN/Inf samples the chain's processors produced (replaced with 0.0).
        clipped: output samples clipped to [-1, 1] when writing an integer format.
    """

    input_path: Path
    output_path: Path
    frames: int
    sample_rate: int
    channels: int
    seconds: float
    wall_seconds: float
    realtime_factor: float
    speed: float
    latency_samples: int
    nonfinite_input: int
    nonfinite_output: int
    clipped: int

    @property
    def nonfinite_replaced(self) -> int:
        """All NaN/Inf samples replaced (input file and chain output)."""
        return self.nonfinite_input + self.nonfinite_output

    def summary(self) -> str:
        """One line for the CLI, e.g. ``wrote out.wav: 180.0 s at 48000 Hz, 2 ch in 3.1 s (58x faster
        than real time), ...``."""
        from noisyneuron.units import speed_words

        text = (
            f"wrote {self.output_path}: {self.seconds:.1f} s at {self.sample_rate} Hz, "
            f"{self.channels} ch in {self.wall_seconds:.1f} s ({speed_words(self.seconds, self.wall_seconds)}), "
            f"latency {self.latency_samples} samples compensated"
        )
        if self.nonfinite_replaced:
            text += f", {self.nonfinite_replaced} NaN/Inf samples replaced"
        if self.clipped:
            text += f", {self.clipped} samples clipped"
        return text


def process_file(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    chain: Chain,
    blocksize: int = 512,
    sample_rate: float | None = None,
    channels: int = 2,
    progress: bool = True,
    subtype: str | None = None,
    bitrate_kbps: int | None = None,
) -> OfflineReport:
    """Run a file through ``chain`` faster than real time and write the result.

    The input is streamed from disk (resampled to ``sample_rate`` and mapped to ``channels`` by
    :class:`~noisyneuron.audio.files.FileSource`), run through the block loop that
    :func:`process_array` uses (same latency alignment: the output has the input's length and
    lines up sample-exactly), and written with
    :class:`~noisyneuron.audio.files.FileSink`: the output appears at ``output_path`` only
    when complete. On Ctrl-C (KeyboardInterrupt) or any error, nothing new is left at
    ``output_path`` (an earlier file there is untouched), the unfinished output is kept as
    ``<name>.incomplete<ext>`` and the exception is re-raised. The output may not be the input,
    nor may its temporary ``<name>.partial<ext>`` (same path, hard link or symlink).

    Args:
        input_path: the file to process.
        output_path: the file to write; its extension picks the format.
        chain: the chain to run; it is prepared at (``sample_rate``, ``blocksize``, ``channels``).
        blocksize: frames per block, as live.
        sample_rate: processing and output rate in Hz; ``None`` keeps the input file's rate.
        channels: processing and output channel count.
        progress: show a tqdm progress bar (in seconds of audio) on stderr, when it is a terminal.
        subtype: output subtype (see :class:`~noisyneuron.audio.files.FileSink`).
        bitrate_kbps: for an MP3 output, a constant bitrate in kbit/s (None: LAME's variable
            default, about 128 kbit/s).

    Raises:
        AudioFileError: a bad input or output file, or an output that would overwrite the input
            (checked before any processing).
    """
    blocksize = _check_blocksize(blocksize)
    info = audio_info(input_path)
    check_not_an_input(output_path, [input_path])
    rate = info.sample_rate if sample_rate is None else sample_rate
    started = time.perf_counter()
    with FileSource(input_path, rate, channels, blocksize) as source:
        rate = source.sample_rate
        total = None if info.duration_seconds is None else round(info.duration_seconds, 1)
        chain.prepare(rate, blocksize, channels)
        with FileSink(output_path, rate, channels, subtype=subtype, inputs=[input_path], bitrate_kbps=bitrate_kbps) as sink:
            runner = _AlignedRunner(chain, blocksize, channels, sink.write)
            block = np.zeros((blocksize, channels), dtype=np.float32)
            bar = tqdm(
                total=total, unit="s", desc=Path(input_path).name, leave=False,
                disable=True if not progress else None,  # None: only on a terminal
                bar_format=None if total is None else _BAR_FORMAT,
            )
            with bar:
                while not source.finished:
                    n = source.read_into(block)
                    runner.push(block[:n])
                    bar.update(round(n / rate, 6))
                runner.finish()
        wall = time.perf_counter() - started
    seconds = sink.frames_written / rate
    return OfflineReport(
        input_path=Path(input_path),
        output_path=Path(output_path),
        frames=sink.frames_written,
        sample_rate=int(rate),
        channels=channels,
        seconds=seconds,
        wall_seconds=wall,
        realtime_factor=wall / seconds if seconds else 0.0,
        speed=seconds / wall if wall else float("inf"),
        latency_samples=runner.latency_samples,
        nonfinite_input=source.nonfinite,
        nonfinite_output=chain.nonfinite_out,
        clipped=sink.clipped,
    )
