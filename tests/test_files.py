"""Reading, streaming and atomic writing of audio files (noisyneuron.audio.files)."""

from __future__ import annotations

import os
import shutil
import wave

import numpy as np
import pytest
import soundfile as sf
import soxr

from noisyneuron.errors import AudioFileError, UserError
from noisyneuron.audio.files import (
    SUPPORTED_EXTENSIONS,
    FileSink,
    FileSource,
    audio_info,
    read_audio,
    read_audio_checked,
)


def sine(freq_hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def stereo(seconds: float = 1.0, rate: int = 48000) -> np.ndarray:
    """Left 1 kHz, right 300 Hz at different levels, so channel swaps and averages show."""
    return np.stack([sine(1000, seconds, rate, 0.5), sine(300, seconds, rate, 0.25)], axis=1)


def peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def assert_one_line(error: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(error.value)
    assert isinstance(error.value, UserError)
    assert message and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# ----- round trips ------------------------------------------------------------------------------


def test_float_wav_round_trip_is_exact(tmp_path):
    audio = stereo()
    path = tmp_path / "a.wav"
    sf.write(path, audio, 48000, subtype="FLOAT")
    got, rate = read_audio(path)
    assert rate == 48000
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, audio)


@pytest.mark.parametrize("ext", [".wav", ".flac"])
def test_sink_default_pcm24_round_trip(tmp_path, ext):
    audio = stereo()
    path = tmp_path / f"a{ext}"
    with FileSink(path, 48000, 2) as sink:
        for i in range(0, len(audio), 1000):
            sink.write(audio[i : i + 1000])
    info = audio_info(path)
    assert (info.subtype, info.frames, info.channels, info.sample_rate) == ("PCM_24", 48000, 2, 48000)
    assert info.duration_seconds == pytest.approx(1.0)
    got, _ = read_audio(path)
    np.testing.assert_allclose(got, audio, atol=2.0**-22)


@pytest.mark.parametrize("ext", [e for e in (".ogg", ".mp3") if e in SUPPORTED_EXTENSIONS])
def test_lossy_round_trip_keeps_length_and_pitch(tmp_path, ext):
    audio = stereo(seconds=2.0)
    path = tmp_path / f"a{ext}"
    with FileSink(path, 48000, 2) as sink:
        sink.write(audio)
    got, rate = read_audio(path)
    assert rate == 48000 and got.shape[1] == 2
    assert abs(len(got) - len(audio)) <= 1152  # at most one MP3 frame of encoder padding
    assert peak_hz(got[:, 0], rate) == pytest.approx(1000, abs=2)
    assert peak_hz(got[:, 1], rate) == pytest.approx(300, abs=2)
    assert np.sqrt(np.mean(got[:, 0] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)


def test_resample_48k_to_44k1_keeps_pitch_and_length(tmp_path):
    path = tmp_path / "s.wav"
    sf.write(path, sine(1000, 1.0, 48000), 48000, subtype="FLOAT")
    got, rate = read_audio(path, sample_rate=44100)
    assert rate == 44100
    assert got.shape == (44100, 1)
    assert peak_hz(got[:, 0], 44100) == pytest.approx(1000, abs=1)
    # level kept (away from the edges, where the resampler's filter rings)
    assert np.abs(got[1000:-1000, 0]).max() == pytest.approx(0.5, abs=0.01)


# ----- channel mapping --------------------------------------------------------------------------


def test_mono_is_copied_to_every_channel(tmp_path):
    mono = sine(440, 0.1, 48000)
    sf.write(tmp_path / "m.wav", mono, 48000, subtype="FLOAT")
    got, _ = read_audio(tmp_path / "m.wav", channels=2)
    np.testing.assert_array_equal(got, np.stack([mono, mono], axis=1))


def test_stereo_to_mono_is_the_average(tmp_path):
    audio = stereo(0.1)
    sf.write(tmp_path / "s.wav", audio, 48000, subtype="FLOAT")
    got, _ = read_audio(tmp_path / "s.wav", channels=1)
    np.testing.assert_allclose(got[:, 0], (audio[:, 0] + audio[:, 1]) / 2, atol=1e-7)


def test_more_than_two_channels_uses_the_first_two_and_warns(tmp_path, capsys):
    four = np.stack([sine(100 * (k + 1), 0.1, 48000) for k in range(4)], axis=1)
    path = tmp_path / "quad.wav"
    sf.write(path, four, 48000, subtype="FLOAT")
    got, _ = read_audio(path)  # channels=None keeps them all, silently
    np.testing.assert_array_equal(got, four)
    assert capsys.readouterr().err == ""
    got, _ = read_audio(path, channels=2)
    np.testing.assert_array_equal(got, four[:, :2])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "4 channels" in err and "first 2" in err
    got, _ = read_audio(path, channels=1)
    np.testing.assert_allclose(got[:, 0], (four[:, 0] + four[:, 1]) / 2, atol=1e-7)
    assert "first two" in capsys.readouterr().err


def test_impossible_channel_mapping_is_refused(tmp_path):
    sf.write(tmp_path / "s.wav", stereo(0.1), 48000)
    with pytest.raises(AudioFileError) as error:
        read_audio(tmp_path / "s.wav", channels=4)
    assert_one_line(error, "2 channels", "4")


# ----- bad input ----------------------------------------------------------------------------------


def _bad_files(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, stereo(0.1), 48000)
    files = {
        "random bytes": tmp_path / "noise.wav",
        "zero bytes": tmp_path / "empty.wav",
        "truncated header": tmp_path / "truncated.wav",
        "0 frames": tmp_path / "silent.wav",
        "text as mp3": tmp_path / "notes.mp3",
        "missing": tmp_path / "nope.wav",
        "folder": tmp_path / "folder.wav",
    }
    files["random bytes"].write_bytes(np.random.default_rng(0).bytes(4096))
    files["zero bytes"].write_bytes(b"")
    files["truncated header"].write_bytes(good.read_bytes()[:20])
    sf.write(files["0 frames"], np.zeros((0, 2), np.float32), 48000)
    files["text as mp3"].write_text("not audio at all\n" * 100)
    files["folder"].mkdir()
    return files


BAD = ["random bytes", "zero bytes", "truncated header", "0 frames", "text as mp3", "missing", "folder"]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_raises_one_line_audio_file_error(tmp_path, case):
    path = _bad_files(tmp_path)[case]
    for call in (
        lambda: read_audio(path),
        lambda: audio_info(path),
        lambda: FileSource(path, 48000, 2, 256),
    ):
        with pytest.raises(AudioFileError) as error:
            call()
        assert_one_line(error, path.name)


def test_bad_input_messages_say_what_is_wrong(tmp_path):
    files = _bad_files(tmp_path)
    expected = {
        "missing": "no such file",
        "folder": "is a folder",
        "zero bytes": "empty",
        "0 frames": "0 frames",
        "random bytes": "not a readable audio file",
        "truncated header": "corrupt",
    }
    for case, words in expected.items():
        with pytest.raises(AudioFileError, match=words):
            read_audio(files[case])


def test_bad_requests_raise_audio_file_error(tmp_path):
    sf.write(tmp_path / "s.wav", stereo(0.1), 48000)
    for kwargs in ({"sample_rate": 0}, {"sample_rate": float("nan")}, {"channels": 0}):
        with pytest.raises(AudioFileError):
            read_audio(tmp_path / "s.wav", **kwargs)


# ----- NaN / Inf ----------------------------------------------------------------------------------


def test_nonfinite_samples_are_replaced_and_counted(tmp_path):
    audio = stereo(0.1)
    bad = audio.copy()
    bad[10, 0], bad[20, 1], bad[30, 0] = np.nan, np.inf, -np.inf
    path = tmp_path / "nan.wav"
    sf.write(path, bad, 48000, subtype="FLOAT")
    got, rate, nonfinite = read_audio_checked(path)
    assert nonfinite == 3
    assert np.isfinite(got).all()
    assert got[10, 0] == got[20, 1] == got[30, 0] == 0.0
    mask = np.ones(bad.shape, bool)
    mask[10, 0] = mask[20, 1] = mask[30, 0] = False
    np.testing.assert_array_equal(got[mask], audio[mask])
    # resampling after the replacement keeps everything finite
    got, _, nonfinite = read_audio_checked(path, sample_rate=44100)
    assert nonfinite == 3 and np.isfinite(got).all()
    with FileSource(path, 48000, 2, 100) as source:
        block = np.empty((100, 2), np.float32)
        while not source.finished:
            source.read_into(block)
            assert np.isfinite(block).all()
        assert source.nonfinite == 3


# ----- FileSink -------------------------------------------------------------------------------------


def test_sink_writes_to_partial_name_and_renames_on_close(tmp_path):
    final = tmp_path / "take.wav"
    sink = FileSink(final, 48000, 2)
    sink.write(stereo(0.1))
    assert sink.partial_path == tmp_path / "take.partial.wav"
    assert sink.partial_path.exists() and not final.exists()
    sink.close()
    assert final.exists() and not sink.partial_path.exists()
    assert audio_info(final).frames == 4800


def test_sink_replaces_an_existing_file_only_when_complete(tmp_path):
    final = tmp_path / "take.flac"
    sf.write(final, np.zeros((10, 2), np.float32), 48000)
    with FileSink(final, 48000, 2) as sink:
        sink.write(stereo(0.1))
        assert audio_info(final).frames == 10  # the old file is untouched while writing
    assert audio_info(final).frames == 4800


def test_exception_in_with_keeps_the_output_as_incomplete(tmp_path, capsys):
    final = tmp_path / "take.wav"
    with pytest.raises(RuntimeError, match="boom"):
        with FileSink(final, 48000, 2) as sink:
            sink.write(stereo(0.5))
            raise RuntimeError("boom")
    assert not final.exists() and not sink.partial_path.exists()
    kept = tmp_path / "take.incomplete.wav"
    assert sink.kept_path == kept and kept.exists()
    got, _ = read_audio(kept)
    assert len(got) == 24000
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "take.incomplete.wav" in err and "not written" in err


@pytest.mark.parametrize("ext", [".wav", ".flac"])
def test_partial_file_of_a_killed_writer_is_readable(tmp_path, ext):
    """Copy the partial file while the writer is still open, as a kill would leave it."""
    audio = stereo(3.0)
    final = tmp_path / f"take{ext}"
    sink = FileSink(final, 48000, 2)
    for i in range(0, 2 * 48000 + 100, 4800):  # a little more than 2 s: at least 2 flushes
        sink.write(audio[i : i + 4800])
    copy = tmp_path / f"killed{ext}"
    shutil.copy(sink.partial_path, copy)
    if ext == ".wav":  # the header itself must be valid, for strict readers too
        with wave.open(str(copy)) as w:
            assert w.getnframes() >= 48000
    got, rate = read_audio(copy)
    assert rate == 48000 and len(got) >= 48000  # at least the first flushed second
    np.testing.assert_allclose(got, audio[: len(got)], atol=2.0**-22)
    sink.close()


@pytest.mark.parametrize(("channels", "subtype"), [(1, "PCM_24"), (2, "FLOAT"), (6, "PCM_16"), (1, "PCM_U8")])
def test_wav_header_updates_keep_every_frame(tmp_path, channels, subtype):
    """Each flush closes and reopens the WAV ("r+") to rewrite its header: odd data sizes (a pad
    byte), float files (a PEAK chunk) and many channels all carry on exactly where they were."""
    audio = np.random.default_rng(channels).uniform(-0.9, 0.9, (48000 + 17, channels)).astype(np.float32)
    final = tmp_path / "take.wav"
    sink = FileSink(final, 48000, channels, subtype=subtype, flush_seconds=0.05)
    for i in range(0, len(audio), 1201):  # odd blocks: the data size is odd between flushes
        sink.write(audio[i : i + 1201])
        if i and i % (1201 * 10) == 0:
            shutil.copy(sink.partial_path, tmp_path / "copy.wav")
            assert 0 < sf.info(tmp_path / "copy.wav").frames <= i + 1201
    sink.close()
    got, _ = read_audio(final)
    tol = {"PCM_24": 2.0**-22, "FLOAT": 0.0, "PCM_16": 2.0**-14, "PCM_U8": 2.0**-6}[subtype]
    assert got.shape == audio.shape and float(np.max(np.abs(got - audio))) <= tol
    reference = tmp_path / "reference.wav"  # the layout libsndfile gives a file written in one go
    sf.write(reference, audio, 48000, subtype=subtype)
    assert final.stat().st_size == reference.stat().st_size


def test_files_uses_only_soundfiles_public_api():
    import re

    import noisyneuron.audio.files as files

    assert not re.search(r"\bsf\._", open(files.__file__).read())


def test_sink_clips_integer_formats_and_counts(tmp_path):
    block = np.array([[0.5, 1.5], [-2.0, -0.25], [np.nan, 1.0]], np.float32)
    with FileSink(tmp_path / "c.wav", 48000, 2) as sink:
        sink.write(block)
    assert sink.clipped == 2 and sink.nonfinite == 1
    assert np.isnan(block[2, 0])  # the caller's block is not modified
    got, _ = read_audio(tmp_path / "c.wav")
    np.testing.assert_allclose(got, [[0.5, 1.0], [-1.0, -0.25], [0.0, 1.0]], atol=2.0**-22)
    with FileSink(tmp_path / "f.wav", 48000, 2, subtype="FLOAT") as sink:
        sink.write(np.nan_to_num(block))
    assert sink.clipped == 0
    got, _ = read_audio(tmp_path / "f.wav")
    np.testing.assert_array_equal(got, np.nan_to_num(block))


def test_sink_refuses_bad_outputs(tmp_path):
    cases = [
        (dict(path=tmp_path / "out.m4a"), [".m4a", ".wav"]),
        (dict(path=tmp_path / "out"), ["extension"]),
        (dict(path=tmp_path / "no" / "such" / "out.wav"), ["does not exist"]),
        (dict(path=tmp_path / "out.wav", subtype="VORBIS"), ["VORBIS", "PCM_24"]),
        (dict(path=tmp_path / "out.wav", sample_rate=0), ["sample rate"]),
    ]
    if ".mp3" in SUPPORTED_EXTENSIONS:
        cases.append((dict(path=tmp_path / "out.mp3", sample_rate=96000), ["out.mp3", "44100"]))
    (tmp_path / "dir.wav").mkdir()
    cases.append((dict(path=tmp_path / "dir.wav"), ["folder"]))
    for kwargs, fragments in cases:
        kwargs = {"sample_rate": 48000, "channels": 2, **kwargs}
        with pytest.raises(AudioFileError) as error:
            FileSink(**kwargs)
        assert_one_line(error, *fragments)
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == ["dir.wav"]  # nothing half-created


# ----- FileSource -----------------------------------------------------------------------------------


def _stream(source: FileSource, blocksize: int) -> tuple[np.ndarray, list[int]]:
    block = np.full((blocksize, source.channels), 9.0, np.float32)
    out, counts = [], []
    while not source.finished:
        n = source.read_into(block)
        counts.append(n)
        assert (block[n:] == 0.0).all()  # silence after the end
        out.append(block[:n].copy())
    return np.concatenate(out), counts


@pytest.mark.parametrize("blocksize", [256, 1000])
def test_file_source_streams_the_file_content(tmp_path, blocksize):
    audio = stereo(1.5)  # 72000 frames: more than one 65536-frame disk chunk
    path = tmp_path / "s.wav"
    sf.write(path, audio, 48000, subtype="FLOAT")
    with FileSource(path, 48000, 2, blocksize) as source:
        got, counts = _stream(source, blocksize)
    np.testing.assert_array_equal(got, audio)
    assert all(c == blocksize for c in counts[:-1]) and 0 < counts[-1] <= blocksize
    assert source.position == len(audio)


def test_file_source_resamples_like_a_whole_file_resample(tmp_path):
    audio = stereo(1.5)
    path = tmp_path / "s.wav"
    sf.write(path, audio, 48000, subtype="FLOAT")
    with FileSource(path, 44100, 1, 512) as source:
        got, _ = _stream(source, 512)
    reference = soxr.resample((audio[:, 0] + audio[:, 1]) / 2, 48000, 44100, "HQ")
    assert got.shape == (len(reference), 1) == (66150, 1)
    np.testing.assert_allclose(got[:, 0], reference, atol=1e-5)
    whole, _ = read_audio(path, 44100, 1)
    np.testing.assert_allclose(got, whole, atol=1e-6)


def test_file_source_loop_repeats_seamlessly(tmp_path):
    audio = stereo(0.01)  # 480 frames, shorter than one block
    path = tmp_path / "s.wav"
    sf.write(path, audio, 48000, subtype="FLOAT")
    with FileSource(path, 48000, 2, 1000, loop=True) as source:
        block = np.zeros((1000, 2), np.float32)
        chunks = []
        for _ in range(5):
            assert source.read_into(block) == 1000
            chunks.append(block.copy())
            assert not source.finished
    np.testing.assert_array_equal(np.concatenate(chunks), np.tile(audio, (11, 1))[:5000])


# ----- issue 13: a full disk, and nothing incomplete under a final name -----------------------------


def _noise_block(frames: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (frames, 2)).astype(np.float32)


@pytest.mark.parametrize("ext", [".wav", ".flac"])
def test_full_disk_write_fails_in_one_line_and_keeps_an_incomplete_file(small_disk, ext):
    disk = small_disk(128)
    final = disk / f"take{ext}"
    sink = FileSink(final, 48000, 2)
    with pytest.raises(AudioFileError) as info:
        for i in range(200):  # 20 s: far more than fits
            sink.write(_noise_block(4800, i))
    assert_one_line(info, "write failed", "disk space")
    with pytest.raises(AudioFileError) as info:  # the caller closing as if all went well
        sink.close()
    assert_one_line(info, "not written", "incomplete")
    assert not final.exists() and not sink.partial_path.exists()
    kept = disk / f"take.incomplete{ext}"
    assert sink.kept_path == kept
    got, rate = read_audio(kept)  # a valid file with what was written before the disk filled
    assert rate == 48000 and 0 < len(got) <= sink.frames_written + 4800  # + part of the failed block


def test_final_name_only_after_the_file_is_complete_on_disk(small_disk):
    """FLAC buffers: every write can succeed and the disk still fill while closing (the header
    and last frames never land). The final name must then not appear."""
    audio = _noise_block(48000, 0)
    seen_close_failure = seen_success = False
    for free_kib in range(200, 300, 4):
        disk = small_disk(400)
        try:
            with open(disk / "filler", "wb") as f:
                f.write(b"\0" * ((400 - free_kib) * 1024))
        except OSError:
            pass
        final = disk / "take.flac"
        sink = FileSink(final, 48000, 2, flush_seconds=100)
        try:
            for i in range(0, 48000, 4800):
                sink.write(audio[i : i + 4800])
        except AudioFileError:
            sink.abort(announce=False)
            continue  # the write itself reported it: not this case
        try:
            sink.close()
        except AudioFileError as error:
            seen_close_failure = True
            assert "\n" not in str(error) and "incomplete" in str(error)
            assert not final.exists() and not sink.partial_path.exists()
            continue
        seen_success = True
        assert audio_info(final).frames == 48000  # what has the final name is complete
    assert seen_close_failure, "no free space made closing fail: the test did not test it"
    assert seen_success


def test_an_earlier_killed_writers_partial_file_is_kept_not_overwritten(tmp_path, capsys):
    final = tmp_path / "take.wav"
    killed = FileSink(final, 48000, 2)
    killed.write(stereo(0.5))
    killed.flush()  # then the process dies: take.partial.wav stays
    with FileSink(final, 48000, 2) as sink:
        sink.write(stereo(0.1))
    assert audio_info(final).frames == 4800
    assert audio_info(tmp_path / "take.incomplete.wav").frames == 24000
    assert "take.incomplete.wav" in capsys.readouterr().err


def test_a_second_incomplete_output_does_not_replace_the_first(tmp_path):
    final = tmp_path / "take.wav"
    for seconds in (0.5, 0.25):
        sink = FileSink(final, 48000, 2)
        sink.write(stereo(seconds))
        sink.abort(announce=False)
    assert audio_info(tmp_path / "take.incomplete.wav").frames == 24000
    assert audio_info(tmp_path / "take.incomplete-2.wav").frames == 12000
    assert not final.exists()


def test_sink_never_writes_through_a_link_at_its_temporary_name(tmp_path):
    other = tmp_path / "precious.wav"
    sf.write(other, stereo(0.2), 48000)
    before = other.read_bytes()
    os.symlink(other, tmp_path / "take.partial.wav")
    with FileSink(tmp_path / "take.wav", 48000, 2) as sink:
        sink.write(stereo(0.1))
    assert other.read_bytes() == before
    assert audio_info(tmp_path / "take.wav").frames == 4800


def test_sink_refuses_to_write_over_an_input(tmp_path):
    song = tmp_path / "x.partial.wav"
    sf.write(song, stereo(0.2), 48000)
    with pytest.raises(AudioFileError) as info:
        FileSink(tmp_path / "x.wav", 48000, 2, inputs=[song])
    assert_one_line(info, "temporary file", "input")
    with pytest.raises(AudioFileError) as info:
        FileSink(song, 48000, 2, inputs=[song])
    assert_one_line(info, "is the input")
    assert audio_info(song).frames == 9600 and sorted(p.name for p in tmp_path.iterdir()) == ["x.partial.wav"]


# ----- issue 13: files shorter than their header says ---------------------------------------------


def test_truncated_wav_warns_with_both_lengths(tmp_path, capsys):
    full = tmp_path / "full.wav"
    sf.write(full, stereo(3.0), 48000, subtype="PCM_16")
    data = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: 44 + 48000 * 4])  # header (says 3 s) + 1 s of 16-bit stereo
    got, _ = read_audio(cut)
    assert len(got) == 48000
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning" in err, err
    assert "3.000 s" in err and "1.000 s" in err and "144000" in err and "48000" in err
    read_audio(full)
    assert capsys.readouterr().err == ""  # a whole file says nothing


