"""Classifier evaluation: metrics, decision latency, the report files, the registry."""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections import deque

import numpy as np
import pytest

from noisyneuron.errors import UserError
from noisyneuron.evaluation import classifier as ev
from noisyneuron.datasets.classification import make_fixture_clips
from noisyneuron.datasets.layout import CLASSES, write_classification_clip, write_manifest

SR = 16000


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("fixture")
    make_fixture_clips(root, seed=0)
    return root


def test_prf_on_a_known_confusion():
    r = ev.prf(np.array([[5, 1], [2, 2]]))
    assert r["precision"] == pytest.approx([5 / 7, 2 / 3])
    assert r["recall"] == pytest.approx([5 / 6, 1 / 2])
    assert r["f1"] == pytest.approx([10 / 13, 4 / 7])
    assert r["accuracy"] == pytest.approx(0.7)
    assert r["macro_f1"] == pytest.approx((10 / 13 + 4 / 7) / 2)
    # an empty column gives precision 0, not NaN
    r = ev.prf(np.array([[3, 0], [1, 0]]))
    assert r["precision"] == [0.75, 0.0] and r["f1"][1] == 0.0


def test_decision_latencies_of_a_delayed_decider():
    hop = 400  # 25 ms
    truth = ["music"] * 80 + ["speech"] * 80 + ["music"] * 80 + ["noise"] * 8 + ["silence"] * 80
    delay = 10
    decisions = ["silence"] * delay + truth[:-delay]
    changes = [(80 * hop, "speech"), (160 * hop, "music"), (240 * hop, "noise"), (248 * hop, "silence")]
    settled, never = ev.decision_latencies(decisions, hop, SR, changes)
    # hop k is timed at its end: a change seen 10 hops later is decided 11 hops (0.275 s) after it
    assert settled == pytest.approx([0.275, 0.275, 0.275])
    assert never == 1  # "noise" lasts 0.2 s: it can never stay right for 0.5 s


class _ConstantLabelClip:
    """Clips whose samples encode their label: a constant level per label (silence = 0)."""

    LEVEL = {"music": 0.1, "speech": 0.2, "noise": 0.3, "silence": 0.0}


class DelayedOracle:
    """Reads the label off the constant-level audio and answers exactly 0.25 s late."""

    name = "delayed-oracle"
    classes = CLASSES
    sample_rate = SR
    hop = 400
    DELAY_HOPS = 10  # 10 x 25 ms = 0.25 s

    def reset(self):
        self._pending = np.zeros(0, dtype=np.float32)
        self._queue = deque(["silence"] * self.DELAY_HOPS)

    def __init__(self):
        self.reset()

    def process(self, block):
        data = np.concatenate([self._pending, np.asarray(block, dtype=np.float32)])
        out = []
        while len(data) >= self.hop:
            v = float(np.mean(data[: self.hop]))
            data = data[self.hop :]
            label = min(_ConstantLabelClip.LEVEL, key=lambda k: abs(_ConstantLabelClip.LEVEL[k] - v))
            self._queue.append(label)
            out.append(self._queue.popleft())
        self._pending = data
        return out


