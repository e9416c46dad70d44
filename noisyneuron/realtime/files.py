"""Reading and writing audio files: whole files, streamed blocks, and atomic block writers.

Everything here works in float32 ``(frames, channels)`` arrays, C-contiguous, the layout the
:class:`~noisyneuron.realtime.chain.Chain` processes. Decoding and encoding use libsndfile (via
``soundfile``), resampling uses libsoxr (via ``soxr``) at its ``"HQ"`` quality.

- :func:`read_audio` / :func:`read_audio_checked` load a whole file (optionally resampled and
  channel-mapped); :func:`audio_info` describes a file without decoding it.
- :class:`FileSource` streams a file block by block, as if it were a device input, without
  loading it into memory (hours of audio are fine).
- :class:`FileSink` writes blocks to a temporary ``<name>.partial<ext>`` sibling and renames it
  to the requested name only when :meth:`FileSink.close` succeeds, so a file at the requested
  name is always complete.

Channel mapping (the same rule everywhere, when ``channels`` is given):

- equal channel counts: unchanged;
- mono file -> N channels: the mono signal is copied to every channel;
- stereo file -> mono: the average of left and right;
- file with more than 2 channels -> 1 or 2 channels (or any N below the file's count): the
  first N channels are used (the first two are front left/right in WAV and FLAC), mono is the
  average of the first two, and a one-line warning is printed on stderr, since the other
  channels are dropped. Downmix such files yourself first (e.g. ``ffmpeg -i in.wav -ac 2
  out.wav``) to keep every channel;
- any other request (e.g. stereo -> 4 channels) raises :class:`AudioFileError`.

NaN and infinite samples in (float) files are replaced with 0.0 and counted: see
:func:`read_audio_checked` and :attr:`FileSource.nonfinite`.

Every problem a user can cause (missing, corrupt, empty or unsupported files, a missing output
folder) raises :class:`~noisyneuron.errors.AudioFileError` with a one-line message that says
what is wrong and what to do.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from numba import njit

from noisyneuron.dsp.sanitize import replace_nonfinite
from noisyneuron.errors import AudioFileError

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "DEFAULT_SUBTYPES",
    "AudioInfo",
    "audio_info",
    "read_audio",
    "read_audio_checked",
    "FileSource",
    "FileSink",
    "partial_path_for",
]

_MP3 = "MP3" in sf.available_formats()

#: File extensions that can be read and written (lower case, with the dot). Reading also accepts
#: anything else libsndfile recognises by its content (AIFF, W64, CAF...), whatever its name.
SUPPORTED_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg") + ((".mp3",) if _MP3 else ())

_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}

#: Subtype written when :class:`FileSink` is given none: 24-bit PCM for WAV and FLAC (the
#: float32 audio is clipped to [-1, 1] and the clipped samples counted), Vorbis for OGG and
#: MPEG layer III for MP3. Ask for ``subtype="FLOAT"`` to write unclipped 32-bit float WAV.
DEFAULT_SUBTYPES = {".wav": "PCM_24", ".flac": "PCM_24", ".ogg": "VORBIS", ".mp3": "MPEG_LAYER_III"}

_FLOAT_SUBTYPES = {"FLOAT", "DOUBLE"}
_RESAMPLE_QUALITY = "HQ"
_READ_CHUNK = 65536  # frames read from disk at a time (input rate)
_UNKNOWN_LENGTH = 2**62  # libsndfile reports SF_COUNT_MAX frames for unfinished FLAC files
_WAV_LIKE = {"WAV", "WAVEX", "W64", "RF64", "AIFF", "CAF"}
_SFC_UPDATE_HEADER_NOW = 0x1060  # libsndfile sf_command: rewrite the header now


def _warn(message: str) -> None:
    print(f"noisyneuron: warning: {message}", file=sys.stderr)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _libsndfile_reason(error: Exception) -> str:
    return _one_line(getattr(error, "error_string", None) or error).rstrip(".")


# ----- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header (nothing is decoded).

    Attributes:
        path: the file.
        frames: length in frames (samples per channel), or ``None`` when the file does not say
            (an unfinished FLAC file). Approximate for MP3 (the decoded length may differ).
        sample_rate: sample rate in Hz.
        channels: number of channels.
        format: container, as libsndfile names it (``"WAV"``, ``"FLAC"``, ``"OGG"``, ``"MP3"``...).
        subtype: sample encoding (``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``, ``"VORBIS"``...).
        duration_seconds: ``frames / sample_rate``, in seconds, or ``None`` when unknown.
    """

    path: Path
    frames: int | None
    sample_rate: int
    channels: int
    format: str
    subtype: str
    duration_seconds: float | None

    @property
    def is_float(self) -> bool:
        """True for float sample encodings (the only ones that can hold NaN or Inf)."""
        return self.subtype in _FLOAT_SUBTYPES


