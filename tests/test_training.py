"""Training the separator: data sampling, loss, checkpoints and resuming, logs, export, CLI.

Everything runs on a tiny fixture data set (3 s tracks) with a tiny model (hidden 32, one GRU
layer), 1 s segments and batches of 2, on one CPU thread, so the module takes seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from noisyneuron.errors import UserError
from noisyneuron.models import training
from noisyneuron.datasets.fixture import build_separation_fixture
from noisyneuron.datasets.layout import SEPARATION_RATE, write_separation_track
from noisyneuron.models.separator import STEMS, SeparatorConfig, SeparatorNet
from noisyneuron.models.training import (
    StemSegments,
    TrainConfig,
    export_separator,
    global_sdr,
    load_separator,
    separation_loss,
    train,
)

SEG = 1.0
T = int(SEG * SEPARATION_RATE)


def _config(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        data=data, out=out, steps=6, batch_size=2, segment_seconds=SEG, hidden=32, layers=1,
        valid_every=3, checkpoint_every=2, valid_tracks=2, torch_threads=1, seed=0,
    )
    base.update(kw)
    return TrainConfig(**base)


def _state(path: Path) -> dict:
    return torch.load(path, weights_only=True)["model"]


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: fast and repeatable on a busy machine (training sets its own)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sep-fixture")
    build_separation_fixture(root, seed=0, tracks_per_split=2, seconds=3.0)
    return root


@pytest.fixture(scope="module")
def two_stem_data(tmp_path_factory) -> Path:
    """One vocals + accompaniment track: 2 s, silent for its first 1.5 s."""
    root = tmp_path_factory.mktemp("sep-two-stem")
    rng = np.random.default_rng(3)
    n = 2 * SEPARATION_RATE
    loud = np.arange(n) >= int(1.5 * SEPARATION_RATE)
    vocals = (0.2 * rng.standard_normal((n, 2)) * loud[:, None]).astype(np.float32)
    accomp = (0.2 * rng.standard_normal((n, 2)) * loud[:, None]).astype(np.float32)
    write_separation_track(root, "train", "train-two", {"vocals": vocals, "accompaniment": accomp}, {"sources": []})
    (root / "manifest.json").write_text("{}\n")
    return root


@pytest.fixture(scope="module")
def run_full(fixture_data, tmp_path_factory) -> Path:
    """An uninterrupted 6-step run."""
    out = tmp_path_factory.mktemp("run-full")
    summary = train(_config(fixture_data, out), progress=False)
    assert summary["steps"] == 6 and summary["completed"]
    return out


# ----- data -----------------------------------------------------------------------------------
def test_segments_shapes_exact_sums_and_determinism(fixture_data):
    seg = StemSegments(fixture_data, "train", SEG, seed=0)
    b = seg.batch(5, 2)
    assert b["stems"].shape == (2, len(STEMS), 2, T) and b["stems"].dtype == torch.float32
    assert b["mixture"].shape == (2, 2, T)
    assert b["known"].shape == (2, 4) and bool(b["known"].all())
    assert not bool(b["two_stem"].any())
    for i in range(2):
        ex = seg.example(5 * 2 + i)
        assert np.array_equal(ex["mixture"], ex["stems"].sum(axis=0, dtype=np.float32))  # exact
        assert np.array_equal(ex["stems"], b["stems"][i].numpy())
        rms_db = 10 * np.log10(np.mean(ex["mixture"].astype(np.float64) ** 2))
        assert rms_db > -50
    again = seg.batch(5, 2)
    assert torch.equal(again["stems"], b["stems"])  # a pure function of (seed, step)
    assert not torch.equal(seg.batch(6, 2)["stems"], b["stems"])
    assert not torch.equal(StemSegments(fixture_data, "train", SEG, seed=1).batch(5, 2)["stems"], b["stems"])
    # RAM and seeking reads give the same samples
    ram = StemSegments(fixture_data, "train", SEG, seed=0, preload=True)
    assert torch.equal(ram.batch(5, 2)["stems"], b["stems"])


def test_segments_read_the_right_samples(fixture_data):
    """Without augmentation, each stem is the file's samples at one common offset."""
    seg = StemSegments(fixture_data, "train", SEG, seed=0, augment=False)
    for index in range(3):
        ex = seg.example(index)
        found = False
        for track in seg.tracks:
            full = {s: sf.read(track.path / f"{s}.flac", dtype="float32", always_2d=True)[0].T for s in STEMS}
            v = full["vocals"]
            candidates = np.flatnonzero((v[0, : v.shape[1] - T + 1] == ex["stems"][0, 0, 0]) & (v[1, : v.shape[1] - T + 1] == ex["stems"][0, 1, 0]))
            for off in candidates:  # vocals alone can match at many offsets (silent rests): all stems must
                if all(np.array_equal(full[s][:, off : off + T], ex["stems"][k]) for k, s in enumerate(STEMS)):
                    found = True
                    break
            if found:
                break
        assert found, f"example {index} is not a slice of any train track"