def test_latency_end_to_end_with_a_delayed_oracle(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for label in CLASSES:
        for k in range(4):
            write_classification_clip(data, "test", label, f"{label}-{k}", np.full(2 * SR, _ConstantLabelClip.LEVEL[label]), {"sources": []})
    write_manifest(data, "classification", {})
    monkeypatch.setitem(ev.CLASSIFIER_SYSTEMS, "delayed-oracle", DelayedOracle)
    report = ev.evaluate_classifiers(data, ["delayed-oracle"], "test", tmp_path / "out", progress=False)
    r = report["systems"]["delayed-oracle"]
    assert r["accuracy"] == 1.0  # the clip vote ignores the first 0.5 s
    lat = r["latency"]
    assert lat["changes"] > 5 and lat["unsettled_fraction"] == 0.0
    assert abs(lat["mean_s"] - 0.25) <= 400 / SR + 1e-9
    assert abs(lat["median_s"] - 0.25) <= 400 / SR + 1e-9


def test_evaluate_energy_baseline_on_the_fixture(fixture_dir, tmp_path):
    out = tmp_path / "report"
    report = ev.evaluate_classifiers(fixture_dir, ["energy-baseline"], "test", out, progress=False)
    for name in ("classifier.md", "classifier.json", "confusion-energy-baseline.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    saved = json.loads((out / "classifier.json").read_text())
    r = saved["systems"]["energy-baseline"]
    counts = np.array(r["confusion"]["counts"])
    assert counts.sum() == saved["clips"] == 12
    assert r["accuracy"] == pytest.approx(np.trace(counts) / counts.sum())
    assert r["accuracy"] >= 0.5  # a baseline, but not a coin toss on clean synthetic classes
    recall_music = counts[0, 0] / counts[0].sum()
    assert r["per_class"]["music"]["recall"] == pytest.approx(recall_music)
    sp = r["speech_vs_rest"]
    assert np.array(sp["confusion"]).sum() == 12
    assert 0.0 <= r["latency"]["unsettled_fraction"] <= 1.0
    assert r["realtime_factor"] > 0
    assert "energy-baseline" in (out / "classifier.md").read_text()
    assert report["systems"]["energy-baseline"]["accuracy"] == r["accuracy"]


def test_max_clips_and_errors(fixture_dir, tmp_path):
    report = ev.evaluate_classifiers(fixture_dir, ["energy-baseline"], "train", tmp_path, max_clips=5, progress=False)
    assert report["clips"] == 5
    with pytest.raises(UserError):
        ev.evaluate_classifiers(tmp_path / "missing", ["energy-baseline"], "test", tmp_path, progress=False)
    with pytest.raises(UserError):
        ev.evaluate_classifiers(fixture_dir, ["no-such-system"], "test", tmp_path, progress=False)


def test_unavailable_systems_are_skipped(fixture_dir, tmp_path, monkeypatch):
    def unavailable():
        raise ev.SystemUnavailable("pip install nothing")

    monkeypatch.setitem(ev.CLASSIFIER_SYSTEMS, "missing-one", unavailable)
    report = ev.evaluate_classifiers(fixture_dir, ["energy-baseline", "missing-one"], "test", tmp_path, progress=False)
    assert report["skipped"] == {"missing-one": "pip install nothing"}
    assert "missing-one" in (tmp_path / "classifier.md").read_text()


def test_register_classifier_and_cli(fixture_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ev, "CLASSIFIER_SYSTEMS", dict(ev.CLASSIFIER_SYSTEMS))
    ev.register_classifier("baseline-again", ev.EnergyBaseline)
    assert "baseline-again" in ev.CLASSIFIER_SYSTEMS
    parser = argparse.ArgumentParser()
    ev.add_cli_arguments(parser)
    args = parser.parse_args(["--data", str(fixture_dir), "--system", "energy-baseline", "--out", str(tmp_path), "--max-clips", "4", "--no-progress"])
    assert ev.cli_main(args) == 0
    assert "energy-baseline" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("silero_vad") is None, reason="silero-vad not installed (pip install silero-vad)")
def test_silero_vad_sits_beside_the_four_class_systems(fixture_dir, tmp_path):
    report = ev.evaluate_classifiers(fixture_dir, ["energy-baseline", "silero-vad"], "test", tmp_path, progress=False)
    r = report["systems"]["silero-vad"]
    assert r["classes"] == ["speech", "not speech"]
    assert np.array(r["confusion"]["counts"]).shape == (4, 2)
    assert np.array(r["confusion_mapped"]["counts"]).sum() == 12
    assert 0.0 <= r["speech_vs_rest"]["accuracy"] <= 1.0
    # silence is never speech to a VAD
    assert r["confusion"]["counts"][CLASSES.index("silence")][1] == 3
    assert (tmp_path / "confusion-silero-vad.png").is_file()


def test_real_recordings_are_reported_apart_and_leaks_are_named(fixture_dir, tmp_path):
    import shutil

    root = tmp_path / "set"
    shutil.copytree(fixture_dir, root)
    # the test split's music and noise clips become "real recordings" of two packages
    real = set()
    for label, package in (("music", "pkg-music"), ("noise", "pkg-noise")):
        for k, path in enumerate(sorted((root / "test" / label).glob("*.json"))):
            meta = json.loads(path.read_text())
            meta["sources"] = [{"kind": "recording", "id": f"{package}:{k}.ogg", "package": package, "licence": "GPL-2+"}]
            path.write_text(json.dumps(meta))
            real.add(meta["id"])
    out = tmp_path / "report"
    report = ev.evaluate_classifiers(root, ["energy-baseline"], "test", out, progress=False)
    r = report["systems"]["energy-baseline"]
    groups = r["by_origin"]
    assert set(groups) == {"real", "synthetic"}
    assert groups["real"]["clips"] == len(real) == 6 and groups["synthetic"]["clips"] == 6
    assert groups["real"]["packages"] == {"pkg-music": 3, "pkg-noise": 3}
    # the group's accuracy is that of its clips' decisions, nothing else
    mine = [c for c in r["clip_results"] if c["id"] in real]
    assert all(c["origin"] == "real" for c in mine)
    assert groups["real"]["accuracy"] == pytest.approx(np.mean([c["decided"] == c["label"] for c in mine]))
    assert groups["real"]["per_class"]["speech"]["support"] == 0 and groups["real"]["per_class"]["music"]["support"] == 3
    text = (out / "classifier.md").read_text()
    assert "energy-baseline on real recordings | 6 |" in text and "no package, speaker or source is in two splits" in text
    assert report["split_leaks"] == []
    # a recording of the same package in train: the report names the leak
    meta = json.loads(sorted((root / "train" / "music").glob("*.json"))[0].read_text())
    meta["sources"] = [{"kind": "recording", "id": "pkg-music:99.ogg", "package": "pkg-music", "licence": "GPL-2+"}]
    sorted((root / "train" / "music").glob("*.json"))[0].write_text(json.dumps(meta))
    report = ev.evaluate_classifiers(root, ["energy-baseline"], "test", out, progress=False)
    assert len(report["split_leaks"]) == 1 and report["split_leaks"][0].startswith("package pkg-music is in splits test, train")
    assert "**1 in two splits**" in (out / "classifier.md").read_text()


def test_compare_weights_sit_beside_ours(fixture_dir, tmp_path, monkeypatch, capsys):
    from noisyneuron.models.classifier import SHIPPED_CLASSIFIER

    if not SHIPPED_CLASSIFIER.is_file():
        pytest.skip("no shipped classifier weights")
    monkeypatch.setattr(ev, "CLASSIFIER_SYSTEMS", dict(ev.CLASSIFIER_SYSTEMS))
    parser = argparse.ArgumentParser()
    ev.add_cli_arguments(parser)
    base = ["--data", str(fixture_dir), "--out", str(tmp_path), "--max-clips", "4", "--no-progress", "--system", "energy-baseline"]
    args = parser.parse_args(base + ["--compare-weights", f"previous={SHIPPED_CLASSIFIER}"])
    assert ev.cli_main(args) == 0
    report = json.loads((tmp_path / "classifier.json").read_text())
    assert list(report["systems"]) == ["energy-baseline", "previous"]
    assert report["systems"]["previous"]["name"] == "previous" and report["systems"]["previous"]["clips"] == 4
    assert "| previous |" in capsys.readouterr().out
    for bad in ("previous", f"previous={tmp_path / 'missing.pt'}"):
        with pytest.raises(UserError):
            ev.cli_main(parser.parse_args(base + ["--compare-weights", bad]))


def test_record_quality_takes_real_recordings_of_the_test_split_only(tmp_path):
    group = lambda n, acc: {"clips": n, "accuracy": acc, "macro_f1": acc, "packages": {"pkg": n},  # noqa: E731
                            "per_class": {"music": {"f1": acc, "support": n}, "silence": {"f1": 0.0, "support": 0}}}
    ours = {"clips": 10, "accuracy": 0.9, "macro_f1": 0.9, "latency": {"median_s": 0.4},
            "by_origin": {"real": group(6, 0.8333), "synthetic": group(4, 1.0)}}
    report = {"split": "test", "data_dir": "d", "split_leaks": [], "systems": {"ours": ours}}
    figures = ev.classifier_quality(report)
    assert figures["systems"]["ours"]["real"] == {"clips": 6, "accuracy": 0.8333, "macro_f1": 0.8333, "f1": {"music": 0.8333}}
    assert figures["packages"] == {"pkg": 6}
    for bad in ({**report, "split": "valid"}, {**report, "split_leaks": ["package x is in splits test, train"]},
                {**report, "systems": {"energy-baseline": ours}},
                {**report, "systems": {"ours": {**ours, "by_origin": {"synthetic": group(4, 1.0)}}}}):
        with pytest.raises(UserError):
            ev.classifier_quality(bad)
    weights = tmp_path / "classifier.pt"
    weights.write_bytes(b"weights")
    path = ev.record_classifier_quality(figures, weights)
    assert path == tmp_path / "classifier-quality.json"
    saved = json.loads(path.read_text())
    import hashlib

    assert saved["weights_sha256"] == hashlib.sha256(b"weights").hexdigest() and saved["systems"] == figures["systems"]


def test_tune_priors_picks_offsets_on_the_valid_split_only_and_writes_them(fixture_dir, tmp_path, monkeypatch, capsys):
    """`eval classifier --tune-priors OUT`: every offset combination scored on the valid split
    (never the test split), the best written into OUT's head bias and metadata."""
    import torch

    from noisyneuron.models.classifier import SHIPPED_CLASSIFIER, load_classifier

    if not SHIPPED_CLASSIFIER.is_file():
        pytest.skip("no shipped classifier weights")
    splits_read = []
    load = ev._load_clips
    monkeypatch.setattr(ev, "_load_clips", lambda d, split, n: splits_read.append(split) or load(d, split, n))
    monkeypatch.setattr(ev, "PRIOR_GRID", {"noise": (0.0, 2.0), "music": (0.0, -0.5)})
    out = tmp_path / "tuned.pt"
    parser = argparse.ArgumentParser()
    ev.add_cli_arguments(parser)
    clips = [c for c in load(fixture_dir, "valid", None)]
    origin = clips[0].origin
    result = ev.tune_priors(fixture_dir, out, SHIPPED_CLASSIFIER, origin=origin, progress=False)
    assert splits_read == ["valid"]
    assert len(result["grid"]) == 4 and all(0.0 <= g["macro_f1"] <= 1.0 for g in result["grid"])
    best = max(g["macro_f1"] for g in result["grid"])
    assert result["valid_macro_f1"] == best
    base, tuned = load_classifier(SHIPPED_CLASSIFIER, use_profile=False), load_classifier(out, use_profile=False)
    labels = base.config.labels
    delta = (tuned.head[-1].bias - base.head[-1].bias).detach()
    for name, value in result["offsets"].items():
        assert float(delta[labels.index(name)]) == pytest.approx(value, abs=2e-3)
    assert float(delta[labels.index("speech")]) == pytest.approx(0.0, abs=2e-3)
    assert torch.equal(tuned.head[0].weight, base.head[0].weight)
    assert tuned.export_meta["prior_offsets"]["offsets"] == result["offsets"]
    assert tuned.export_meta["stream"] == base.export_meta["stream"]  # the gate and smoothing carry over
    if origin == "real":  # the CLI tunes on real clips
        args = parser.parse_args(["--data", str(fixture_dir), "--tune-priors", str(tmp_path / "cli.pt"), "--no-progress"])
        assert ev.cli_main(args) == 0 and "test split was not read" in capsys.readouterr().out
    with pytest.raises(UserError, match="clips in the valid split"):
        ev.tune_priors(fixture_dir, tmp_path / "none.pt", SHIPPED_CLASSIFIER, origin="real" if origin != "real" else "nowhere", progress=False)
