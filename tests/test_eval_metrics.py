"""Separation metrics: SI-SDR and BSS-eval v4 SDR against signals at a known SNR, and museval itself."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from noisyneuron.evaluation.metrics import aggregate, nanmedian, sdr_frames, sdr_museval, si_sdr, snr_db

RATE = 44100
HAVE_MUSEVAL = importlib.util.find_spec("museval") is not None


def _noise_at(signal: np.ndarray, snr: float, rng: np.random.Generator) -> np.ndarray:
    """White noise scaled so that snr_db(signal, noise) == snr exactly."""
    noise = rng.standard_normal(signal.shape)
    return noise * math.sqrt(np.sum(signal**2) / np.sum(noise**2) / 10 ** (snr / 10))


def _music(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Stereo tones plus a little noise, (frames, 2)."""
    t = np.arange(int(seconds * RATE)) / RATE
    left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1330 * t)
    right = 0.25 * np.sin(2 * np.pi * 330 * t + 1.0) + 0.1 * np.sin(2 * np.pi * 2770 * t)
    return np.stack([left, right], axis=1) + 0.02 * rng.standard_normal((t.size, 2))


@pytest.mark.parametrize("snr", [20.0, 10.0, 0.0, -5.0])
def test_si_sdr_of_signal_plus_white_noise_is_the_snr(snr):
    rng = np.random.default_rng(1)
    s = _music(2.0, rng)
    n = _noise_at(s, snr, rng)
    assert snr_db(s, n) == pytest.approx(snr, abs=1e-9)
    # white noise is (nearly) orthogonal to the signal, so alpha ~ 1 and SI-SDR ~ SNR
    assert si_sdr(s, s + n) == pytest.approx(snr, abs=0.1)


def test_si_sdr_is_scale_invariant_and_sdr_is_not():
    rng = np.random.default_rng(2)
    s = _music(1.0, rng)
    est = s + _noise_at(s, 10.0, rng)
    base = si_sdr(s, est)
    for gain in (0.1, 0.5, 3.0, -2.0):
        assert si_sdr(s, gain * est) == pytest.approx(base, abs=1e-9)
    # the plain SDR punishes the gain error
    assert sdr_museval({"x": s}, {"x": 0.5 * est})["x"] < base - 3.0


def test_si_sdr_edge_cases():
    rng = np.random.default_rng(3)
    s = _music(0.5, rng)
    assert math.isnan(si_sdr(np.zeros_like(s), s))  # silent reference: undefined
    assert si_sdr(s, np.zeros_like(s)) == -math.inf  # nothing estimated
    assert si_sdr(s, 2.0 * s) == math.inf  # exact up to gain
    assert si_sdr(s[:, 0], s[:, 0] + _noise_at(s[:, 0], 6.0, rng)) == pytest.approx(6.0, abs=0.1)  # mono works
    with pytest.raises(ValueError):
        si_sdr(s, s[:-1])


def test_si_sdr_zero_mean_option_removes_dc():
    rng = np.random.default_rng(4)
    s = _music(1.0, rng)
    est = s + _noise_at(s, 10.0, rng)
    assert si_sdr(s, est + 0.5) < 5.0  # a DC offset is an error without mean removal
    assert si_sdr(s, est + 0.5, zero_mean=True) == pytest.approx(si_sdr(s, est, zero_mean=True), abs=0.05)


@pytest.mark.parametrize("snr", [15.0, 5.0, 0.0])
def test_museval_sdr_of_signal_plus_noise_is_the_snr(snr):
    rng = np.random.default_rng(5)
    s = _music(6.0, rng)
    # the same SNR in every 1 s window, so the median over windows is the SNR
    est = s.copy()
    for k in range(6):
        w = slice(k * RATE, (k + 1) * RATE)
        est[w] += _noise_at(s[w], snr, rng)
    frames = sdr_frames({"vocals": s}, {"vocals": est})["vocals"]
    assert frames.shape == (6,)
    assert np.allclose(frames, snr, atol=1e-6)
    assert sdr_museval({"vocals": s}, {"vocals": est})["vocals"] == pytest.approx(snr, abs=0.5)