def _open_for_read(path: str | os.PathLike) -> tuple[sf.SoundFile, AudioInfo]:
    """Open ``path`` for reading, translating every failure into a one-line AudioFileError."""
    path = Path(path)
    if not path.exists():
        raise AudioFileError(f"{path}: no such file; check the path and the spelling")
    if path.is_dir():
        raise AudioFileError(f"{path} is a folder, not an audio file; give the path of a file in it")
    if not os.access(path, os.R_OK):
        raise AudioFileError(f"{path}: permission denied; make the file readable")
    if path.stat().st_size == 0:
        raise AudioFileError(f"{path} is empty (0 bytes); it holds no audio, pick another file")
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as error:
        reason = _libsndfile_reason(error)
        if "not recognised" in reason.lower():
            raise AudioFileError(
                f"{path}: not a readable audio file (corrupt, or a format libsndfile cannot decode "
                f"such as AAC/M4A); use WAV, FLAC, OGG or MP3, e.g. ffmpeg -i {path} out.wav"
            ) from None
        raise AudioFileError(
            f"{path}: cannot read it ({reason}); the file is corrupt or truncated, use another copy"
        ) from None
    if f.channels < 1 or f.samplerate <= 0:
        f.close()
        raise AudioFileError(
            f"{path}: the header says {f.channels} channels at {f.samplerate} Hz; the file is "
            f"corrupt, use another copy"
        )
    frames = None if f.frames >= _UNKNOWN_LENGTH else int(f.frames)
    info = AudioInfo(
        path=path,
        frames=frames,
        sample_rate=int(f.samplerate),
        channels=int(f.channels),
        format=str(f.format),
        subtype=str(f.subtype),
        duration_seconds=None if frames is None else frames / f.samplerate,
    )
    if frames == 0:
        f.close()
        raise AudioFileError(f"{path} holds no audio (0 frames); pick another file")
    return f, info


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Describe ``path`` (frames, sample rate in Hz, channels, format, duration in seconds).

    Raises:
        AudioFileError: missing file, folder, unreadable, corrupt, empty or unsupported file.
    """
    f, info = _open_for_read(path)
    f.close()
    return info


def _check_request(sample_rate: float | None, channels: int | None) -> None:
    if sample_rate is not None and not (np.isfinite(sample_rate) and sample_rate > 0):
        raise AudioFileError(f"sample rate must be a positive number of Hz, got {sample_rate}")
    if channels is not None and (int(channels) != channels or channels < 1):
        raise AudioFileError(f"channel count must be a whole number >= 1, got {channels}")


def _channel_plan(info: AudioInfo, channels: int | None) -> tuple[int, int]:
    """Return (channels used from the file, channels produced), following the module's rule.

    Raises AudioFileError for mappings the rule does not define and warns when channels are dropped.
    """
    have = info.channels
    want = have if channels is None else int(channels)
    if want == have or have == 1:
        return have, want
    if want == 1:  # average of the first two channels
        if have > 2:
            _warn(
                f"{info.path} has {have} channels; making mono from the first two only - downmix "
                f"it first (e.g. ffmpeg -i {info.path} -ac 1 out.wav) to use them all"
            )
        return 2, 1
    if want < have:
        _warn(
            f"{info.path} has {have} channels; using only the first {want} - downmix it first "
            f"(e.g. ffmpeg -i {info.path} -ac {want} out.wav) to use them all"
        )
        return want, want
    raise AudioFileError(
        f"{info.path} has {have} channels and cannot be mapped to {want}; ask for 1, 2 or {have} "
        f"channels"
    )


class _Decoder:
    """Reads a file in chunks and turns them into float32 audio at the requested rate and
    channel count. The one implementation behind :func:`read_audio` and :class:`FileSource`.

    Steps per chunk: read (file rate, file channels) -> replace NaN/Inf (counted) -> keep the
    channels the rule uses / average to mono -> resample (soxr streaming, HQ) -> copy mono to
    every requested channel.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        sample_rate: float | None,
        channels: int | None,
        loop: bool = False,
        chunk_frames: int = _READ_CHUNK,
    ) -> None:
        _check_request(sample_rate, channels)
        self._file, self.info = _open_for_read(path)
        try:
            self._use, self.channels = _channel_plan(self.info, channels)
        except AudioFileError:
            self._file.close()
            raise
        self._mono = self.channels == 1 and self._use == 2
        self._inner = 1 if self._mono else min(self._use, self.channels)
        rate = self.info.sample_rate if sample_rate is None else sample_rate
        self.sample_rate = int(rate) if float(rate).is_integer() else float(rate)
        self._resampler = None
        if self.sample_rate != self.info.sample_rate:
            self._resampler = soxr.ResampleStream(
                self.info.sample_rate, self.sample_rate, self._inner, dtype="float32",
                quality=_RESAMPLE_QUALITY,
            )
        self.loop = loop
        self.nonfinite = 0
        self._buffer = np.zeros((chunk_frames, self.info.channels), dtype=np.float32)
        self._position = 0  # frames read from the file in this pass
        self._read_in_pass = 0
        self.done = False
        self._unknown_length = self.info.frames is None

    def close(self) -> None:
        self._file.close()

    def _read_raw(self) -> int:
        """Read up to one chunk from the file into ``self._buffer``; return frames read."""
        try:
            if self._unknown_length:
                # soundfile seeks after each read, which fails for FLAC files of unknown length.
                ptr = sf._ffi.cast("float*", self._buffer.ctypes.data)
                n = int(sf._snd.sf_readf_float(self._file._file, ptr, len(self._buffer)))
            else:
                n = self._file.read(len(self._buffer), dtype="float32", out=self._buffer)
                n = len(n)
        except (sf.LibsndfileError, RuntimeError) as error:
            raise AudioFileError(
                f"{self.info.path}: read failed at frame {self._position} "
                f"({_libsndfile_reason(error)}); the file is corrupt or truncated"
            ) from None
        self._position += n
        return n

    def next_chunk(self) -> np.ndarray | None:
        """The next chunk of converted audio (possibly 0 frames), or ``None`` at the end."""
        if self.done:
            return None
        n = self._read_raw()
        last = False
        if n < len(self._buffer):  # end of the file
            self._read_in_pass += n
            if self.loop and self._read_in_pass > 0:
                self._file.seek(0)
                self._position = 0
                self._read_in_pass = 0
            else:
                last = True
        else:
            self._read_in_pass += n
        raw = self._buffer[:n]
        if self.info.is_float:
            self.nonfinite += replace_nonfinite(raw)
        if self._mono:
            x = np.add(raw[:, 0], raw[:, 1])
            x *= 0.5
            x = x[:, None]
        elif self._resampler is None:
            x = raw[:, : self._inner].copy()  # the chunk must not share the reused read buffer
        else:
            x = np.ascontiguousarray(raw[:, : self._inner])
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x, last=last)  # a new array
            if x.ndim == 1:
                x = x[:, None]
        if x.shape[1] != self.channels:
            x = np.repeat(x, self.channels, axis=1)
        if last:
            self.done = True
            self.close()
        return x


