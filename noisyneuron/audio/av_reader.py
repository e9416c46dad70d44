"""Reading what libsndfile cannot (M4A/AAC, Opus in MP4/WebM/Matroska, ALAC, WMA...) through
FFmpeg's decoders (PyAV), behind the small part of ``soundfile.SoundFile`` that
:mod:`noisyneuron.audio.files` uses: ``read(frames, dtype="float32", out=...)``, ``seek(0)``,
``close()``, ``samplerate``, ``channels``, ``frames``, ``format``, ``subtype``.

Decoding streams: packets are decoded as they are needed, so memory does not grow with the file.
The length is the container's estimate (``frames``; the decoded length may differ slightly, as for
MP3), or unknown.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["AvReader", "AV_EXTENSIONS", "av_available"]

#: Extensions read through FFmpeg (libsndfile reads WAV, FLAC, OGG, MP3 and more itself).
AV_EXTENSIONS = (".m4a", ".aac", ".mp4", ".m4b", ".opus", ".webm", ".mka", ".mkv", ".wma", ".alac", ".ac3")


def av_available() -> bool:
    """Whether PyAV (FFmpeg's decoders) can be imported here."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


class AvReader:
    """The first audio stream of a file, decoded to float32 ``(frames, channels)`` at its own
    rate and channel count.

    Args:
        path: the file.

    Raises:
        ValueError: the file holds no audio stream or cannot be opened (``str(error)`` says why).
    """

    def __init__(self, path: str | Path) -> None:
        import av

        self.path = Path(path)
        try:
            self._container = av.open(str(self.path), "r")
        except av.error.FFmpegError as error:
            raise ValueError(" ".join(str(error).split())) from None
        streams = self._container.streams.audio
        if not streams:
            self._container.close()
            raise ValueError("no audio stream in it")
        self._stream = streams[0]
        ctx = self._stream.codec_context
        self.samplerate = int(ctx.sample_rate or self._stream.rate or 0)
        self.channels = int(ctx.channels or len(getattr(ctx.layout, "channels", ())) or 0)
        self.format = str(self._container.format.name).split(",")[0].upper()
        self.subtype = str(ctx.name).upper()
        self.frames = self._estimated_frames()
        self._pending = np.zeros((0, max(1, self.channels)), dtype=np.float32)
        self._decoded = self._frames()

    def _estimated_frames(self) -> int | None:
        stream, container = self._stream, self._container
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            seconds = container.duration / 1_000_000.0  # av.time_base: microseconds
        else:
            return None
        return int(round(seconds * self.samplerate)) if seconds > 0 else None

    def _frames(self):
        """Decoded audio, chunk by chunk, float32 ``(n, channels)``."""
        import av

        for packet in self._container.demux(self._stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError as error:
                raise RuntimeError(f"decoding failed ({' '.join(str(error).split())})") from None
            for frame in frames:
                data = frame.to_ndarray()
                if frame.format.is_planar:  # (channels, n)
                    data = data.T
                else:  # (1, n * channels), interleaved
                    data = data.reshape(-1, self.channels)
                if data.dtype.kind == "i":
                    data = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
                yield np.ascontiguousarray(data, dtype=np.float32)

    def read(self, frames: int, dtype: str = "float32", out: np.ndarray | None = None) -> np.ndarray:
        """Up to ``frames`` frames into ``out`` (float32 ``(frames, channels)``); returns the
        filled part (shorter at the end of the file)."""
        if out is None:
            out = np.zeros((frames, self.channels), dtype=np.float32)
        n = 0
        while n < frames:
            if not len(self._pending):
                try:
                    self._pending = next(self._decoded)
                except StopIteration:
                    break
            take = min(frames - n, len(self._pending))
            out[n : n + take] = self._pending[:take]
            self._pending = self._pending[take:]
            n += take
        return out[:n]

    def seek(self, frame: int) -> None:
        """Back to the start (``frame`` must be 0: looping is all that needs it)."""
        if frame != 0:
            raise ValueError("AvReader seeks to the start only")
        self._container.seek(0, stream=self._stream)
        self._pending = np.zeros((0, max(1, self.channels)), dtype=np.float32)
        self._decoded = self._frames()

    def close(self) -> None:
        self._container.close()
