"""Reading and writing audio files: whole files, streamed blocks, and atomic block writers.

Everything here works in float32 ``(frames, channels)`` arrays, C-contiguous, the layout the
:class:`~noisyneuron.realtime.chain.Chain` processes. Decoding and encoding use libsndfile (via
``soundfile``), resampling uses libsoxr (via ``soxr``) at its ``"HQ"`` quality.

- :func:`read_audio` / :func:`read_audio_checked` load a whole file (optionally resampled and
  channel-mapped); :func:`audio_info` describes a file without decoding it.
- :class:`FileSource` streams a file block by block, as if it were a device input, without
  loading it into memory (hours of audio are fine).
- :class:`FileSink` writes blocks to a temporary ``<name>.partial<ext>`` sibling and renames it
  to the requested name only when :meth:`FileSink.close` succeeds (flushed, fsynced, closed and
  its length checked), so a file at the requested name is always complete. A run that stops
  early or fails keeps what it wrote as ``<name>.incomplete<ext>``. A sink never writes over
  the files it was told are its inputs (:func:`check_not_an_input`).

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

A file that holds less audio than its header says (a truncated WAV or MP3) is decoded to the
length it has, with a one-line warning on stderr giving both lengths.

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

from noisyneuron.audio.atomic import fsync_folder, partial_sibling
from noisyneuron.audio.av_reader import AV_EXTENSIONS
from noisyneuron.dsp.sanitize import replace_nonfinite
from noisyneuron.errors import AudioFileError

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "READABLE_EXTENSIONS",
    "MP3_BITRATES",
    "DEFAULT_SUBTYPES",
    "AudioInfo",
    "audio_info",
    "read_audio",
    "read_audio_checked",
    "FileSource",
    "FileSink",
    "partial_path_for",
    "incomplete_path_for",
    "check_not_an_input",
]

_MP3 = "MP3" in sf.available_formats()

#: File extensions that can be read and written (lower case, with the dot). Reading also accepts
#: anything else libsndfile recognises by its content (AIFF, W64, CAF...), whatever its name.
SUPPORTED_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg") + ((".mp3",) if _MP3 else ())

#: File extensions read (and recognised as files on the command line): the above, and through
#: FFmpeg's decoders M4A/AAC, Opus, ALAC, WMA... (:mod:`noisyneuron.audio.av_reader`).
READABLE_EXTENSIONS: tuple[str, ...] = SUPPORTED_EXTENSIONS + AV_EXTENSIONS

_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}

#: Constant bitrates an MP3 can be written at (kbit/s), for :class:`FileSink`'s ``bitrate_kbps``
#: (``--bitrate``); without one, LAME's default (variable, about 128 kbit/s).
MP3_BITRATES = (64, 80, 96, 112, 128, 160, 192, 224, 256, 320)

#: Subtype written when :class:`FileSink` is given none: 24-bit PCM for WAV and FLAC (the
#: float32 audio is clipped to [-1, 1] and the clipped samples counted), Vorbis for OGG and
#: MPEG layer III for MP3. Ask for ``subtype="FLOAT"`` to write unclipped 32-bit float WAV.
DEFAULT_SUBTYPES = {".wav": "PCM_24", ".flac": "PCM_24", ".ogg": "VORBIS", ".mp3": "MPEG_LAYER_III"}

_FLOAT_SUBTYPES = {"FLOAT", "DOUBLE"}
_RESAMPLE_QUALITY = "HQ"
_READ_CHUNK = 65536  # frames read from disk at a time (input rate)
_UNKNOWN_LENGTH = 2**62  # libsndfile reports SF_COUNT_MAX frames for unfinished FLAC files
_WAV_LIKE = {"WAV", "WAVEX", "W64", "RF64", "AIFF", "CAF"}
_MP3_SLACK_FRAMES = 2304  # two MPEG frames: MP3 lengths are approximate by that much
_warned_short: set = set()  # files already warned about as shorter than their header says


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


def _open_with_ffmpeg(path: Path, libsndfile_reason: str | None):
    """``path`` through FFmpeg's decoders (:class:`~noisyneuron.audio.av_reader.AvReader`), for
    what libsndfile cannot read (M4A/AAC, Opus, ALAC...); one-line AudioFileError otherwise."""
    from noisyneuron.audio.av_reader import AvReader, av_available

    if not av_available():
        raise AudioFileError(
            f"{path}: libsndfile cannot read this format and PyAV (FFmpeg's decoders) is not installed; "
            f"pip install av, or convert it: ffmpeg -i {path} out.wav"
        )
    try:
        return AvReader(path)
    except ValueError as error:
        if libsndfile_reason is not None:
            raise AudioFileError(f"{path}: not a readable audio file (corrupt, or not audio: {error})") from None
        raise AudioFileError(f"{path}: cannot read it ({error}); the file is corrupt or truncated, use another copy") from None


class _SoundFile(sf.SoundFile):
    """soundfile's reader, reading straight on when libsndfile does not know the length.

    After each read of a seekable file, ``SoundFile.read`` moves to where it thinks it is with
    ``seek``, and libsndfile cannot seek in a FLAC file of unknown length (an unfinished one, left
    by a killed writer: it reports ``SF_COUNT_MAX`` frames); reported as not seekable, ``read``
    reads on without seeking (it then needs a frame count, which every read here gives).
    :meth:`seek` itself still works (``FileSource``'s ``loop`` goes back to the start)."""

    def seekable(self) -> bool:
        return super().seekable() and self.frames < _UNKNOWN_LENGTH


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
    if path.suffix.lower() in AV_EXTENSIONS:
        f = _open_with_ffmpeg(path, None)
    else:
        try:
            f = _SoundFile(str(path))
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as error:
            reason = _libsndfile_reason(error)
            if "not recognised" not in reason.lower():
                raise AudioFileError(
                    f"{path}: cannot read it ({reason}); the file is corrupt or truncated, use another copy"
                ) from None
            f = _open_with_ffmpeg(path, reason)
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


def _riff_claimed_frames(path: Path) -> int | None:
    """Frames a RIFF/WAVE file's ``data`` chunk header claims (libsndfile silently clamps a
    claim longer than the file to what is there), or None when it says nothing usable."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = 0
            for _ in range(64):  # chunks before 'data' (fmt, LIST, fact, bext...)
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], int.from_bytes(chunk[4:], "little")
                if cid == b"data":
                    if block_align <= 0 or size in (0, 0xFFFFFFFF):  # unknown (streamed, RF64)
                        return None
                    return size // block_align
                body = f.read(min(size, 64)) if cid == b"fmt " else b""
                if cid == b"fmt " and len(body) >= 14:
                    block_align = int.from_bytes(body[12:14], "little")
                f.seek(size + (size & 1) - len(body), os.SEEK_CUR)
    except OSError:
        return None
    return None


def _claimed_frames(info: AudioInfo) -> int | None:
    """The length the file's header claims, in frames at the file's rate (None: unknown)."""
    claimed = info.frames
    if info.format in ("WAV", "WAVEX"):
        riff = _riff_claimed_frames(info.path)
        if riff is not None and (claimed is None or riff > claimed):
            claimed = riff
    return claimed


def _warn_if_short(info: AudioInfo, claimed: int | None, decoded: int) -> None:
    """One line on stderr when a file decoded to fewer frames than its header claims."""
    if claimed is None:
        return
    approximate = info.format == "MP3" or info.path.suffix.lower() in AV_EXTENSIONS  # lengths from estimates
    slack = max(_MP3_SLACK_FRAMES, claimed // 100) if approximate else 0
    if decoded >= claimed - slack:
        return
    try:
        st = info.path.stat()
        key = (str(info.path.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        key = (str(info.path), 0, 0)
    if key in _warned_short:
        return
    _warned_short.add(key)
    rate = info.sample_rate
    _warn(
        f"{info.path}: the header says {claimed / rate:.3f} s ({claimed} frames) but the file holds "
        f"only {decoded / rate:.3f} s ({decoded} frames); it is truncated, using the "
        f"{decoded / rate:.3f} s there are"
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
        self._unknown_length = self.info.frames is None and isinstance(self._file, sf.SoundFile)
        self._claimed = _claimed_frames(self.info)
        self._first_pass = True

    def close(self) -> None:
        self._file.close()

    def _read_raw(self) -> int:
        """Read up to one chunk from the file into ``self._buffer``; return frames read."""
        try:  # a file of unknown length is read without seeking (_SoundFile)
            n = len(self._file.read(len(self._buffer), dtype="float32", out=self._buffer))
        except (sf.LibsndfileError, RuntimeError) as error:  # RuntimeError: FFmpeg's decoders too
            n = self._decoded_before_damage()
            if n is not None:
                self._position += n
                return n
            raise AudioFileError(
                f"{self.info.path}: read failed at frame {self._position} "
                f"({_libsndfile_reason(error)}); the file is corrupt or truncated"
            ) from None
        self._position += n
        return n

    def _decoded_before_damage(self) -> int | None:
        """Frames the failed read still decoded, for a file of unknown length (None otherwise).

        An unfinished FLAC file (its writer was stopped, or its disk filled) decodes up to its
        cut-off last frame, where libsndfile reports lost sync after handing over what it
        decoded: those frames are the file's end, as :meth:`next_chunk` then treats them."""
        if not self._unknown_length:
            return None
        try:
            return max(0, int(self._file.tell()) - self._position)
        except (sf.LibsndfileError, RuntimeError):
            return None

    def next_chunk(self) -> np.ndarray | None:
        """The next chunk of converted audio (possibly 0 frames), or ``None`` at the end."""
        if self.done:
            return None
        n = self._read_raw()
        last = False
        if n < len(self._buffer):  # end of the file
            self._read_in_pass += n
            if self._first_pass:
                self._first_pass = False
                _warn_if_short(self.info, self._claimed, self._read_in_pass)
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
        path: the file (WAV, FLAC, OGG, MP3, anything libsndfile recognises by content, and
            through FFmpeg's decoders M4A/AAC, Opus, ALAC, WMA...).
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


def _clip_count(block: np.ndarray, limit: float) -> int:
    """Clip ``block`` to ``[-limit, limit]`` in place; return how many samples were beyond it.
    Unclipped audio (the common case) costs a max and a min and allocates no array."""
    if block.size == 0 or (block.max() <= limit and block.min() >= -limit):
        return 0
    count = int(np.count_nonzero(np.abs(block) > limit))
    np.clip(block, -limit, limit, out=block)
    return count


def partial_path_for(path: str | os.PathLike) -> Path:
    """The temporary name :class:`FileSink` writes to: ``song.wav`` -> ``song.partial.wav`` (fixed,
    not unique: a later sink finds an earlier killed one's and keeps it as incomplete)."""
    return partial_sibling(path, keep_suffix=True, unique=False)


def incomplete_path_for(path: str | os.PathLike) -> Path:
    """The name unfinished output is kept under: ``song.wav`` -> ``song.incomplete.wav``
    (:meth:`FileSink.abort` adds ``-2``, ``-3``... rather than replace an earlier one)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.incomplete{path.suffix}")


def _same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file (the same path, a hard link or a symlink)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (or cannot be examined): compare the names
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def check_not_an_input(path: str | os.PathLike, inputs) -> None:
    """Refuse to write ``path`` when it, or the temporary file :class:`FileSink` would write on
    the way (``<name>.partial<ext>``), is one of ``inputs``: the same path, a hard link to it, or
    a symlink to it.

    Raises:
        AudioFileError: one line naming the input.
    """
    path = Path(path)
    partial = partial_path_for(path)
    for source in inputs or ():
        source = Path(source)
        if _same_file(path, source):
            which = "the input" if str(path) == str(source) else f"the input {source} (the same file)"
            raise AudioFileError(
                f"{path} is {which}; writing it would destroy the input, give another output name"
            )
        if os.path.lexists(partial) and _same_file(partial, source):
            raise AudioFileError(
                f"{path}: its temporary file {partial} is the input {source}; writing it would "
                f"destroy the input, give another output name (or rename the input)"
            )


def _keep_under_new_name(src: Path, wanted: Path) -> Path:
    """Rename ``src`` to ``wanted``, or to ``<stem>-2<ext>``, ``-3``... never replacing a file."""
    for k in range(1, 1000):
        target = wanted if k == 1 else wanted.with_name(f"{wanted.stem}-{k}{wanted.suffix}")
        try:
            os.link(src, target)  # fails if target exists: nothing is replaced
        except FileExistsError:
            continue
        except OSError:  # no hard links here (e.g. FAT): check, then rename
            if os.path.lexists(target):
                continue
            os.replace(src, target)
            return target
        os.unlink(src)
        return target
    raise AudioFileError(f"{src}: 999 earlier unfinished files named like {wanted}; clear some away")


class FileSink:
    """Writes float32 ``(frames, channels)`` blocks to an audio file, atomically.

    The audio goes to ``<name>.partial<ext>`` next to ``path`` (e.g. ``take.partial.wav``).
    :meth:`close` finishes that file (libsndfile close, ``fsync``, file close, and a check that
    the file reads back with the length written) and only then renames it to ``path`` in one step
    (replacing any file already there), so a file at ``path`` is always complete. About every
    second of audio (``flush_seconds``) the partial file's header is rewritten and its data
    flushed to disk, so a killed process leaves a readable partial file.

    When anything fails (a write, e.g. a full disk; the close or the check), or the writer is
    stopped with :meth:`abort` (leaving a ``with`` block on an exception does that), nothing new
    appears at ``path``: what was written is kept, with a valid header, as
    ``<name>.incomplete<ext>`` (``-2``, ``-3``... if that exists; removed if nothing was written),
    and one line on stderr says so. A failed :meth:`close` raises :class:`AudioFileError`. A
    partial file left by an earlier killed run is moved to the incomplete name, not overwritten.

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
        inputs: files the output must never overwrite (see :func:`check_not_an_input`).
        bitrate_kbps: for MP3, a constant bitrate in kbit/s (one of :data:`MP3_BITRATES`);
            ``None``: LAME's default.

    Attributes:
        kept_path: where unfinished output was kept (None while writing, after a successful
            close, or when nothing had been written).

    Raises:
        AudioFileError: unsupported extension or subtype, missing output folder, a path that is
            a folder or one of ``inputs``, or a format that cannot take this rate or channel
            count (e.g. MP3 at 96 kHz).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        sample_rate: float,
        channels: int,
        subtype: str | None = None,
        flush_seconds: float = 1.0,
        inputs=(),
        bitrate_kbps: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.partial_path = partial_path_for(self.path)
        ext = self.path.suffix.lower()
        if bitrate_kbps is not None and (ext != ".mp3" or int(bitrate_kbps) not in MP3_BITRATES):
            raise AudioFileError(
                f"{self.path}: a bitrate is for MP3 files, one of {', '.join(map(str, MP3_BITRATES))} kbit/s"
                if ext == ".mp3" else f"{self.path}: --bitrate is for MP3 output; {ext} files are lossless or set their own")
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
        check_not_an_input(self.path, inputs)
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
        self._set_aside_stale_partial()
        self._fd: int | None = None
        try:
            # A new file (O_EXCL): never written through a link that happens to be there. Read and
            # write: flush() reopens WAV files in "r+" mode to rewrite their header.
            self._fd = os.open(
                self.partial_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666
            )
            lossy = {} if bitrate_kbps is None else {  # libsndfile: 320 - 288 * level kbit/s, constant
                "compression_level": (320 - int(bitrate_kbps)) / 288.0, "bitrate_mode": "CONSTANT"}
            self._file = sf.SoundFile(
                self._fd, "w", self.sample_rate, self.channels,
                subtype=self.subtype, format=self.format, closefd=False, **lossy,
            )
        except (OSError, sf.LibsndfileError, RuntimeError, ValueError, TypeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else _libsndfile_reason(error)
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                self.partial_path.unlink(missing_ok=True)
            if not os.access(folder, os.W_OK):
                reason = f"no permission to write in {folder}"
            raise AudioFileError(
                f"{self.path}: cannot write it ({reason}); change the rate, channels, format or folder"
            ) from None
        self._header_updates = self.format in _WAV_LIKE
        self._flush_every = max(1, int(round(flush_seconds * self.sample_rate)))
        self._since_flush = 0
        self._scratch = np.zeros((0, self.channels), dtype=np.float32)
        self._failure = ""  # why a write failed (then the file is never given its final name)
        self.frames_written = 0
        self.clipped = 0
        self.nonfinite = 0
        self.closed = False
        self.kept_path: Path | None = None

    def _set_aside_stale_partial(self) -> None:
        """A partial file already there is an earlier run's unfinished output (it was killed):
        keep it under the incomplete name instead of writing over it."""
        partial = self.partial_path
        if not os.path.lexists(partial):
            return
        if partial.is_symlink() or not partial.is_file() or partial.stat().st_size == 0:
            partial.unlink()  # a link is not ours to write through; an empty file holds nothing
            return
        kept = _keep_under_new_name(partial, incomplete_path_for(self.path))
        _warn(f"an earlier unfinished {partial} (its writer was stopped) is kept as {kept}")

    def write(self, block: np.ndarray) -> None:
        """Append ``block`` (float ``(frames, channels)``); ``block`` itself is not modified.

        Raises:
            AudioFileError: the write failed (e.g. the disk is full); the sink then never renames
                to :attr:`path` (:meth:`close` keeps the file as incomplete and raises).
        """
        if self.closed:
            raise RuntimeError(f"{self.path}: write after close")
        if self._failure:
            raise AudioFileError(self._failure)
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
            self.clipped += _clip_count(scratch, 1.0)
        try:
            # soundfile raises LibsndfileError for a failed write and AssertionError for a
            # short one (fewer frames written than given, no error code)
            self._file.write(scratch)
        except (sf.LibsndfileError, RuntimeError, AssertionError, OSError) as error:
            reason = _libsndfile_reason(error) if str(error) else "short write"
            self._failure = (
                f"{self.partial_path}: write failed after {self.frames_written / self.sample_rate:.1f} s "
                f"({reason}); check the free disk space"
            )
            raise AudioFileError(self._failure) from None
        self.frames_written += n
        self._since_flush += n
        if self._since_flush >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        """Make the partial file readable as it stands and flush it to disk.

        A WAV file's header says its length only once libsndfile closes it, so the file is
        closed (header written, data synced) and reopened in ``"r+"`` mode at its end, through
        the same descriptor; other formats need no header update and are just flushed.

        Raises:
            AudioFileError: the header or the flush could not be written (e.g. a full disk); the
                sink then never renames to :attr:`path`, as after a failed :meth:`write`.
        """
        if self.closed or self._failure:
            return
        try:
            if self._header_updates:
                self._file.close()  # closefd=False: the descriptor stays open
                os.fsync(self._fd)  # the header just written, too
                os.lseek(self._fd, 0, os.SEEK_SET)  # libsndfile starts the file where the descriptor is
                self._file = sf.SoundFile(self._fd, "r+", closefd=False)
                self._file.seek(0, sf.SEEK_END)
            else:
                self._file.flush()
        except (sf.LibsndfileError, RuntimeError, OSError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else _libsndfile_reason(error)
            self._failure = (
                f"{self.partial_path}: write failed after {self.frames_written / self.sample_rate:.1f} s "
                f"(updating the header: {reason}); check the free disk space"
            )
            raise AudioFileError(self._failure) from None
        self._since_flush = 0

    def _finish_file(self) -> None:
        """Close libsndfile's handle (it writes the final header), fsync and close the file.
        Raises OSError / LibsndfileError on failure; the descriptor is closed either way."""
        try:
            self._file.close()
            os.fsync(self._fd)
        finally:
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)

    def _check_length(self) -> None:
        """The partial file must read back with the frames written (a full disk can leave a
        file whose header or last frames never made it)."""
        try:
            with sf.SoundFile(str(self.partial_path)) as f:
                frames = int(f.frames)
        except (sf.LibsndfileError, RuntimeError) as error:
            raise AudioFileError(f"it does not read back ({_libsndfile_reason(error)})") from None
        slack = _MP3_SLACK_FRAMES if self.format == "MP3" else 0
        if abs(frames - self.frames_written) > slack:
            what = "an unknown length" if frames >= _UNKNOWN_LENGTH else f"{frames} frames"
            raise AudioFileError(f"it reads back as {what}, not the {self.frames_written} written")

    def close(self) -> None:
        """Finish the file and rename it to :attr:`path` (replacing any file there).

        Raises:
            AudioFileError: an earlier write, or finishing the file, failed: nothing new is at
                :attr:`path`, the output is kept as incomplete (:attr:`kept_path`).
        """
        if self.closed:
            return
        if self._failure:
            self.abort(self._failure, announce=False)
            raise AudioFileError(self.kept_message(self._failure))
        self.closed = True
        try:
            self._finish_file()
            if self.frames_written:
                self._check_length()
        except (OSError, sf.LibsndfileError, RuntimeError, AudioFileError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else _one_line(error)
            self._keep_incomplete()
            raise AudioFileError(
                self.kept_message(f"{self.path}: finishing the file failed ({reason}); check the free disk space")
            ) from None
        os.replace(self.partial_path, self.path)
        fsync_folder(self.path.parent)

    def _keep_incomplete(self) -> None:
        if self.frames_written == 0:
            self.partial_path.unlink(missing_ok=True)
        elif self.partial_path.exists():
            self.kept_path = _keep_under_new_name(self.partial_path, incomplete_path_for(self.path))

    def kept_message(self, reason: str) -> str:
        """``reason``, then what became of the output: not written, kept as ... (one line)."""
        if self.kept_path is None:
            return f"{reason}; {self.path} was not written (nothing had been written yet)"
        seconds = self.frames_written / self.sample_rate
        return f"{reason}; {self.path} was not written, the {seconds:.1f} s written are kept as {self.kept_path}"

    def abort(self, reason: str = "stopped", announce: bool = True) -> Path | None:
        """Finish the file (valid header) but keep it as ``<name>.incomplete<ext>``, never at
        :attr:`path`; say so in one line on stderr unless ``announce`` is False. Returns
        :attr:`kept_path` (None when nothing had been written: the partial file is removed)."""
        if self.closed:
            return self.kept_path
        self.closed = True
        try:
            self._finish_file()
        except (OSError, sf.LibsndfileError, RuntimeError):
            pass  # keep what made it to disk
        self._keep_incomplete()
        if announce:
            _warn(self.kept_message(reason))
        return self.kept_path

    def __enter__(self) -> FileSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._failure and isinstance(exc, AudioFileError) and not self.closed:
            # this sink's own failed write: one error line that also says where the output went
            self.abort(self._failure, announce=False)
            raise AudioFileError(self.kept_message(self._failure)) from None
        else:
            self.abort(f"{exc_type.__name__}" + (f" ({_one_line(exc)})" if str(exc) else ""))