def read_audio_checked(
    path: str | os.PathLike, sample_rate: float | None = None, channels: int | None = None
) -> tuple[np.ndarray, int, int]:
    """Read a whole file; also return how many NaN/Inf samples were replaced.

    Args:
        path: the file (WAV, FLAC, OGG, MP3, or anything libsndfile recognises by content).
        sample_rate: rate to return, in Hz; the file is resampled (soxr, HQ) when it differs.
            ``None`` keeps the file's rate.
        channels: channel count to return, mapped by the module's channel rule (mono copied to
            every channel, stereo averaged to mono, extra channels dropped with a warning).
            ``None`` keeps the file's channels.

    Returns:
        ``(audio, sample_rate, nonfinite)``: float32 ``(frames, channels)`` C-contiguous audio,
        its rate in Hz, and the number of NaN/Inf sample values found in the file (counted
        before channel mapping and resampling; each was replaced with 0.0).

    Raises:
        AudioFileError: missing file, folder, unreadable, corrupt, empty (0 frames) or
            unsupported file, or an impossible channel mapping.
    """
    decoder = _Decoder(path, sample_rate, channels)
    chunks = []
    try:
        while (chunk := decoder.next_chunk()) is not None:
            if len(chunk):
                chunks.append(chunk)
    finally:
        decoder.close()
    if not chunks:
        raise AudioFileError(f"{decoder.info.path} holds no audio (0 frames); pick another file")
    audio = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    return np.ascontiguousarray(audio, dtype=np.float32), decoder.sample_rate, decoder.nonfinite


