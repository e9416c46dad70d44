"""Offline runs: latency-aligned block loop (process_array) and file processing (process_file)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from noisyneuron.dsp.delay import DelayLine
from noisyneuron.errors import AudioFileError
from noisyneuron.realtime.chain import Chain
from noisyneuron.audio.files import audio_info, read_audio
from noisyneuron.realtime.offline import OfflineReport, process_array, process_file
from noisyneuron.realtime.processor import Processor


class Delay(Processor):
    """Delays by ``delay`` samples and reports ``reported`` (default: the true delay)."""

    kind = "delay"

    def __init__(self, delay: int, name: str | None = None, reported: int | None = None) -> None:
        super().__init__(name)
        self.delay = delay
        self.reported = delay if reported is None else reported

    def prepare(self, sample_rate, max_block, channels):
        super().prepare(sample_rate, max_block, channels)
        self._line = DelayLine(self.delay, channels)

    def reset(self):
        super().reset()
        self._line.reset()

    def process(self, block):
        self._line.process(block, block)

    @property
    def latency_samples(self):
        return self.reported


class Gain(Processor):
    kind = "gain"

    def __init__(self, gain: float, name: str | None = None) -> None:
        super().__init__(name)
        self.gain = np.float32(gain)

    def process(self, block):
        block *= self.gain


class InterruptAfter(Processor):
    """Raises KeyboardInterrupt (as Ctrl-C would) on block number ``blocks``."""

    kind = "interrupt"

    def __init__(self, blocks: int) -> None:
        super().__init__()
        self.blocks = blocks
        self.seen = 0

    def process(self, block):
        self.seen += 1
        if self.seen >= self.blocks:
            raise KeyboardInterrupt


class NaNFirstSample(Processor):
    kind = "nan"

    def reset(self):
        super().reset()
        self.done = False

    def prepare(self, sample_rate, max_block, channels):
        super().prepare(sample_rate, max_block, channels)
        self.done = False

    def process(self, block):
        if not self.done:
            block[0, 0] = np.nan
            self.done = True


def noise(frames: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.9, 0.9, (frames, channels)).astype(np.float32)


# ----- process_array --------------------------------------------------------------------------------


@pytest.mark.parametrize("blocksize", [1, 64, 300, 512, 777, 5000, 8192])
def test_pure_delay_chain_output_equals_input(blocksize):
    audio = noise(5000)
    chain = Chain([Delay(300)])
    out = process_array(audio, chain, blocksize, sample_rate=48000)
    assert chain.latency_samples == 300
    assert out.dtype == np.float32 and out.shape == audio.shape
    np.testing.assert_array_equal(out, audio)


def test_latencies_of_several_processors_add_up():
    audio = noise(3001, channels=1)
    chain = Chain([Delay(100, "a"), Gain(0.5), Delay(211, "b")])
    out = process_array(audio, chain, 256, sample_rate=44100)
    np.testing.assert_array_equal(out, audio * np.float32(0.5))


def test_latency_longer_than_the_input_is_flushed():
    audio = noise(100)
    out = process_array(audio, Chain([Delay(1000)]), 64, sample_rate=48000)
    np.testing.assert_array_equal(out, audio)


def test_misreported_latency_shows_as_misalignment():
    """The alignment relies on the reported latency: a processor that lies is caught."""
    audio = noise(2000)
    out = process_array(audio, Chain([Delay(300, reported=0)]), 512, sample_rate=48000)
    np.testing.assert_array_equal(out[300:], audio[:-300])
    assert not np.array_equal(out, audio)


def test_input_is_untouched_and_runs_start_from_silence():
    audio = noise(1500)
    audio[5, 1] = np.nan
    before = audio.copy()
    chain = Chain([Delay(50)])
    first = process_array(audio, chain, 128, sample_rate=48000)
    np.testing.assert_array_equal(audio, before)  # NaN still there: the input was copied
    expected = np.nan_to_num(before)
    np.testing.assert_array_equal(first, expected)
    assert chain.nonfinite_in == 1
    # a second run on the already-prepared chain starts from a reset state
    second = process_array(audio, chain, 128)
    np.testing.assert_array_equal(second, expected)


def test_unprepared_or_mismatched_chain_is_refused():
    with pytest.raises(ValueError, match="prepare"):
        process_array(noise(10), Chain([Gain(1.0)]), 64)
    chain = Chain([Gain(1.0)])
    chain.prepare(48000, 64, 2)
    with pytest.raises(ValueError, match="prepare"):
        process_array(noise(10, channels=1), chain, 64)
    with pytest.raises(ValueError, match="prepare"):
        process_array(noise(10), chain, 128)
    with pytest.raises(ValueError):
        process_array(noise(10)[:, 0], chain, 64)
    with pytest.raises(ValueError):
        process_array(noise(10), chain, 0)


def test_empty_input_gives_empty_output():
    out = process_array(np.zeros((0, 2), np.float32), Chain([Delay(10)]), 64, sample_rate=48000)
    assert out.shape == (0, 2)


# ----- process_file ---------------------------------------------------------------------------------


def test_process_file_end_to_end_is_sample_exact(tmp_path):
    audio = noise(48000 + 123)
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, audio, 48000, subtype="FLOAT")
    chain = Chain([Delay(300), Gain(0.5)])
    report = process_file(src, dst, chain, blocksize=256, progress=False, subtype="FLOAT")
    assert isinstance(report, OfflineReport)
    got, rate = read_audio(dst)
    assert rate == 48000
    np.testing.assert_array_equal(got, audio * np.float32(0.5))
    assert report.frames == len(audio)
    assert (report.sample_rate, report.channels, report.latency_samples) == (48000, 2, 300)
    assert report.seconds == pytest.approx(len(audio) / 48000)
    assert report.wall_seconds > 0 and report.speed > 0
    assert report.realtime_factor == pytest.approx(report.wall_seconds / report.seconds)
    assert report.speed == pytest.approx(1 / report.realtime_factor)
    assert report.output_path == dst and "out.wav" in report.summary()
    assert not (tmp_path / "out.partial.wav").exists()


def test_process_file_resamples_and_maps_channels(tmp_path):
    t = np.arange(48000) / 48000
    mono = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    src, dst = tmp_path / "in.flac", tmp_path / "out.flac"
    sf.write(src, mono, 48000)
    report = process_file(src, dst, Chain([Delay(100)]), 512, 44100, channels=2, progress=False)
    got, rate = read_audio(dst)
    assert rate == 44100 and got.shape == (44100, 2) and report.frames == 44100
    np.testing.assert_array_equal(got[:, 0], got[:, 1])
    expected, _ = read_audio(src, 44100, 2)
    np.testing.assert_allclose(got, expected, atol=2.0**-22)  # aligned, only 24-bit rounding
    assert audio_info(dst).subtype == "PCM_24"


def test_process_file_counts_nonfinite_samples(tmp_path):
    audio = noise(2000)
    audio[7, 0] = np.inf
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, audio, 48000, subtype="FLOAT")
    report = process_file(src, dst, Chain([NaNFirstSample()]), 256, progress=True)
    assert (report.nonfinite_input, report.nonfinite_output) == (1, 1)
    assert report.nonfinite_replaced == 2 and "2 NaN/Inf" in report.summary()
    assert np.isfinite(read_audio(dst)[0]).all()


def test_keyboard_interrupt_leaves_no_complete_output(tmp_path, capsys):
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, noise(5 * 48000), 48000)
    sf.write(dst, np.zeros((10, 2), np.float32), 48000)  # an earlier run's result
    chain = Chain([InterruptAfter(blocks=200)])  # ~2.1 s of 512-frame blocks
    with pytest.raises(KeyboardInterrupt):
        process_file(src, dst, chain, 512, progress=False)
    assert audio_info(dst).frames == 10  # only the earlier, complete file is there
    kept = tmp_path / "out.incomplete.wav"
    assert kept.exists() and not (tmp_path / "out.partial.wav").exists()
    got, _ = read_audio(kept)
    assert 0 < len(got) < 5 * 48000
    assert "out.incomplete.wav" in capsys.readouterr().err


def test_keyboard_interrupt_with_no_earlier_file(tmp_path):
    src, dst = tmp_path / "in.wav", tmp_path / "out.flac"
    sf.write(src, noise(48000), 48000)
    with pytest.raises(KeyboardInterrupt):
        process_file(src, dst, Chain([InterruptAfter(blocks=3)]), 512, progress=False)
    assert not dst.exists()


def test_process_file_bad_paths_fail_before_processing(tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, noise(1000), 48000)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF" + bytes(100))
    for args in (
        (tmp_path / "missing.wav", tmp_path / "out.wav"),
        (tmp_path / "corrupt.wav", tmp_path / "out.wav"),
        (src, tmp_path / "nodir" / "out.wav"),
        (src, tmp_path / "out.xyz"),
    ):
        chain = Chain([InterruptAfter(blocks=1)])  # any processing would raise KeyboardInterrupt
        with pytest.raises(AudioFileError) as error:
            process_file(*args, chain, progress=False)
        assert "\n" not in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.wav", "in.wav"]