def test_two_stem_tracks_flags_and_silence_skip(two_stem_data):
    seg = StemSegments(two_stem_data, "train", 0.5, seed=0)
    n = int(0.5 * SEPARATION_RATE)
    floor_db = -50
    for index in range(10):
        ex = seg.example(index)
        assert ex["stems"].shape == (4, 2, n)
        assert ex["known"].tolist() == [True, False, False, False]
        assert bool(ex["two_stem"])
        assert not ex["stems"][1].any() and not ex["stems"][2].any()  # drums, bass empty
        assert ex["stems"][3].any()  # the accompaniment sits in "other"
        assert np.array_equal(ex["mixture"], ex["stems"].sum(axis=0, dtype=np.float32))
        # 2/3 of the possible offsets give pure silence: the sampler must have skipped those
        assert 10 * np.log10(np.mean(ex["mixture"].astype(np.float64) ** 2) + 1e-30) > floor_db


def test_two_stem_loss_only_sees_vocals_and_the_accompaniment_sum(two_stem_data):
    torch.manual_seed(0)
    net = SeparatorNet(SeparatorConfig(hidden=16, layers=1))
    b = StemSegments(two_stem_data, "train", 0.5, seed=0).batch(0, 2)
    stems = b["stems"]
    moved = stems.clone()  # the same accompaniment, spread differently over drums/bass/other
    moved[:, 1] = 0.3 * stems[:, 3]
    moved[:, 3] = 0.7 * stems[:, 3]
    with torch.no_grad():
        base = separation_loss(net, stems, b["known"], b["two_stem"])
        same = separation_loss(net, moved, b["known"], b["two_stem"])
        four = separation_loss(net, moved)  # as four-stem examples, the split matters
    assert torch.allclose(base, same, rtol=1e-5)
    assert not torch.allclose(base, four, rtol=1e-3)