def read_audio(
    path: str | os.PathLike, sample_rate: float | None = None, channels: int | None = None
) -> tuple[np.ndarray, int]:
    """Read a whole file as float32 ``(frames, channels)`` audio; return ``(audio, sample_rate)``.

    The same as :func:`read_audio_checked` without the NaN/Inf count (they are still replaced
    with 0.0). ``sample_rate`` is in Hz; see :func:`read_audio_checked` for the arguments.

    Raises:
        AudioFileError: see :func:`read_audio_checked`.
    """
    audio, rate, _ = read_audio_checked(path, sample_rate, channels)
    return audio, rate


class FileSource:
    """Plays a file block by block, as if it were a device input, streaming it from disk.

    The file is decoded in chunks of 65536 frames, converted to ``channels`` (module channel
    rule) and resampled to ``sample_rate`` with a soxr streaming resampler, so memory use does
    not grow with the file's length.

    :meth:`read_into` does disk I/O: call it from a processing or reader thread, never from the
    PortAudio callback.

    Args:
        path: the file to play.
        sample_rate: rate of the blocks produced, in Hz.
        channels: channels of the blocks produced.
        blocksize: the usual block length, in frames (blocks of other lengths also work).
        loop: start again at the beginning when the file ends, seamlessly (the resampler runs
            on across the loop point); :attr:`finished` then never becomes true.

    Attributes:
        info: :class:`AudioInfo` of the file.
        nonfinite: NaN/Inf sample values found in the file so far (replaced with 0.0).
        position: frames delivered so far, at ``sample_rate``.

    Raises:
        AudioFileError: see :func:`read_audio_checked`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        sample_rate: float,
        channels: int,
        blocksize: int,
        loop: bool = False,
    ) -> None:
        if blocksize < 1:
            raise ValueError(f"blocksize must be >= 1 frame, got {blocksize}")
        self._decoder = _Decoder(path, sample_rate, channels, loop=loop)
        self.info = self._decoder.info
        self.sample_rate = self._decoder.sample_rate
        self.channels = self._decoder.channels
        self.blocksize = int(blocksize)
        self.loop = loop
        self.position = 0
        self._chunk = np.zeros((0, self.channels), dtype=np.float32)
        self._offset = 0
        self._ended = False

    @property
    def nonfinite(self) -> int:
        """NaN/Inf sample values found in the file so far (each replaced with 0.0)."""
        return self._decoder.nonfinite

    @property
    def finished(self) -> bool:
        """True once every frame of the file has been delivered (never, when looping)."""
        return self._ended and self._offset >= len(self._chunk)

    def read_into(self, block: np.ndarray) -> int:
        """Fill ``block`` (float32 ``(frames, channels)``) with the next frames of the file.

        Returns the number of frames that came from the file; the rest of ``block`` (after the
        end of the file) is filled with silence. Does disk I/O (not for the audio callback).
        """
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise ValueError(f"block must be (frames, {self.channels}), got {block.shape}")
        frames = block.shape[0]
        filled = 0
        while filled < frames:
            if self._offset >= len(self._chunk):
                chunk = None if self._ended else self._decoder.next_chunk()
                if chunk is None:
                    self._ended = True
                    break
                self._chunk, self._offset = chunk, 0
                continue
            k = min(frames - filled, len(self._chunk) - self._offset)
            block[filled : filled + k] = self._chunk[self._offset : self._offset + k]
            filled += k
            self._offset += k
        block[filled:] = 0.0
        if self._decoder.done and self._offset >= len(self._chunk):
            self._ended = True  # the last frame is out: finished without another call
        self.position += filled
        return filled

    def close(self) -> None:
        """Close the file (also done automatically at its end)."""
        self._decoder.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----- writing ---------------------------------------------------------------------------------


@njit(nogil=True, cache=True)
def _clip_count(flat, limit):
    count = 0
    for i in range(flat.shape[0]):
        v = flat[i]
        if v > limit:
            flat[i] = limit
            count += 1
        elif v < -limit:
            flat[i] = -limit
            count += 1
    return count


def partial_path_for(path: str | os.PathLike) -> Path:
    """The temporary name :class:`FileSink` writes to: ``song.wav`` -> ``song.partial.wav``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.partial{path.suffix}")


