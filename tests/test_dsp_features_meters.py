"""Mel filterbanks / log-mel features and level meters against known values."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from noisyneuron.dsp.features import hz_to_mel, log_mel, log_mel_spectrogram, mel_filterbank, mel_to_hz
from noisyneuron.dsp.meters import FLOOR_DBFS, LevelMeter, peak_dbfs, rms_dbfs


def test_mel_scales_known_values():
    assert hz_to_mel(1000.0) == pytest.approx(15.0)
    assert hz_to_mel(500.0) == pytest.approx(7.5)
    assert hz_to_mel(6400.0) == pytest.approx(15.0 + 27.0)  # one log step of 6.4 is 27 mels
    assert hz_to_mel(1000.0, htk=True) == pytest.approx(1000.0, abs=0.05)
    f = np.array([0.0, 100.0, 999.0, 1001.0, 8000.0, 20000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f, htk=True), htk=True), f, rtol=1e-9, atol=1e-9)


def test_mel_filterbank_shape_area_and_centres():
    sr, n_fft, n_mels = 16000, 1024, 40
    fb = mel_filterbank(sr, n_fft, n_mels)
    assert fb.shape == (n_mels, n_fft // 2 + 1) and fb.dtype == np.float32
    assert np.all(fb >= 0)
    bin_hz = sr / n_fft
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    for i in range(n_mels):
        width_bins = (edges[i + 2] - edges[i]) / bin_hz
        if width_bins >= 8:  # sampled triangles wide enough to integrate accurately
            assert fb[i].sum() * bin_hz == pytest.approx(1.0, rel=0.05)  # unit area in Hz
        peak_hz = np.argmax(fb[i]) * bin_hz
        assert abs(peak_hz - edges[i + 1]) <= bin_hz
    # filters tile the spectrum: every bin between the first and last centre is covered
    covered = fb.sum(axis=0) > 0
    first, last = int(np.ceil(edges[1] / bin_hz)), int(edges[-2] / bin_hz)
    assert covered[first : last + 1].all()


def test_mel_filterbank_fmin_fmax():
    fb = mel_filterbank(22050, 2048, 32, fmin=300.0, fmax=8000.0, htk=True)
    freqs = np.arange(fb.shape[1]) * 22050 / 2048
    assert np.all(fb[:, freqs < 300.0] == 0)
    assert np.all(fb[:, freqs > 8000.0] == 0)


def test_log_mel_known_values_and_floor():
    fb = mel_filterbank(16000, 512, 20)
    ones = np.ones((3, 257), np.float32)
    out = np.empty((3, 20), np.float32)
    log_mel(ones, fb, out)
    np.testing.assert_allclose(out, np.broadcast_to(10 * np.log10(fb.sum(axis=1)), (3, 20)), atol=1e-4)
    silent = np.zeros((2, 257), np.float32)
    out2 = np.empty((2, 20), np.float32)
    log_mel(silent, fb, out2, floor_db=-90.0)
    np.testing.assert_array_equal(out2, -90.0)
    one_frame = np.empty(20, np.float32)
    assert log_mel(ones[0], fb, one_frame) is one_frame
    np.testing.assert_allclose(one_frame, out[0])


def test_log_mel_spectrogram_of_a_tone_peaks_in_its_band():
    sr = 16000
    t = np.arange(sr) / sr
    x = np.sin(2 * np.pi * 1000.0 * t).astype(np.float32)
    lm = log_mel_spectrogram(x, sr, n_fft=1024, hop=256, n_mels=40)
    assert lm.shape == (1 + sr // 256, 40) and lm.dtype == np.float32
    centres = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), 42))[1:-1]
    expected_band = int(np.argmin(np.abs(centres - 1000.0)))
    middle = lm[10:-10]
    assert np.all(np.argmax(middle, axis=1) == expected_band)
    assert log_mel_spectrogram(np.zeros(4000, np.float32), sr, n_mels=40).max() == -100.0


def test_peak_and_rms_known_values():
    sr = 48000
    n = sr
    full = np.sin(2 * np.pi * (sr / 4) * np.arange(n) / sr + np.pi / 2)  # hits +-1 exactly
    slow = np.sin(2 * np.pi * 997.0 * np.arange(n) / sr)
    block = np.stack([full, 0.5 * slow, np.zeros(n)], axis=1).astype(np.float32)
    peak = np.empty(3, np.float32)
    rms = np.empty(3, np.float32)
    peak_dbfs(block, peak)
    rms_dbfs(block, rms)
    assert peak[0] == pytest.approx(0.0, abs=1e-4)
    assert peak[1] == pytest.approx(-6.0206, abs=0.01)
    assert peak[2] == FLOOR_DBFS == -120.0
    assert rms[0] == pytest.approx(-3.0103, abs=0.01)
    assert rms[1] == pytest.approx(-3.0103 - 6.0206, abs=0.01)
    assert rms[2] == -120.0
    rms_dbfs(np.zeros((0, 3), np.float32), rms)
    np.testing.assert_array_equal(rms, -120.0)


def test_level_meter_ballistics():
    sr = 48000
    meter = LevelMeter(2, sr, release_seconds=1.0, rms_seconds=0.1, hold_seconds=0.5)
    np.testing.assert_array_equal(meter.peak_dbfs, -120.0)
    t = np.arange(2 * sr) / sr
    sine = np.sin(2 * np.pi * 1000.0 * t)
    signal = np.stack([sine, 0.1 * sine], axis=1).astype(np.float32)
    for start in range(0, signal.shape[0], 480):
        meter.update(signal[start : start + 480])
    assert meter.peak_dbfs[0] == pytest.approx(0.0, abs=0.05)
    assert meter.peak_dbfs[1] == pytest.approx(-20.0, abs=0.05)
    assert meter.rms_dbfs[0] == pytest.approx(-3.01, abs=0.05)
    assert meter.rms_dbfs[1] == pytest.approx(-23.01, abs=0.05)
    assert meter.hold_dbfs[0] == pytest.approx(0.0, abs=0.05)
    silence = np.zeros((480, 2), np.float32)
    for _ in range(25):  # 0.25 s: within the hold time
        meter.update(silence)
    assert meter.hold_dbfs[0] == pytest.approx(0.0, abs=0.05)
    assert meter.peak_dbfs[0] == pytest.approx(-5.0, abs=0.1)  # 20 dB per second
    for _ in range(75):  # 1 s of silence in all
        meter.update(silence)
    assert meter.peak_dbfs[0] == pytest.approx(-20.0, abs=0.1)
    assert meter.hold_dbfs[0] == pytest.approx(meter.peak_dbfs[0], abs=0.1)  # hold expired
    # mean square decays as exp(-t / 0.1 s): -43.4 dB after 1 s
    assert meter.rms_dbfs[0] == pytest.approx(-3.01 - 10 * np.log10(np.e) * 10.0, abs=0.1)
    for _ in range(700):  # long silence: everything reaches the floor
        meter.update(silence)
    np.testing.assert_array_equal(meter.peak_dbfs, -120.0)
    meter.reset()
    np.testing.assert_array_equal(meter.rms_dbfs, -120.0)


def test_level_meter_update_does_not_allocate():
    meter = LevelMeter(2, 44100)
    block = np.random.default_rng(0).uniform(-1, 1, (512, 2)).astype(np.float32)
    meter.update(block)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(200):
            meter.update(block)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < 1024 and current - base < 256
