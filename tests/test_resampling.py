"""The one resample-and-fit helper (noisyneuron.audio.resampling): exact lengths, the rate asked
for, channels kept, and nothing done when there is nothing to do."""

from __future__ import annotations

import numpy as np
import pytest

from noisyneuron.audio.resampling import fit_length, resample


def _tone(hz: float, rate: int, seconds: float, channels: int | None = 2) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    x = np.sin(2 * np.pi * hz * t)
    return x if channels is None else np.repeat(x[:, None], channels, axis=1) * np.arange(1, channels + 1) / channels


@pytest.mark.parametrize("frames", [0, 10, 44100, 44100 + 333])
@pytest.mark.parametrize("shape", [None, 1, 2])
def test_fit_length_gives_exactly_frames_and_pads_with_zeros(frames, shape):
    x = _tone(440, 44100, 1.0, shape).astype(np.float32)
    y = fit_length(x, frames)
    assert y.shape == (frames,) + x.shape[1:] and y.dtype == x.dtype
    n = min(frames, len(x))
    np.testing.assert_array_equal(y[:n], x[:n])
    assert not np.any(y[n:])


@pytest.mark.parametrize(("rate_in", "rate_out"), [(48000, 44100), (22050, 44100), (44100, 16000), (8000, 48000)])
@pytest.mark.parametrize("channels", [None, 1, 2])
def test_resample_changes_the_rate_and_fits_the_length(rate_in, rate_out, channels):
    seconds = 0.5
    x = _tone(440.0, rate_in, seconds, channels)
    frames = int(round(seconds * rate_out))
    for want in (frames, frames - 7, frames + 11):
        y = resample(x, rate_in, rate_out, want)
        assert y.shape == (want,) + x.shape[1:]
    y = resample(x, rate_in, rate_out, frames)
    assert abs(len(resample(x, rate_in, rate_out)) - frames) <= 1  # soxr keeps the duration
    # the rate is right: the tone is still 440 Hz at the new rate (and channel gains are kept)
    ref = _tone(440.0, rate_out, seconds, channels)
    mid = slice(frames // 4, 3 * frames // 4)  # away from the filter's edges
    np.testing.assert_allclose(y[mid], ref[mid], atol=2e-3)


def test_resample_keeps_float32_and_skips_equal_rates_and_empty_audio():
    x = _tone(100.0, 16000, 0.1).astype(np.float32)
    assert resample(x, 44100, 16000).dtype == np.float32
    assert resample(x, 16000, 16000) is x  # nothing to do: the same array
    np.testing.assert_array_equal(resample(x, 16000, 16000, 2000), fit_length(x, 2000))
    empty = np.zeros((0, 2), np.float32)
    assert resample(empty, 48000, 44100).shape == (0, 2)
    assert resample(empty, 48000, 44100, 5).shape == (5, 2)
