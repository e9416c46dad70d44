"""`noisyneuron data ...` and `noisyneuron eval ...` through the real command, on fixture sets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def nn(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "noisyneuron", *args], capture_output=True, text=True, timeout=240)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-data")
    nn("data", "build", "separation", "--out", str(root / "sep"), "--fixture", "--seed", "2", "-q")
    nn("data", "build", "classification", "--out", str(root / "cls"), "--fixture", "--seed", "2", "-q")
    return root


def test_data_build_reports_and_info_summarises(sets):
    info = nn("data", "info", str(sets / "sep")).stdout
    assert "separation data set, seed 2" in info
    assert "test" in info and "train" in info and "valid" in info
    info = nn("data", "info", str(sets / "cls")).stdout
    assert "classification data set, seed 2" in info


def test_rebuilding_resumes_and_a_different_seed_is_refused(sets):
    again = nn("data", "build", "separation", "--out", str(sets / "sep"), "--fixture", "--seed", "2", "-q")
    assert "skipped 7 already on disk" in again.stderr and "built 0 items" in again.stderr
    other = nn("data", "build", "separation", "--out", str(sets / "sep"), "--hours", "1", "--seed", "9", check=False)
    assert other.returncode == 2
    last = other.stderr.strip().splitlines()[-1]
    assert last.startswith("noisyneuron: error:") and "--seed 2" in last
    wrong = nn("data", "build", "classification", "--out", str(sets / "sep"), "--fixture", check=False)
    assert wrong.returncode == 2 and "holds a separation data set" in wrong.stderr


def test_eval_separation_end_to_end(sets, tmp_path):
    out = tmp_path / "rep"
    proc = nn("eval", "separation", "--data", str(sets / "sep"), "--system", "mixture", "--system", "irm", "--system", "centre-cut", "--out", str(out), "-q")
    assert "centre-cut" in proc.stdout
    report = json.loads((out / "separation.json").read_text())
    assert [s["name"] for s in report["systems"]] == ["mixture", "irm", "centre-cut"]
    assert (out / "separation.md").read_text().count("| centre-cut") >= 1
    assert (out / "separation-sdr.png").stat().st_size > 1000


def test_eval_classifier_end_to_end(sets, tmp_path):
    out = tmp_path / "rep"
    nn("eval", "classifier", "--data", str(sets / "cls"), "--system", "energy-baseline", "--out", str(out), "--no-progress")
    report = json.loads((out / "classifier.json").read_text())
    assert "energy-baseline" in json.dumps(report)
    assert (out / "confusion-energy-baseline.png").stat().st_size > 1000


def test_eval_on_a_missing_data_set_is_one_line(tmp_path):
    for what in ("separation", "classifier"):
        proc = nn("eval", what, "--data", str(tmp_path / "nope"), check=False)
        assert proc.returncode == 2
        assert proc.stderr.strip().count("\n") == 0 and "noisyneuron: error:" in proc.stderr


def test_eval_separation_scores_our_separator_beside_its_ceiling(sets, tmp_path):
    import torch

    from noisyneuron.models.pretrained import EXPORT_FORMAT
    from noisyneuron.models.separator import SeparatorConfig, SeparatorNet

    cfg = SeparatorConfig(hidden=16, layers=1)
    weights = tmp_path / "tiny.pt"
    torch.save({"format": EXPORT_FORMAT, "config": cfg.as_dict(), "state_dict": SeparatorNet(cfg).state_dict(), "steps": 0}, weights)
    out = tmp_path / "rep"
    nn("eval", "separation", "--data", str(sets / "sep"), "--system", "separator", "--system", "irm-sep",
       "--separator-weights", str(weights), "--out", str(out), "-q")
    report = json.loads((out / "separation.json").read_text())
    systems = {s["name"]: s for s in report["systems"]}
    assert systems["separator"]["latency_samples"] == 1007
    assert "tiny.pt" in systems["separator"]["description"]
    missing = nn("eval", "separation", "--data", str(sets / "sep"), "--system", "separator", "--separator-weights", str(tmp_path / "no.pt"), check=False)
    assert missing.returncode == 2 and "no such separator weights file" in missing.stderr
