"""Classification clips: the noise generators, the numpy-only fixture, and the real-source plan."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from noisyneuron.errors import UserError
from noisyneuron.datasets import noise as nz
from noisyneuron.datasets.classification import (
    MIXTURE_MUSIC_DB,
    MIXTURE_SHARE,
    MIXTURE_SNR_DB,
    clip_origin,
    exists,
    package_split,
    make_clip,
    make_fixture_clips,
    plan_classification,
    synth_music,
)
from noisyneuron.datasets.layout import CLASSES, classification_clips, read_manifest
from noisyneuron.datasets.disjoint import classification_leaks
from noisyneuron.datasets.layout import write_classification_clip
from noisyneuron.datasets.sources import _cat_members, _NOT_SFX
from noisyneuron.datasets.splits import PACKAGE_SPLITS, SPLITS, split_of

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


def _job_units(job) -> list[tuple[str, str]]:
    """(unit, the split it must be in) for every source a job plans to use."""
    p = job.params
    units = []
    if "background" in p:  # a mixture: speech over music or noise of the same split
        units += _job_units(type(job)(split=job.split, item_id="bg", seconds=job.seconds, seed=0, params=p["background"]))
    if "music" in p:
        units.append((f"package {p['package']}", package_split(p["package"])))
    if p.get("noise") == "recorded":
        units.append((f"package {p['package']}", package_split(p["package"])))
        for item in ([p["bed"]] if p["bed"] else []) + p["events"]:
            assert item["id"].startswith(p["package"] + ":")
    if "generator_id" in p:
        units.append((p["generator_id"], split_of(p["generator_id"])))
    if "ambience" in p:
        units.append(("package sonic-pi-samples", package_split("sonic-pi-samples")))
    if "effect" in p:
        units.append(("package sound-theme-freedesktop", package_split("sound-theme-freedesktop")))
    for spec in p.get("utterances", []) + p.get("snippets", []):
        unit = spec["speaker"] if spec["kind"] == "voice" else f"tts:{spec['engine']}:{spec['voice']}:{spec['text_id']}"
        units.append((unit, split_of(unit)))
    return units


def test_plan_is_deterministic_balanced_and_split_by_source():
    jobs = _plan_or_skip(0.2, 3)
    again = plan_classification(0.2, 3)
    assert [(j.split, j.item_id, j.seed, j.params) for j in jobs] == [(j.split, j.item_id, j.seed, j.params) for j in again]
    other = plan_classification(0.2, 4)
    assert [j.params for j in jobs] != [j.params for j in other]
    mixtures = [j for j in jobs if j.params.get("mode") == "mixture"]
    assert len(jobs) == 180 + len(mixtures) and len({j.item_id for j in jobs}) == len(jobs)
    labels = Counter(j.params["label"] for j in jobs if j not in mixtures)
    assert labels == {"music": 48, "speech": 48, "noise": 48, "silence": 36}
    assert len(mixtures) == round(180 * MIXTURE_SHARE) and all(j.params["label"] == "speech" for j in mixtures)
    for job in jobs:
        units = _job_units(job)
        assert units, job
        assert all(split == job.split for _, split in units), (job.item_id, units)
        json.dumps(job.params)
    # a bigger build starts with the same clips
    bigger = plan_classification(0.3, 3)
    assert [j.params for j in bigger[:180]] == [j.params for j in jobs[:180]]
    assert [j.params for j in bigger if j.params.get("mode") == "mixture"][: len(mixtures)] == [j.params for j in mixtures]


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


def test_real_packages_and_speakers_are_held_out_whole():
    jobs = _plan_or_skip(1.0, 7)
    where: dict[str, set[str]] = {}
    for job in jobs:
        for unit, _ in _job_units(job):
            if unit.startswith("package ") or ":" in unit and not unit.startswith(("tts:", "noise:", "silence:")):
                where.setdefault(unit, set()).add(job.split)
    assert where and all(len(splits) == 1 for splits in where.values()), {u: s for u, s in where.items() if len(s) > 1}
    # every package a test clip comes from is held out for test, whole: never a train package
    test_packages = {u.split(" ", 1)[1] for u, s in where.items() if u.startswith("package ") and s == {"test"}}
    assert test_packages and all(PACKAGE_SPLITS.get(p) == "test" for p in test_packages)
    # klettres is split by speaker (language), not by clip
    klettres = [u for u in where if u.startswith("klettres-data:")]
    assert all(u.count("/") == 0 for u in klettres)
    # the test split has real music, real speech and real recorded noise
    real_test = Counter(j.params["label"] for j in jobs if j.split == "test" and (
        "music" in j.params or j.params.get("noise") == "recorded" or j.params.get("mode") == "real"))
    if not any(j.params.get("noise") == "recorded" for j in jobs):
        pytest.skip("no sound-effect packages installed (scripts/install-data-tools.sh)")
    assert real_test["music"] > 0 and real_test["speech"] > 0 and real_test["noise"] > 0, real_test


def test_clip_origin_is_real_only_when_every_source_is_recorded():
    rec = {"kind": "recording", "id": "a:b", "package": "a"}
    assert clip_origin({"label": "noise", "sources": [rec, dict(rec, id="a:c")]}) == "real"
    assert clip_origin({"label": "speech", "sources": [rec, {"kind": "tts", "id": "tts:x", "package": "flite"}]}) == "synthetic"
    assert clip_origin({"label": "silence", "sources": [rec]}) == "synthetic"
    assert clip_origin({"label": "noise", "sources": []}) == "synthetic"
    assert clip_origin({"label": "music", "sources": [{"kind": "music", "id": "m:1", "package": "m"}]}) == "real"  # builder v2


def _write(root, split, label, clip_id, sources):
    write_classification_clip(root, split, label, clip_id, np.zeros(160), {"sources": sources})


def test_classification_leaks_name_packages_speakers_and_sources_in_two_splits(tmp_path):
    music = lambda i: {"kind": "recording", "id": f"pkg-a:{i}.ogg", "package": "pkg-a", "licence": "x"}
    voice = lambda c: {"kind": "recording", "id": f"v:ro/{c}", "speaker": "v:ro", "package": "v", "licence": "x"}
    gen = lambda i: {"kind": "synthetic", "id": f"noise:white:{i}", "package": "noisyneuron", "licence": "MIT"}
    _write(tmp_path / "ok", "train", "music", "m1", [music(1)])
    _write(tmp_path / "ok", "train", "speech", "s1", [voice(1)])
    _write(tmp_path / "ok", "test", "noise", "n1", [gen(1)])
    _write(tmp_path / "ok", "test", "noise", "n2", [gen(2)])
    assert classification_leaks([tmp_path / "ok"]) == []
    # another recording of the same package in test: the package is in two splits
    _write(tmp_path / "bad", "test", "music", "m2", [music(2)])
    _write(tmp_path / "bad", "valid", "speech", "s2", [voice(2)])
    _write(tmp_path / "bad", "valid", "noise", "n3", [gen(1)])
    leaks = classification_leaks([tmp_path / "ok", tmp_path / "bad"])
    assert len(leaks) == 3
    assert leaks[0].startswith("package pkg-a is in splits test, train")
    assert any(x.startswith("source noise:white:1 is in splits test, valid") for x in leaks)
    assert any(x.startswith("speaker v:ro is in splits train, valid") for x in leaks)
    assert classification_leaks([tmp_path / "bad"]) == []  # alone, each unit is in one split


def test_sound_catalogues_unpack_and_voices_are_not_effects():
    import struct

    def wav(n):
        data = np.zeros(n, dtype="<i2").tobytes()
        fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
        body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data
        return b"RIFF" + struct.pack("<I", len(body)) + body

    import tempfile

    blob = b"\x10\x00\x00\x00header" + b"\x05horn\x00" + wav(800) + b"\x06train\x00" + wav(1600)
    with tempfile.NamedTemporaryFile(suffix=".cat") as f:
        f.write(blob)
        f.flush()
        members = _cat_members(f.name)
    assert [m[0] for m in members] == ["00.wav", "01.wav"]
    import io

    assert [sf.info(io.BytesIO(m[1])).frames for m in members] == [800, 1600]
    for path in ("/sounds/voice/hello.ogg", "/announcer/go.ogg", "/music/theme.ogg", "/units/archer_ack3.wav", "/taunts/t1.ogg"):
        assert _NOT_SFX.search(path), path
    for path in ("/ambience/wind.ogg", "/sfx/engine_large.ogg", "/sound/mill/mill_turning_00.ogg", "/sound/crowdcheer.wav"):
        assert not _NOT_SFX.search(path), path
    # music that sits among a package's effects is music, never noise
    from noisyneuron.datasets.sources import GAME_MUSIC_FILES, game_music_recordings, sfx_recordings

    themes = {f for files in GAME_MUSIC_FILES.values() for f in files}
    assert not themes & {r.paths[0] for r in sfx_recordings()}
    installed = {f for f in themes if Path(f).is_file()}
    assert installed <= {r.paths[0] for r in game_music_recordings()}


def test_mixtures_put_a_real_speaker_over_real_music_or_noise_at_their_levels(tmp_path):
    jobs = [j for j in _plan_or_skip(0.5, 5) if j.params.get("mode") == "mixture"]
    if not jobs:
        pytest.skip("no real voices with music or effects installed")
    for over in ("music", "noise"):
        job = next((j for j in jobs if j.params["over"] == over), None)
        if job is None:
            continue
        lo, hi = MIXTURE_MUSIC_DB if over == "music" else (-MIXTURE_SNR_DB[1], -MIXTURE_SNR_DB[0])
        assert lo <= job.params["relative_db"] <= hi
        assert all(u["kind"] == "voice" and u["speaker"] == job.params["utterances"][0]["speaker"] for u in job.params["utterances"])
        make_clip(job, tmp_path)
        meta = json.loads((tmp_path / job.split / "speech" / f"{job.item_id}.json").read_text())
        assert meta["origin"] == "mixture" and meta["label"] == "speech"
        packages = {s["package"] for s in meta["sources"]}
        assert job.params["background"]["package"] in packages and len(packages) == 2
        assert all(s["kind"] == "recording" for s in meta["sources"])
