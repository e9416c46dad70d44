"""The real-world evaluation set: held-out sources only, no generator, exact stems, determinism,
and the split-disjointness check that fails when a voice or recording is in two splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from noisyneuron.datasets import production
from noisyneuron.datasets.disjoint import generator_sources, split_leaks
from noisyneuron.datasets.splits import split_of
from noisyneuron.datasets.voices import all_voice_sources

pytestmark = pytest.mark.skipif(not production.available(), reason="pedalboard is not installed (scripts/install-data-tools.sh)")
RATE = 44100


def _stems(seconds=3.0, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    voice = np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 0.7 * t) > 0) * 0.2
    band = rng.normal(0, 0.05, (n, 2)) + 0.3 * np.sin(2 * np.pi * 55 * t)[:, None]
    return voice, band


def test_every_voice_has_one_split_and_speakers_never_share_one():
    voices = all_voice_sources()
    if not voices:
        pytest.skip("no real voice packages installed")
    by_split = {}
    for v in voices:
        assert v.split == split_of(v.id)
        by_split.setdefault(v.split, set()).add(v.id)
    splits = list(by_split.values())
    for i in range(len(splits)):
        for j in range(i + 1, len(splits)):
            assert not splits[i] & splits[j]


def test_produced_vocal_and_master_keep_stems_summing_to_the_mixture():
    voice, band = _stems()
    vocal, settings = production.produce_vocal(voice, np.random.default_rng(1), RATE)
    assert vocal.shape == (len(voice), 2) and np.all(np.isfinite(vocal)) and "compressor" in settings
    stems = {"vocals": vocal, "accompaniment": band}
    mastered, m = production.master(stems, np.random.default_rng(2), RATE)
    mix_alone, _ = production.master({"mix": vocal + band}, np.random.default_rng(2), RATE)
    # one gain curve for every stem: the mastered stems sum to the mastered mixture
    np.testing.assert_allclose(mastered["vocals"] + mastered["accompaniment"], mix_alone["mix"], atol=1e-9)
    assert np.max(np.abs(mix_alone["mix"])) <= 10 ** (-1 / 20) + 1e-6  # the limiter's ceiling
    assert -16.0 < production.loudness_lufs(mix_alone["mix"], RATE) < -6.0


def test_lossy_round_trip_puts_the_coding_error_in_the_accompaniment_only():
    voice, band = _stems()
    stems = {"vocals": np.stack([voice, voice], 1), "accompaniment": band}
    for seed in range(3):  # several codecs
        out, s = production.lossy_round_trip(stems, np.random.default_rng(seed), RATE, into="accompaniment")
        np.testing.assert_array_equal(out["vocals"], stems["vocals"])
        if s["codec"] is not None:
            assert not np.array_equal(out["accompaniment"], stems["accompaniment"])
            assert s["snr_db"] > 6.0


def test_split_leaks_finds_a_speaker_in_two_splits(tmp_path):
    from noisyneuron.datasets.layout import write_separation_track

    z = np.zeros((RATE, 2))
    v = z.copy()
    v[:, 0] = 0.1
    src = {"kind": "recording", "id": "tuxpaint-stamps-default:ro/a.ogg", "speaker": "tuxpaint-stamps-default:ro", "package": "x", "licence": "y"}
    write_separation_track(tmp_path / "a", "train", "t1", {"vocals": v, "accompaniment": z}, {"sources": [src]})
    write_separation_track(tmp_path / "b", "test", "t2", {"vocals": v, "accompaniment": z}, {"sources": [dict(src, id="tuxpaint-stamps-default:ro/b.ogg")]})
    leaks = split_leaks([tmp_path / "a", tmp_path / "b"])
    assert len(leaks) == 1 and "tuxpaint-stamps-default:ro" in leaks[0]
    assert split_leaks([tmp_path / "b"]) == []


@pytest.fixture(scope="module")
def realworld_build(tmp_path_factory):
    from noisyneuron.datasets.commands import build_dataset
    from noisyneuron.datasets.realworld import realworld_pools

    pools = realworld_pools()
    if not all(pools[s]["accompaniment"] for s in pools):
        pytest.skip("held-out music packages are not installed (scripts/install-data-tools.sh)")
    out = tmp_path_factory.mktemp("rw")
    build_dataset("realworld", out, 0, seed=3, workers=1, item_seconds=4.0, progress=False, tracks=4)
    return out


def test_realworld_set_uses_held_out_sources_and_no_generator(realworld_build):
    from noisyneuron.datasets.layout import separation_tracks

    tracks = separation_tracks(realworld_build)
    assert {t.split for t in tracks} == {"valid", "test"}
    assert generator_sources(realworld_build) == []
    for t in tracks:
        for src in t.meta["sources"]:
            assert split_of(src.get("speaker") or src["id"]) == t.split, (t.id, src)
        mix = t.load("mixture")
        total = sum(t.load(s) for s in t.stems)
        np.testing.assert_allclose(mix, total, atol=1e-6)


def test_realworld_tracks_are_deterministic_per_seed(realworld_build, tmp_path):
    from noisyneuron.datasets.realworld import make_realworld_track, plan_realworld

    job = plan_realworld(4, 3, 4.0)[0]
    make_realworld_track(job, tmp_path)
    a = (tmp_path / job.split / job.item_id / "mixture.flac").read_bytes()
    b = (realworld_build / job.split / job.item_id / "mixture.flac").read_bytes()
    assert a == b
    assert json.loads((tmp_path / job.split / job.item_id / "track.json").read_text())["sources"]