# ----- loss and optimisation ------------------------------------------------------------------
def test_loss_drops_when_overfitting_one_batch(fixture_data):
    torch.manual_seed(0)
    net = SeparatorNet(SeparatorConfig(hidden=32, layers=1))
    b = StemSegments(fixture_data, "train", SEG, seed=0).batch(0, 2)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = separation_loss(net, b["stems"], b["known"], b["two_stem"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.isfinite(losses).all()
    assert min(losses[-3:]) < 0.7 * losses[0], losses


def test_global_sdr():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((2, 1000))
    assert global_sdr(s, s + 0.1 * s) == pytest.approx(20.0)
    assert global_sdr(s, np.zeros_like(s)) == pytest.approx(0.0, abs=1e-6)


# ----- runs, checkpoints, resuming ------------------------------------------------------------
def test_log_plot_best_and_checkpoint_contents(run_full, fixture_data):
    rows = [json.loads(line) for line in (run_full / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6]
    for r in rows:
        assert {"step", "loss", "lr", "seconds", "valid_vocals_sdr", "valid_accompaniment_sdr"} <= set(r)
        assert np.isfinite(r["loss"]) and np.isfinite(r["valid_vocals_sdr"]) and np.isfinite(r["valid_accompaniment_sdr"])
    assert rows[1]["seconds"] >= rows[0]["seconds"] > 0
    assert (run_full / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = torch.load(run_full / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 6
    assert {"model", "optimizer", "scheduler", "config", "rng", "data_manifest_hash"} <= set(ckpt)
    assert ckpt["data_manifest_hash"] == training.manifest_hash(fixture_data)
    assert ckpt["config"]["steps"] == 6 and ckpt["config"]["hidden"] == 32
    best = torch.load(run_full / "best.pt", weights_only=True)
    best_row = max(rows, key=lambda r: r["valid_vocals_sdr"])
    assert best["step"] == best_row["step"]
    assert best["valid"]["vocals_sdr"] == pytest.approx(best_row["valid_vocals_sdr"])
    assert "optimizer" not in best
    assert not list(run_full.glob("*.partial*"))


def test_interrupted_and_resumed_run_matches_uninterrupted(run_full, fixture_data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    config = _config(fixture_data, out)
    real_step = training._train_step
    calls = []

    def step_then_ctrl_c(*args, **kw):
        loss = real_step(*args, **kw)
        calls.append(loss)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C mid-run: finish the step, save, re-raise
        return loss

    monkeypatch.setattr(training, "_train_step", step_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        train(config, progress=False)
    assert len(calls) == 3
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 3
    monkeypatch.setattr(training, "_train_step", real_step)

    summary = train(config, progress=False)
    assert summary["steps"] == 6
    full, resumed = _state(run_full / "checkpoint.pt"), _state(out / "checkpoint.pt")
    assert full.keys() == resumed.keys()
    for k in full:
        assert torch.allclose(full[k], resumed[k], atol=1e-6), k
    # and the log tells the same story
    rows_full = [json.loads(x) for x in (run_full / "log.jsonl").read_text().splitlines()]
    rows_res = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows_res] == [3, 6]
    assert [r["loss"] for r in rows_res] == pytest.approx([r["loss"] for r in rows_full], rel=1e-5)


def test_stop_at_then_continue(run_full, fixture_data, tmp_path):
    out = tmp_path / "run"
    assert train(_config(fixture_data, out, valid_every=100), progress=False, stop_at=4)["steps"] == 4
    assert not train(_config(fixture_data, out, valid_every=100), progress=False, stop_at=4)["completed"]
    assert train(_config(fixture_data, out, valid_every=100), progress=False)["steps"] == 6
    full, resumed = _state(run_full / "checkpoint.pt"), _state(out / "checkpoint.pt")
    assert all(torch.allclose(full[k], resumed[k], atol=1e-6) for k in full)


def test_resume_refuses_other_data_or_settings(run_full, fixture_data, tmp_path):
    other = tmp_path / "data"
    shutil.copytree(fixture_data, other)
    with open(other / "manifest.json", "a") as f:
        f.write(" ")
    out = tmp_path / "run"
    shutil.copytree(run_full, out)
    with pytest.raises(UserError, match="different data set") as err:
        train(_config(other, out), progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="steps=6"):
        train(_config(fixture_data, out, steps=8), progress=False)
    # force accepts the changed data set (the run is already complete: nothing more to do)
    summary = train(_config(other, out), progress=False, force=True)
    assert summary["steps"] == 6 and summary["completed"]


def test_cuda_without_gpu_is_a_user_error(fixture_data, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UserError, match="no CUDA GPU") as err:
        train(_config(fixture_data, tmp_path / "run", device="cuda"), progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


# ----- export ---------------------------------------------------------------------------------
def test_export_and_load_give_the_trained_model(run_full, tmp_path):
    meta = export_separator(run_full / "checkpoint.pt", tmp_path / "sep.pt")
    size = (tmp_path / "sep.pt").stat().st_size
    assert size == meta["bytes"] < 20 * 1024 * 1024
    assert meta["training_steps"] == 6 and meta["latency_samples"] == 1007 and meta["sample_rate"] == 44100
    assert meta["stems"] == list(STEMS) and meta["data_manifest_hash"]

    ckpt = torch.load(run_full / "checkpoint.pt", weights_only=True)
    trained = SeparatorNet(SeparatorConfig.from_dict(ckpt["model_config"]))
    trained.load_state_dict(ckpt["model"])
    trained.eval()
    net = load_separator(tmp_path / "sep.pt")
    assert not net.training and net.config.hidden == 32
    x = 0.1 * torch.randn(1, 2, 8000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got = trained(x), net(x)
    assert torch.allclose(want, got, atol=1e-6)
    assert not torch.allclose(want[:, 0], want[:, 1], atol=1e-3)  # a real separation, not a copy

    half = export_separator(run_full / "checkpoint.pt", tmp_path / "sep16.pt", data_manifest_hash="abc", dtype="float16")
    assert half["bytes"] < 0.6 * meta["bytes"] and half["data_manifest_hash"] == "abc"
    with torch.no_grad():
        assert torch.allclose(load_separator(tmp_path / "sep16.pt")(x), want, atol=2e-3)
    with pytest.raises(UserError):
        load_separator(run_full / "checkpoint.pt")  # a checkpoint is not an export


# ----- command line ---------------------------------------------------------------------------
def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    training.add_cli_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_trains_and_exports(fixture_data, tmp_path, capsys):
    out, model = tmp_path / "run", tmp_path / "model.pt"
    args = _parse(
        "--data", str(fixture_data), "--out", str(out), "--steps", "2", "--batch-size", "2", "--segment-seconds", "0.5",
        "--hidden", "16", "--layers", "1", "--valid-every", "2", "--threads", "1", "--export", str(model), "-q",
    )
    assert training.cli_main(args) == 0
    assert model.is_file() and load_separator(model).config.hidden == 16
    assert "trained 2 steps" in capsys.readouterr().out
    # export again from the run folder without training, at half precision
    half = tmp_path / "half.pt"
    args = _parse("--data", str(fixture_data), "--out", str(out), "--steps", "2", "--batch-size", "2", "--segment-seconds", "0.5",
                  "--hidden", "16", "--layers", "1", "--export", str(half), "--export-only", "--export-dtype", "float16")
    assert training.cli_main(args) == 0
    assert "trained" not in capsys.readouterr().out
    net16 = load_separator(half)
    assert net16.export_meta["dtype"] == "float16" and half.stat().st_size < model.stat().st_size
    with pytest.raises(UserError, match="no checkpoint"):
        training.cli_main(_parse("--data", str(fixture_data), "--out", str(tmp_path / "nothing"), "--export", str(half), "--export-only"))


def test_cli_rejects_bad_data(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        training.cli_main(_parse("--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run")))
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    with pytest.raises(UserError, match="manifest"):
        training.cli_main(_parse("--data", str(empty), "--out", str(tmp_path / "run")))
    (empty / "manifest.json").write_text("{}\n")
    with pytest.raises(UserError, match="no train tracks"):
        training.cli_main(_parse("--data", str(empty), "--out", str(tmp_path / "run")))
    with pytest.raises(UserError, match="steps"):
        training.cli_main(_parse("--data", str(empty), "--steps", "0", "--out", str(tmp_path / "run")))


def test_a_new_run_starts_from_exported_weights_and_carries_their_history(run_full, fixture_data, tmp_path):
    """A machine with no run folder fine-tunes the exported (e.g. shipped) weights: the new run
    starts from them exactly, and its export counts every step of both runs."""
    first = export_separator(run_full / "checkpoint.pt", tmp_path / "first.pt")
    start = load_separator(tmp_path / "first.pt")
    cfg = _config(fixture_data, tmp_path / "second", steps=2, checkpoint_every=1, init_from=tmp_path / "first.pt", valid_data=fixture_data)
    summary = train(cfg, progress=False)
    assert summary["steps"] == 2
    second = export_separator(tmp_path / "second" / "checkpoint.pt", tmp_path / "second.pt")
    assert second["training_steps"] == first["training_steps"] + 2
    assert [h["steps"] for h in second["training_history"]] == [first["training_steps"], 2]
    assert second["training_history"][-1]["data_train_hours"] is not None
    tuned = load_separator(tmp_path / "second.pt")
    assert tuned.config.hidden == start.config.hidden
    delta = max(float((a - b).abs().max()) for a, b in zip(tuned.state_dict().values(), start.state_dict().values()))
    assert 0 < delta < 1.0  # moved from the start by two small steps, not re-initialised
    with pytest.raises(UserError, match="init-from"):
        train(_config(fixture_data, tmp_path / "third", init_from=tmp_path / "missing.pt"), progress=False)


def test_widening_to_a_stereo_design_starts_from_the_same_function_and_trains(run_full, fixture_data, tmp_path):
    """``--features mid-side-phase`` from magnitude-only weights: the widened network gives
    the same stems before any step, the added planes get measured normalisation, and the run
    trains, resumes and exports the new design."""
    export_separator(run_full / "checkpoint.pt", tmp_path / "first.pt")
    start = load_separator(tmp_path / "first.pt").float()
    wide, first_new = training.widen_features(start, "mid-side-phase")
    assert first_new == start.input_mean.numel() and wide.input_mean.numel() == 5 * start.config.n_bins
    x = torch.randn(1, 2, 8000) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(wide(x), start(x), atol=1e-6, rtol=0)
    with pytest.raises(UserError, match="cannot start from"):
        training.widen_features(wide, "mid-side")

    cfg = _config(fixture_data, tmp_path / "wide", steps=4, checkpoint_every=2, init_from=tmp_path / "first.pt", features="mid-side-phase")
    assert train(cfg, progress=False, stop_at=2)["steps"] == 2
    assert train(cfg, progress=False)["steps"] == 4  # resumes the widened network
    meta = export_separator(tmp_path / "wide" / "checkpoint.pt", tmp_path / "wide.pt")
    tuned = load_separator(tmp_path / "wide.pt")
    assert tuned.config.features == meta["config"]["features"] == "mid-side-phase"
    added = tuned.input_scale[first_new:].detach()
    assert not torch.allclose(added, torch.ones_like(added))  # measured on the data, not left neutral
    assert tuned.encode.weight[:, first_new:].abs().max() > 0  # the new planes are being used


def test_feature_design_names_match_the_model():
    from noisyneuron.models.separator import FEATURE_DESIGNS
    from noisyneuron.models.train_options import FEATURE_DESIGN_NAMES

    assert FEATURE_DESIGN_NAMES == tuple(FEATURE_DESIGNS)
    with pytest.raises(ValueError, match="features"):
        SeparatorConfig(features="waveform")


def test_karaoke_weight_mixes_in_vocals_and_mixture_minus_vocals(fixture_data, tmp_path):
    """0 is the four-stem loss; 1 is the mean of the vocals term and the accompaniment term
    (mask 1 - m_vocals against mixture minus vocals), computed here by hand."""
    torch.manual_seed(0)
    net = SeparatorNet(SeparatorConfig(hidden=16, layers=1))
    stems = torch.randn(2, 4, 2, 6000) * 0.1
    four = separation_loss(net, stems)
    assert float(separation_loss(net, stems, karaoke_weight=0.0).detach()) == float(four.detach())
    mixture = stems.sum(dim=1)
    spec = net.analyse(mixture)
    mask = net.masks(net.features(spec), n_bins=spec.shape[2])[0][:, 0]
    vocals = (mask * spec.abs() - net.analyse(stems[:, 0]).abs()).abs().mean(dim=(1, 2, 3))
    rest = ((1 - mask) * spec.abs() - net.analyse(mixture - stems[:, 0]).abs()).abs().mean(dim=(1, 2, 3))
    by_hand = (0.5 * (vocals + rest)).mean()
    torch.testing.assert_close(separation_loss(net, stems, karaoke_weight=1.0), by_hand)
    torch.testing.assert_close(separation_loss(net, stems, karaoke_weight=0.25), 0.75 * four + 0.25 * by_hand)
    with pytest.raises(UserError, match="karaoke-weight"):
        train(_config(fixture_data, tmp_path / "bad", karaoke_weight=1.5), progress=False)
