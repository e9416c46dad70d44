"""The separation data format and builder: exact stem sums, determinism, splits, resuming."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from noisyneuron.datasets import augment
from noisyneuron.datasets.build import Job, job_seed, run_jobs
from noisyneuron.datasets.fixture import build_separation_fixture, plan_separation_fixture
from noisyneuron.datasets.layout import SEPARATION_RATE, read_manifest, separation_tracks, write_separation_track
from noisyneuron.datasets.splits import SPLIT_FRACTIONS, split_of


def _files(root: Path) -> dict[str, bytes]:
    import soundfile as sf

    out = {}
    for p in sorted(root.rglob("*.flac")):
        data, _ = sf.read(p, dtype="int16")
        out[str(p.relative_to(root))] = data.tobytes()
    return out


@pytest.fixture(scope="module")
def fixture_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sep-fixture")
    build_separation_fixture(root, seed=3)
    return root


def test_mixture_is_exactly_the_sum_of_the_stems(fixture_set):
    tracks = separation_tracks(fixture_set)
    assert len(tracks) == 7
    for t in tracks:
        mix = t.load("mixture")
        assert mix.shape == (int(3.0 * SEPARATION_RATE), 2)
        assert np.array_equal(mix, np.sum([t.load(s) for s in t.stems], axis=0, dtype=np.float32))
        assert np.array_equal(t.load("accompaniment"), np.sum([t.load(s) for s in ("drums", "bass", "other")], axis=0, dtype=np.float32))
        assert np.max(np.abs(mix)) <= 0.99


def test_instrumental_track_has_silent_vocals_and_others_sing(fixture_set):
    tracks = {t.id: t for t in separation_tracks(fixture_set, "test")}
    assert tracks["test-instrumental"].instrumental
    assert not np.any(tracks["test-instrumental"].load("vocals"))
    assert not tracks["test-00000"].instrumental
    assert np.sqrt(np.mean(tracks["test-00000"].load("vocals") ** 2)) > 1e-3


def test_quantisation_scales_stems_together_when_their_sum_would_clip(tmp_path):
    t = np.arange(4410) / SEPARATION_RATE
    loud = np.stack([np.sin(2 * np.pi * 440 * t)] * 2, axis=1) * 0.9
    track = write_separation_track(tmp_path, "test", "loud", {"vocals": loud, "accompaniment": loud.copy()}, {"sources": []})
    assert track.meta["quantise_gain"] == pytest.approx(0.98 / 1.8, rel=1e-3)
    mix = track.load("mixture")
    assert np.max(np.abs(mix)) <= 0.98 + 1e-4
    assert np.array_equal(mix, track.load("vocals") + track.load("accompaniment"))
    # the stems keep their ratio (1:1) after scaling
    assert np.array_equal(track.load("vocals"), track.load("accompaniment"))


def test_bad_stems_are_refused_and_nothing_partial_is_listed(tmp_path):
    with pytest.raises(ValueError):
        write_separation_track(tmp_path, "test", "x", {"vocals": np.zeros((10, 2)), "other": np.zeros((11, 2))}, {})
    with pytest.raises(ValueError):
        write_separation_track(tmp_path, "test", "x", {"other": np.zeros((10, 2))}, {})
    (tmp_path / "test" / "y.partial").mkdir(parents=True)
    (tmp_path / "test" / "y.partial" / "track.json").write_text("{}")
    assert separation_tracks(tmp_path) == []


def test_fixture_build_is_deterministic_per_seed(tmp_path, fixture_set):
    build_separation_fixture(tmp_path / "again", seed=3)
    build_separation_fixture(tmp_path / "other", seed=4)
    same, again, other = _files(fixture_set), _files(tmp_path / "again"), _files(tmp_path / "other")
    assert same.keys() == again.keys() == other.keys()
    assert same == again
    assert all(same[k] != other[k] for k in same if "test-instrumental/vocals" not in k)


def test_splits_do_not_share_a_source(fixture_set):
    manifest = read_manifest(fixture_set)
    owner: dict[str, str] = {}
    for item in manifest["items"]:
        for src in item["sources"]:
            assert owner.setdefault(src["id"], item["split"]) == item["split"], src["id"]
    assert set(manifest["totals"]) == {"train", "valid", "test"}


def test_resume_makes_only_what_is_missing(tmp_path):
    root = tmp_path / "resume"
    build_separation_fixture(root, seed=5)
    before = _files(root)
    import shutil

    shutil.rmtree(root / "valid" / "valid-00001")
    stats = build_separation_fixture(root, seed=5)
    assert (stats.built, stats.skipped) == (1, 6)
    assert _files(root) == before


def test_a_failing_item_is_reported_and_the_rest_built(tmp_path):
    jobs = plan_separation_fixture(seed=1, tracks_per_split=1, seconds=1.0)
    bad = Job("train", "bad", 1.0, 7, {"kind": "no-such-kind", "source": "x"})
    from noisyneuron.datasets.separation import maker, track_done

    stats = run_jobs(jobs + [bad], maker(tmp_path, None), lambda j: track_done(j, tmp_path), progress=False)
    assert stats.built == len(jobs) and stats.failed == 1
    assert stats.errors[0].startswith("train/bad: KeyError")


def test_split_of_is_stable_and_close_to_the_fractions():
    ids = [f"music21:piece{i}" for i in range(5000)]
    splits = [split_of(i) for i in ids]
    assert splits == [split_of(i) for i in ids]
    for name, frac in SPLIT_FRACTIONS.items():
        assert splits.count(name) / len(ids) == pytest.approx(frac, abs=0.02)


def test_job_seed_depends_on_every_key():
    assert job_seed(1, "train", 3) == job_seed(1, "train", 3)
    assert len({job_seed(1, "train", 3), job_seed(2, "train", 3), job_seed(1, "valid", 3), job_seed(1, "train", 4)}) == 4


def test_pan_is_constant_power_and_centre_is_equal():
    x = np.random.default_rng(0).standard_normal(1000)
    for pan in (-1.0, -0.3, 0.0, 0.5, 1.0):
        st = augment.pan_mono(x, pan)
        assert np.sum(st**2) == pytest.approx(2 * np.sum(x**2), rel=1e-9)
    c = augment.pan_mono(x, 0.0)
    assert np.allclose(c[:, 0], c[:, 1]) and np.allclose(c[:, 0], x)
    assert np.allclose(augment.pan_mono(x, -1.0)[:, 1], 0.0, atol=1e-12)


def test_eq_flat_is_identity_and_a_cut_lowers_that_band():
    sr = 44100
    t = np.arange(sr) / sr
    x = np.stack([np.sin(2 * np.pi * 100 * t), np.sin(2 * np.pi * 5000 * t)], axis=1)
    assert np.allclose(augment.apply_eq(x, [(40.0, 0.0), (16000.0, 0.0)], sr), x, atol=1e-9)
    y = augment.apply_eq(x, [(40.0, 0.0), (1000.0, 0.0), (4000.0, -12.0), (16000.0, -12.0)], sr)
    assert augment.rms_db(y[:, 0]) == pytest.approx(augment.rms_db(x[:, 0]), abs=0.1)
    assert augment.rms_db(y[:, 1]) == pytest.approx(augment.rms_db(x[:, 1]) - 12.0, abs=0.5)


def test_reverb_adds_a_decaying_tail_at_the_asked_level():
    sr = 44100
    x = np.zeros((sr, 2))
    x[100:200] = 0.5
    rng = np.random.default_rng(0)
    y, settings = augment.add_reverb(x, rng, sr, wet_db=-6.0, rt60=0.5)
    tail = y[sr // 4 : sr // 4 + 2000]
    late = y[sr // 2 + 4000 : sr // 2 + 6000]
    assert np.sqrt(np.mean(tail**2)) > 10 * np.sqrt(np.mean(late**2)) > 0  # decays
    assert settings["rt60_s"] == 0.5 and settings["wet_db"] == -6.0
    wet = y - x
    assert 10 * np.log10(np.sum(wet**2) / np.sum(x**2)) == pytest.approx(-6.0, abs=0.5)


def test_varispeed_changes_length_and_pitch_together():
    sr = 44100
    t = np.arange(sr) / sr
    x = np.stack([np.sin(2 * np.pi * 440 * t)] * 2, axis=1)
    up = augment.varispeed(x, 12.0, sr)
    assert len(up) == pytest.approx(sr / 2, abs=2)
    spec = np.abs(np.fft.rfft(up[1000:-1000, 0]))
    peak_hz = np.argmax(spec) * sr / (len(up) - 2000)
    assert peak_hz == pytest.approx(880.0, abs=3.0)


def test_rms_db_gates_out_silence():
    x = np.zeros(44100 * 2)
    x[:44100] = 0.1 * np.sqrt(2) * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)
    assert augment.rms_db(x) == pytest.approx(-20.0, abs=0.1)
    assert augment.rms_db(np.zeros(1000)) == float("-inf")


def test_manifest_records_build_and_items(fixture_set):
    manifest = json.loads((fixture_set / "manifest.json").read_text())
    assert manifest["kind"] == "separation" and manifest["build"]["seed"] == 3
    assert len(manifest["items"]) == 7
    item = manifest["items"][0]
    for key in ("id", "split", "seconds", "stems", "sources", "seed", "loudness_dbfs", "accompaniment_fx"):
        assert key in item


# ----- the real builder, on the real sources (installed by scripts/install-data-tools.sh) -----
def _have_real_sources() -> str | None:
    import shutil

    from noisyneuron.datasets.sources import music_recordings

    if shutil.which("fluidsynth") is None:
        return "fluidsynth is not installed (scripts/install-data-tools.sh)"
    if not music_recordings():
        return "no real music packages installed (scripts/install-data-tools.sh)"
    try:
        import music21  # noqa: F401
    except ImportError:
        return "music21 is not installed (scripts/install-data-tools.sh)"
    return None


real_sources = pytest.mark.skipif(_have_real_sources() is not None, reason=str(_have_real_sources()))


@real_sources
def test_plan_is_deterministic_splits_by_source_and_has_every_kind():
    from noisyneuron.datasets.separation import TRACK_KINDS, plan_separation

    jobs = plan_separation(2.0, seed=11)
    again = plan_separation(2.0, seed=11)
    assert [(j.item_id, j.seed, j.params) for j in jobs] == [(j.item_id, j.seed, j.params) for j in again]
    assert [j.params for j in plan_separation(2.0, seed=12)] != [j.params for j in jobs]
    assert len(jobs) == 240
    for j in jobs:
        assert split_of(j.params["source"]) == j.split
    assert {j.params["kind"] for j in jobs} == set(TRACK_KINDS)
    # a bigger build keeps every track of a smaller one
    bigger = {(j.split, j.item_id): j.seed for j in plan_separation(4.0, seed=11)}
    assert all(bigger[(j.split, j.item_id)] == j.seed for j in jobs)


@real_sources
@pytest.mark.parametrize("kind", ["rendered", "real", "instrumental"])
def test_real_tracks_sum_exactly_and_are_deterministic(tmp_path, kind):
    from noisyneuron.datasets.separation import make_track, plan_separation

    job = next(j for j in plan_separation(1.0, seed=2) if j.params["kind"] == kind and j.split == "train")
    job = Job(job.split, job.item_id, 6.0, job.seed, job.params)
    for root in ("a", "b"):
        make_track(job, tmp_path / root, cache_dir=tmp_path / "cache")
    (a,), (b,) = separation_tracks(tmp_path / "a"), separation_tracks(tmp_path / "b")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    mix = a.load("mixture")
    assert mix.shape == (6 * SEPARATION_RATE, 2)
    assert np.array_equal(mix, np.sum([a.load(s) for s in a.stems], axis=0, dtype=np.float32))
    assert a.meta["sources"] and all(s.get("licence") for s in a.meta["sources"])
    assert a.instrumental == (kind == "instrumental")
    if kind == "rendered":
        assert a.stems == ("vocals", "drums", "bass", "other")
    else:
        assert a.stems == ("vocals", "accompaniment")
    assert augment.rms_db(a.load("accompaniment")) > -45.0


def test_pack_makes_a_smaller_lossy_copy_that_reads_the_same_way(tmp_path, fixture_set):
    from noisyneuron.datasets.pack import pack_separation

    first = pack_separation(fixture_set, tmp_path / "p1", max_mb=0.5, split="train", progress=False)
    assert first["tracks"] == 2 and first["bytes"] < 500_000
    packed = separation_tracks(tmp_path / "p1", "train")
    originals = {t.id: t for t in separation_tracks(fixture_set, "train")}
    for t in packed:
        assert t.meta["packed"] and not (t.path / "mixture.flac").exists()
        mix = t.load("mixture")
        assert np.array_equal(mix, np.sum([t.load(s) for s in t.stems], axis=0, dtype=np.float32))
        ref = originals[t.id].load("vocals")
        err = t.load("vocals") - ref
        assert 10 * np.log10(np.sum(ref**2) / np.sum(err**2)) > 10.0  # lossy, but the same audio
    tiny = pack_separation(fixture_set, tmp_path / "p2", max_mb=0.3, split="train", progress=False)
    assert tiny["tracks"] < 2  # the budget holds
    rest = pack_separation(fixture_set, tmp_path / "p3", max_mb=0.5, split="train", skip=1, progress=False)
    assert rest["tracks"] == 1 and rest["next_skip"] == 2


def test_non_finite_stems_are_refused_and_check_finds_a_broken_mixture(tmp_path):
    import soundfile as sf

    from noisyneuron.datasets.layout import check_track

    bad = np.zeros((100, 2))
    bad[5, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite.*vocals"):
        write_separation_track(tmp_path, "test", "nan", {"vocals": bad, "accompaniment": np.zeros((100, 2))}, {})
    assert separation_tracks(tmp_path) == []
    x = np.full((100, 2), 0.25)
    track = write_separation_track(tmp_path, "test", "ok", {"vocals": x, "accompaniment": x}, {})
    assert check_track(track) == []
    sf.write(track.path / "mixture.flac", np.full((100, 2), 0.25), 44100, subtype="PCM_16")
    problems = check_track(track)
    assert len(problems) == 1 and "differs from the sum" in problems[0]