class FileSink:
    """Writes float32 ``(frames, channels)`` blocks to an audio file, atomically.

    The audio goes to ``<name>.partial<ext>`` next to ``path`` (e.g. ``take.partial.wav``);
    :meth:`close` finishes that file and renames it to ``path`` in one step (replacing any file
    already there), so a file at ``path`` is always complete. About every second of audio
    (``flush_seconds``) the partial file's header is rewritten and its data flushed to disk, so
    a killed process leaves a readable partial file. Leaving a ``with`` block on an exception
    keeps the partial file under its partial name, leaves nothing new at ``path`` and says so on
    stderr.

    The format follows the extension (see :data:`SUPPORTED_EXTENSIONS`). The default subtype is
    24-bit PCM for WAV and FLAC (:data:`DEFAULT_SUBTYPES`); for every non-float subtype the audio
    is clipped to [-1, 1] and the clipped samples counted in :attr:`clipped`. Pass
    ``subtype="FLOAT"`` for unclipped 32-bit float WAV. NaN/Inf samples are written as 0.0 and
    counted in :attr:`nonfinite`.

    Args:
        path: the finished file's name.
        sample_rate: sample rate in Hz.
        channels: number of channels.
        subtype: libsndfile subtype (``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``...), or ``None``
            for the default.
        flush_seconds: audio written between header updates and flushes, in seconds.

    Raises:
        AudioFileError: unsupported extension or subtype, missing output folder, a path that is
            a folder, or a format that cannot take this rate or channel count (e.g. MP3 at 96 kHz).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        sample_rate: float,
        channels: int,
        subtype: str | None = None,
        flush_seconds: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self.partial_path = partial_path_for(self.path)
        ext = self.path.suffix.lower()
        if ext not in SUPPORTED_EXTENSIONS:
            raise AudioFileError(
                f"{self.path}: cannot write {ext or 'files without an extension'}; end the name "
                f"with one of {', '.join(SUPPORTED_EXTENSIONS)}"
            )
        _check_request(sample_rate, channels)
        if not float(sample_rate).is_integer():
            raise AudioFileError(f"sample rate must be a whole number of Hz to write a file, got {sample_rate}")
        folder = self.path.parent
        if not folder.is_dir():
            raise AudioFileError(
                f"{self.path}: the folder {folder} does not exist; create it first or write elsewhere"
            )
        if self.path.is_dir():
            raise AudioFileError(f"{self.path} is a folder; give a file name to write")
        self.format = _FORMATS[ext]
        self.subtype = (subtype or DEFAULT_SUBTYPES[ext]).upper()
        if not sf.check_format(self.format, self.subtype):
            valid = ", ".join(sorted(sf.available_subtypes(self.format)))
            raise AudioFileError(
                f"{self.path}: {ext} files cannot use subtype {self.subtype}; use one of {valid}"
            )
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self._clip = self.subtype not in _FLOAT_SUBTYPES
        existed = self.partial_path.exists()
        try:
            self._file = sf.SoundFile(
                str(self.partial_path), "w", self.sample_rate, self.channels,
                subtype=self.subtype, format=self.format,
            )
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as error:
            reason = _libsndfile_reason(error)
            if not existed and self.partial_path.exists():
                self.partial_path.unlink()
            if not os.access(folder, os.W_OK):
                reason = f"no permission to write in {folder}"
            raise AudioFileError(
                f"{self.path}: cannot write it ({reason}); change the rate, channels, format or folder"
            ) from None
        self._header_updates = self.format in _WAV_LIKE
        self._flush_every = max(1, int(round(flush_seconds * self.sample_rate)))
        self._since_flush = 0
        self._scratch = np.zeros((0, self.channels), dtype=np.float32)
        self.frames_written = 0
        self.clipped = 0
        self.nonfinite = 0
        self.closed = False
        self.kept_partial = False

    def write(self, block: np.ndarray) -> None:
        """Append ``block`` (float ``(frames, channels)``); ``block`` itself is not modified."""
        if self.closed:
            raise RuntimeError(f"{self.path}: write after close")
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise ValueError(f"block must be (frames, {self.channels}), got {block.shape}")
        n = block.shape[0]
        if n == 0:
            return
        if len(self._scratch) < n:
            self._scratch = np.zeros((n, self.channels), dtype=np.float32)
        scratch = self._scratch[:n]
        scratch[...] = block
        self.nonfinite += replace_nonfinite(scratch)
        if self._clip:
            self.clipped += int(_clip_count(scratch.reshape(-1), np.float32(1.0)))
        try:
            self._file.write(scratch)
        except (sf.LibsndfileError, RuntimeError) as error:
            raise AudioFileError(
                f"{self.partial_path}: write failed ({_libsndfile_reason(error)}); check the free "
                f"disk space"
            ) from None
        self.frames_written += n
        self._since_flush += n
        if self._since_flush >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        """Make the partial file readable as it stands: rewrite its header (WAV) and flush."""
        if self.closed:
            return
        if self._header_updates:
            sf._snd.sf_command(self._file._file, _SFC_UPDATE_HEADER_NOW, sf._ffi.NULL, 0)
        self._file.flush()
        self._since_flush = 0

    def close(self) -> None:
        """Finish the file and rename it to :attr:`path` (replacing any file there)."""
        if self.closed:
            return
        self.closed = True
        self._file.close()
        os.replace(self.partial_path, self.path)

    def abort(self, reason: str = "stopped") -> None:
        """Finish the partial file but keep it under :attr:`partial_path`; say so on stderr."""
        if self.closed:
            return
        self.closed = True
        self.kept_partial = True
        self._file.close()
        seconds = self.frames_written / self.sample_rate
        _warn(
            f"{reason}: {self.path} was not written; the unfinished output ({seconds:.1f} s) is "
            f"kept as {self.partial_path}"
        )

    def __enter__(self) -> FileSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort(f"{exc_type.__name__}" + (f" ({_one_line(exc)})" if str(exc) else ""))
