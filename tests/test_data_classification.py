"""Classification clips: the noise generators, the numpy-only fixture, and the real-source plan."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from noisyneuron.errors import UserError
from noisyneuron.models.data import noise as nz
from noisyneuron.models.data.classification import (
    exists,
    make_clip,
    make_fixture_clips,
    plan_classification,
    synth_music,
)
from noisyneuron.models.data.layout import CLASSES, classification_clips, read_manifest
from noisyneuron.models.data.splits import SPLITS, split_of

SR = 16000


def _psd(x: np.ndarray, n: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density (Hann, 50 % overlap): (freqs Hz, power)."""
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[:: n // 2] * np.hanning(n)
    return np.fft.rfftfreq(n, 1.0 / SR), np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)


def _slope_db_per_octave(x: np.ndarray, lo: float = 100.0, hi: float = 6000.0) -> float:
    f, p = _psd(x)
    m = (f >= lo) & (f <= hi)
    return float(np.polyfit(np.log2(f[m]), 10 * np.log10(p[m]), 1)[0])


# ----- generators ------------------------------------------------------------------------------
def test_noise_colours_have_their_spectral_slopes():
    rng = np.random.default_rng(1)
    white = nz.white_noise(rng, 20.0, SR, -20.0)
    pink = nz.pink_noise(rng, 20.0, SR, -20.0)
    brown = nz.brown_noise(rng, 20.0, SR, -20.0)
    assert abs(_slope_db_per_octave(white)) < 0.3
    assert abs(_slope_db_per_octave(pink) + 3.01) < 0.4
    assert abs(_slope_db_per_octave(brown) + 6.02) < 0.5
    for x in (white, pink, brown):
        assert len(x) == 20 * SR and x.dtype == np.float64
        assert nz.rms_dbfs(x) == pytest.approx(-20.0, abs=1e-9)


def test_hum_has_peaks_at_its_harmonics_only():
    rng = np.random.default_rng(2)
    amps = [1.0, 0.0, 0.5, 0.0, 0.3]
    x = nz.mains_hum(rng, 10.0, SR, mains_hz=60.0, harmonic_amplitudes=amps, drift=0.0005, level_dbfs=-30.0)
    f, p = _psd(x, 16384)
    db = 10 * np.log10(p + 1e-30)

    def peak(hz: float) -> float:
        return float(db[(f > hz - 3) & (f < hz + 3)].max())

    floor = float(np.median(db[(f > 20) & (f < 1000)]))
    for k, a in enumerate(amps, start=1):
        if a > 0:
            assert peak(60.0 * k) > floor + 40, k
    assert peak(60.0) - peak(180.0) == pytest.approx(20 * np.log10(1.0 / 0.5), abs=1.5)
    assert peak(120.0) < peak(180.0) - 30  # an absent harmonic
    assert peak(90.0) < peak(60.0) - 40  # nothing between harmonics


def test_silence_floors_sit_at_the_requested_level(tmp_path):
    rng = np.random.default_rng(3)
    for level in (-90.0, -75.0, -60.0):
        for colour in ("white", "pink"):
            x = nz.noise_floor(rng, 2.0, SR, level, colour)
            assert nz.rms_dbfs(x) == pytest.approx(level, abs=1e-9)
            path = tmp_path / f"{colour}{int(-level)}.flac"
            sf.write(path, x, SR, subtype="PCM_24")
            y, _ = sf.read(path)
            assert nz.rms_dbfs(y) == pytest.approx(level, abs=0.1)  # survives 24-bit FLAC
    assert not np.any(nz.digital_silence(1.0, SR))
    for _ in range(20):
        x, settings = nz.random_silence("pink-floor", rng, 1.0, SR)
        assert -90.0 <= nz.rms_dbfs(x) <= -60.0
        assert nz.rms_dbfs(x) == pytest.approx(settings["level_dbfs"], abs=1e-3)


@pytest.mark.parametrize("kind", nz.NOISE_KINDS)
def test_random_noise_kinds_are_deterministic_and_at_level(kind):
    a, sa = nz.random_noise(kind, np.random.default_rng(5), 2.0, SR, -33.0)
    b, sb = nz.random_noise(kind, np.random.default_rng(5), 2.0, SR, -33.0)
    assert np.array_equal(a, b) and sa == sb
    json.dumps(sa)  # settings go into a clip's JSON
    assert len(a) == 2 * SR and np.all(np.isfinite(a))
    assert nz.rms_dbfs(a) == pytest.approx(-33.0, abs=1e-6)


def test_babble_uses_snippets_and_falls_back_clearly():
    rng = np.random.default_rng(6)
    snippets = [nz.formant_speech(rng, 1.5, SR) for _ in range(3)]
    x = nz.babble(rng, 3.0, SR, snippets, talkers=5, level_dbfs=-30.0)
    assert len(x) == 3 * SR and nz.rms_dbfs(x) == pytest.approx(-30.0)
    with pytest.raises(ValueError):
        nz.babble(rng, 1.0, SR, [], talkers=4)
    _, settings = nz.random_noise("babble", rng, 1.0, SR, -30.0, snippets=None)
    assert "fallback" in settings