@pytest.mark.skipif(".mp3" not in SUPPORTED_EXTENSIONS, reason="libsndfile without MP3")
def test_truncated_mp3_warns_with_both_lengths(tmp_path, capsys):
    full = tmp_path / "full.mp3"
    sf.write(full, stereo(3.0), 48000)
    read_audio(full)
    assert capsys.readouterr().err == ""
    cut = tmp_path / "cut.mp3"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    got, _ = read_audio(cut)
    assert len(got) < 2 * 48000
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("noisyneuron:")]
    assert len(err) == 1 and "3.000 s" in err[0] and f"{len(got) / 48000:.3f} s" in err[0], err


# ----- formats libsndfile cannot read: through FFmpeg's decoders (PyAV) ----------------------------
def _encode_with_ffmpeg(path, audio, rate, codec, sample_format):
    """``audio`` (frames, 2) float32 encoded with FFmpeg's ``codec`` (PyAV) into ``path``."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "stereo"
        for start in range(0, len(audio), 1024):
            piece = np.ascontiguousarray(audio[start : start + 1024].T)
            if sample_format == "s16":
                piece = (piece.T.reshape(1, -1) * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(piece, format=sample_format, layout="stereo")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


@pytest.mark.parametrize("suffix, codec, sample_format, rate", [
    (".m4a", "aac", "fltp", 44100), (".aac", "aac", "fltp", 44100), (".opus", "libopus", "s16", 48000),
    (".m4a", "alac", "s16p", 44100),
])
def test_m4a_aac_opus_and_alac_are_read_through_ffmpeg(tmp_path, suffix, codec, sample_format, rate):
    from noisyneuron.audio.files import FileSource, audio_info, read_audio_checked

    t = np.arange(int(2.0 * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    audio = np.stack([tone, 0.5 * tone], axis=1)
    path = tmp_path / f"song{suffix}"
    if sample_format == "s16p":  # ALAC takes planar 16-bit
        _encode_s16p(path, audio, rate, codec)
    else:
        _encode_with_ffmpeg(path, audio, rate, codec, sample_format)
    info = audio_info(path)
    assert info.sample_rate == rate and info.channels == 2
    got, got_rate, _ = read_audio_checked(path)
    assert got_rate == rate and got.shape[1] == 2 and abs(len(got) / rate - 2.0) < 0.1
    middle = got[rate // 2 : rate + rate // 2]
    spectrum = np.abs(np.fft.rfft(middle[:, 0]))
    assert abs(np.argmax(spectrum) * rate / len(middle) - 440) < 3  # the tone, not noise
    assert abs(20 * np.log10(np.std(middle[:, 1]) / np.std(middle[:, 0])) - 20 * np.log10(0.5)) < 0.5  # channels kept apart
    streamed = FileSource(path, 48000, 1, 4096)
    total, block = 0, np.zeros((4096, 1), dtype=np.float32)
    while not streamed.finished:
        n = streamed.read_into(block)
        if n == 0:
            break
        total += n
    streamed.close()
    assert abs(total / 48000 - len(got) / rate) < 0.05  # streamed, resampled, mono: the same length


def _encode_s16p(path, audio, rate, codec):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "stereo"
        for start in range(0, len(audio), 4096):
            piece = np.ascontiguousarray((audio[start : start + 4096].T * 32767).astype(np.int16))
            frame = av.AudioFrame.from_ndarray(piece, format="s16p", layout="stereo")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_a_broken_m4a_is_one_line(tmp_path):
    from noisyneuron.audio.files import AudioFileError, read_audio_checked

    junk = tmp_path / "song.m4a"
    junk.write_bytes(b"\0\0\0\x18ftypM4A " + bytes(range(256)) * 8)
    with pytest.raises(AudioFileError) as info:
        read_audio_checked(junk)
    assert str(junk) in str(info.value) and "\n" not in str(info.value)
