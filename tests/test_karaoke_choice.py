"""`--chain karaoke` picks the neural separator or the DSP centre cut by recorded quality, and says which."""

from __future__ import annotations

import json
import shutil

import pytest

from noisyneuron.evaluation.separation import karaoke_quality
from noisyneuron.models.pretrained import (
    SEPARATOR_WEIGHTS_ENV,
    SHIPPED_SEPARATOR,
    record_separator_quality,
    separator_quality,
)
from noisyneuron.realtime.chains import build_chain, karaoke_choice

pytestmark = pytest.mark.skipif(not SHIPPED_SEPARATOR.is_file(), reason="no shipped separator weights")


def _report(separator_acc: float, centre_acc: float) -> dict:
    def stems(acc):
        return {"vocals": {"sdr": {"median": acc - 4.0, "n": 5}}, "accompaniment": {"sdr": {"median": acc, "n": 5}}}

    return {"summary": {"vocal_tracks": {"separator": stems(separator_acc), "centre-cut": stems(centre_acc)}},
            "split": "test", "data_dir": "d", "generated": "now", "manifest": {"build": {"kind": "realworld"}}}


def test_only_real_world_figures_choose(weights):
    """A synthetic split measures our own generators: it can neither be recorded nor choose."""
    from noisyneuron.errors import UserError

    synthetic = _report(8.0, 2.0)
    synthetic["manifest"]["build"]["kind"] = "separation"
    with pytest.raises(UserError, match="real-world"):
        karaoke_quality(synthetic)
    figures = karaoke_quality(_report(8.0, 2.0))
    record_separator_quality({**figures, "section": "synthetic"})  # an old figures file
    kind, reason = karaoke_choice()
    assert kind == "separator" and "not measured" in reason  # user-named weights: used, and said so
    record_separator_quality(figures)
    kind, reason = karaoke_choice()
    assert kind == "separator" and "real-world" in reason


@pytest.fixture
def weights(tmp_path, monkeypatch):
    path = tmp_path / "sep.pt"
    shutil.copy(SHIPPED_SEPARATOR, path)
    monkeypatch.setenv(SEPARATOR_WEIGHTS_ENV, str(path))
    return path


def test_better_measured_quality_wins_and_is_named(weights):
    record_separator_quality(karaoke_quality(_report(8.0, 2.0)))
    kind, reason = karaoke_choice()
    assert kind == "separator" and "8.0 vs 2.0 dB" in reason
    chain = build_chain("karaoke")
    assert chain.name == "karaoke" and chain.processors[0].kind == "separator"
    assert chain.note.startswith("karaoke: neural separator")

    record_separator_quality(karaoke_quality(_report(1.0, 2.0)))
    kind, reason = karaoke_choice()
    assert kind == "centre-cut" and "--chain separator" in reason
    assert build_chain("karaoke").processors[0].kind == "karaoke"  # CentreCutKaraoke


def test_figures_of_other_weights_are_ignored(weights):
    record_separator_quality(karaoke_quality(_report(8.0, 2.0)))
    assert separator_quality() is not None
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert separator_quality() is None
    kind, reason = karaoke_choice()  # named by the user, quality unknown: used, and said so
    assert kind == "separator" and "not measured" in reason


def test_no_weights_means_the_centre_cut(tmp_path, monkeypatch):
    monkeypatch.setenv(SEPARATOR_WEIGHTS_ENV, str(tmp_path / "missing.pt"))
    kind, reason = karaoke_choice()
    assert kind == "centre-cut" and "no separator weights" in reason


def test_report_without_both_systems_is_a_user_error():
    from noisyneuron.errors import UserError

    report = _report(8.0, 2.0)
    del report["summary"]["vocal_tracks"]["centre-cut"]
    with pytest.raises(UserError, match="centre-cut"):
        karaoke_quality(report)


def test_shipped_weights_have_current_figures(monkeypatch):
    """The committed quality file belongs to the committed weights (re-run
    `scripts/eval-report.sh` after exporting new weights)."""
    monkeypatch.delenv(SEPARATOR_WEIGHTS_ENV, raising=False)
    figures = separator_quality()
    assert figures is not None, "separator-quality.json is missing or was measured with other weights"
    assert json.loads(json.dumps(figures))["split"] == "test"


def test_mono_input_always_gets_the_neural_separator(weights, tmp_path):
    """The centre cut removes what left and right share: in mono, everything. So mono input
    takes the separator even where the centre cut measured better, and the CLI says why."""
    import subprocess
    import sys

    import numpy as np
    import soundfile as sf

    record_separator_quality(karaoke_quality(_report(1.0, 2.0)))  # the centre cut measured better
    assert karaoke_choice()[0] == "centre-cut"
    assert karaoke_choice(input_channels=2)[0] == "centre-cut"
    kind, reason = karaoke_choice(input_channels=1)
    assert kind == "separator" and "mono" in reason
    assert build_chain("karaoke", input_channels=1).processors[0].kind == "separator"

    t = np.arange(44100) / 44100
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    runs = {}
    for channels in (1, 2):
        src = tmp_path / f"in{channels}.wav"
        sf.write(src, np.repeat(tone[:, None], channels, axis=1), 44100)
        r = subprocess.run([sys.executable, "-m", "noisyneuron", "process", str(src), str(tmp_path / f"out{channels}.wav"),
                            "--chain", "karaoke", "--quiet"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        runs[channels] = r.stdout + r.stderr
    assert "karaoke: neural separator: the input is mono" in runs[1]
    assert "karaoke: DSP centre cut" in runs[2]