def test_museval_framing_drops_the_partial_window_and_pads_short_estimates():
    rng = np.random.default_rng(6)
    s = _music(3.5, rng)
    est = s + _noise_at(s, 10.0, rng)
    assert sdr_frames({"a": s}, {"a": est})["a"].shape == (3,)  # the last 0.5 s is not scored
    short = sdr_frames({"a": s}, {"a": est[: 2 * RATE]})["a"]  # zero padded: window 3 is silent
    assert np.isfinite(short[:2]).all() and np.isnan(short[2])
    assert sdr_frames({"a": s[:1000]}, {"a": est[:1000]})["a"].shape == (1,)  # shorter than a window


def test_silent_references_and_windows_give_nan_not_errors():
    rng = np.random.default_rng(7)
    s = _music(4.0, rng)
    est = s + _noise_at(s, 10.0, rng)
    silent = np.zeros_like(s)
    # a whole silent reference (instrumental track's vocals): NaN, museval would raise
    assert math.isnan(sdr_museval({"vocals": silent}, {"vocals": est})["vocals"])
    # jointly evaluated targets share museval's rule: a window where one target is silent is NaN for all
    v = s.copy()
    v[RATE : 2 * RATE] = 0.0
    frames = sdr_frames({"vocals": v, "accompaniment": s}, {"vocals": v + 0.01, "accompaniment": est})
    assert np.isnan(frames["vocals"][1]) and np.isnan(frames["accompaniment"][1])
    assert np.isfinite(frames["accompaniment"][[0, 2, 3]]).all()
    # a silent estimate: NaN as well (museval raises)
    assert math.isnan(sdr_museval({"vocals": s}, {"vocals": silent})["vocals"])
    # an exact estimate: +inf
    assert sdr_museval({"vocals": s}, {"vocals": s})["vocals"] == math.inf


@pytest.mark.skipif(not HAVE_MUSEVAL, reason="museval is not installed (scripts/install-data-tools.sh)")
def test_fast_backend_equals_museval_bss_eval_v4():
    rng = np.random.default_rng(8)
    n = int(3.3 * RATE)
    vocals = _music(3.3, rng)
    vocals[RATE : 2 * RATE] = 0.0  # a silent window: NaN for both targets
    acc = 0.1 * rng.standard_normal((n, 2))
    # estimates with interference, filtering and a small delay (what the filters would model)
    est_v = vocals + 0.3 * acc + 0.01 * rng.standard_normal((n, 2))
    est_a = np.roll(acc, 3, axis=0) + 0.2 * vocals
    refs, ests = {"vocals": vocals, "accompaniment": acc}, {"vocals": est_v, "accompaniment": est_a}
    fast = sdr_frames(refs, ests, backend="fast")
    slow = sdr_frames(refs, ests, backend="museval")
    from noisyneuron.evaluation.metrics import _stack, museval_bss_eval

    _, r, e = _stack(refs, ests)
    joint = museval_bss_eval(r, e)  # museval.evaluate's joint call, as SiSEC runs it
    for j, target in enumerate(refs):
        assert np.array_equal(np.isnan(fast[target]), np.isnan(joint[j]))
        assert np.allclose(fast[target], joint[j], atol=1e-6, equal_nan=True)
        assert np.allclose(slow[target], joint[j], atol=1e-9, equal_nan=True)
    assert np.isnan(fast["vocals"][1]) and np.isnan(fast["accompaniment"][1])
    assert np.isfinite(fast["vocals"][[0, 2]]).all()


def test_aggregate_ignores_nan_and_keeps_inf():
    agg = aggregate([1.0, 2.0, math.nan, 10.0])
    assert agg == {"median": 2.0, "mean": pytest.approx(13 / 3), "min": 1.0, "max": 10.0, "n": 3}
    assert aggregate([math.nan])["n"] == 0 and math.isnan(aggregate([])["median"])
    assert aggregate([1.0, math.inf, math.inf])["median"] == math.inf
    assert nanmedian(np.array([math.nan, 3.0, 1.0])) == 2.0