def test_formant_speech_is_modulated_at_the_syllable_rate():
    x = nz.formant_speech(np.random.default_rng(7), 8.0, SR)
    env = np.sqrt(np.mean(x[: len(x) // 160 * 160].reshape(-1, 160) ** 2, axis=1))  # 100 Hz envelope
    e = env - env.mean()
    spec = np.abs(np.fft.rfft(e)) ** 2
    f = np.fft.rfftfreq(len(e), 0.01)
    band = spec[(f >= 2) & (f <= 8)].sum() / spec[(f > 0.3) & (f <= 30)].sum()
    assert band > 0.4


def test_synth_music_is_deterministic_and_tonal():
    a, s = synth_music(np.random.default_rng(8), 3.0)
    b, _ = synth_music(np.random.default_rng(8), 3.0)
    assert np.array_equal(a, b) and len(a) == 3 * SR
    assert s["bpm"] >= 80


def test_ambience_files_leave_out_music_and_speech():
    files = nz.ambience_files()
    names = [p.name for ps in files.values() for p in ps]
    assert not any(n.startswith(("ambi_piano", "ambi_choir", "audio-channel-")) for n in names)
    if not names:
        pytest.skip("sonic-pi-samples / sound-theme-freedesktop not installed")
    x, settings = nz.ambience_excerpt(np.random.default_rng(0), (files["sonic-pi-samples"] or files["sound-theme-freedesktop"])[0], 3.0, SR)
    assert len(x) == 3 * SR and "offset" in settings


# ----- fixture ---------------------------------------------------------------------------------
def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_fixture_is_deterministic_balanced_and_split_by_source(tmp_path):
    make_fixture_clips(tmp_path / "a", seed=0)
    make_fixture_clips(tmp_path / "b", seed=0)
    make_fixture_clips(tmp_path / "c", seed=1)
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert a == b
    assert a != c
    clips = classification_clips(tmp_path / "a")
    counts = Counter((clip.split, clip.label) for clip in clips)
    assert counts == {(s, label): 3 for s in SPLITS for label in CLASSES}
    sources: dict[str, set[str]] = {s: set() for s in SPLITS}
    for clip in clips:
        assert clip.seconds == 2.0
        for src in clip.meta["sources"]:
            assert split_of(src["id"]) == clip.split
            assert src["licence"]
            sources[clip.split].add(src["id"])
    assert not (sources["train"] & sources["valid"]) and not (sources["train"] & sources["test"]) and not (sources["valid"] & sources["test"])
    manifest = read_manifest(tmp_path / "a")
    assert manifest["kind"] == "classification" and len(manifest["items"]) == 36
    # levels: silence at most -60 dBFS, the rest at least 10 dB above that
    for clip in clips:
        level = nz.rms_dbfs(clip.load())
        assert (level <= -60.0) if clip.label == "silence" else (level >= -50.5)


# ----- plan and real clips (installed packages) ---------------------------------------------------
def _plan_or_skip(hours: float, seed: int):
    try:
        return plan_classification(hours, seed)
    except UserError as e:
        pytest.skip(f"data tools not installed: {e}")


def _job_source_ids(job) -> list[str]:
    p = job.params
    ids = []
    if "music" in p:
        ids.append(p["music"])
    if "generator_id" in p:
        ids.append(p["generator_id"])
    if "ambience" in p:
        ids.append("ambience:sonic-pi-samples:" + Path(p["ambience"]).name)
    if "effect" in p:
        ids.append("ambience:sound-theme-freedesktop:" + Path(p["effect"]).name)
    for spec in p.get("utterances", []) + p.get("snippets", []):
        ids.append(f"klettres:{spec['path']}" if spec["kind"] == "klettres" else f"tts:{spec['engine']}:{spec['voice']}:{spec['text_id']}")
    return ids


def test_plan_is_deterministic_balanced_and_split_by_source():
    jobs = _plan_or_skip(0.2, 3)
    again = plan_classification(0.2, 3)
    assert [(j.split, j.item_id, j.seed, j.params) for j in jobs] == [(j.split, j.item_id, j.seed, j.params) for j in again]
    other = plan_classification(0.2, 4)
    assert [j.params for j in jobs] != [j.params for j in other]
    assert len(jobs) == 180 and len({j.item_id for j in jobs}) == 180
    labels = Counter(j.params["label"] for j in jobs)
    assert labels == {"music": 48, "speech": 48, "noise": 48, "silence": 36}
    for job in jobs:
        ids = _job_source_ids(job)
        assert ids, job
        assert all(split_of(i) == job.split for i in ids), (job.item_id, ids)
        json.dumps(job.params)
    # a bigger build starts with the same clips
    assert [j.params for j in plan_classification(0.3, 3)[:180]] == [j.params for j in jobs]


def test_one_real_clip_per_label(tmp_path):
    jobs = _plan_or_skip(0.1, 11)
    firsts = {}
    for job in jobs:
        firsts.setdefault(job.params["label"], job)
    for label, job in firsts.items():
        assert not exists(job, tmp_path)
        make_clip(job, tmp_path)
        assert exists(job, tmp_path)
        meta = json.loads((tmp_path / job.split / label / f"{job.item_id}.json").read_text())
        audio, sr = sf.read(tmp_path / job.split / label / f"{job.item_id}.flac")
        assert sr == SR and audio.ndim == 1 and len(audio) == int(job.seconds * SR)
        assert meta["label"] == label and meta["sources"]
        for src in meta["sources"]:
            assert {"kind", "id", "package", "licence"} <= set(src) and src["licence"]
        level = nz.rms_dbfs(audio)
        if label == "silence":
            assert level <= -59.9
        else:
            assert -51.0 <= level <= -13.0, (label, level)
    # a clip is reproducible from its job alone
    job = firsts["speech"]
    first = sf.read(tmp_path / job.split / "speech" / f"{job.item_id}.flac")[0]
    make_clip(job, tmp_path / "again")
    assert np.array_equal(first, sf.read(tmp_path / "again" / job.split / "speech" / f"{job.item_id}.flac")[0])
