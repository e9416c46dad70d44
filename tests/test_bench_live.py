"""`noisyneuron bench live`: a tiny run reports the three modes' figures and the OSC round trip."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from noisyneuron.bench.live import MODES, format_live_table, run_live_bench

FIELDS = ("seconds", "blocks", "xruns", "late_blocks", "callback_load", "processing_load_mean",
          "processing_load_p99", "processing_load_max")


@pytest.mark.jack
def test_bench_live_reports_three_modes(jack_server):
    result = run_live_bench(seconds=1.5, chain="centre-cut", warmup=0.5, osc_roundtrips=50)
    assert set(result["modes"]) == set(MODES)
    for mode, figures in result["modes"].items():
        for field in FIELDS:
            assert field in figures, (mode, field)
        assert figures["blocks"] > 0 and figures["errors"] == 0, (mode, figures)
        assert 0.0 < figures["processing_load_p99"] < 10.0, (mode, figures)
    for mode in ("tui", "tui-process"):
        assert result["modes"][mode]["ui_fps"] > 5, result["modes"][mode]
        assert result["modes"][mode]["ui_kbytes_per_second"] > 0  # frames were really drawn
    rt = result["osc_roundtrip"]
    assert rt["n"] == 50 and 0 < rt["p50_ms"] <= rt["p99_ms"]
    table = format_live_table(result)
    for mode in MODES:
        assert f"\n{mode} " in table
    assert "OSC set + query round trip" in table and result["verdict"] in table
    json.dumps(result)  # the --json report


def test_bench_live_without_a_device_is_one_line(tmp_path):
    env = dict(os.environ, JACK_DEFAULT_SERVER="noisyneuron-no-such-server", JACK_NO_START_SERVER="1")
    listed = subprocess.run([sys.executable, "-m", "noisyneuron", "devices", "--json"], capture_output=True,
                            text=True, env=env, timeout=60)
    if json.loads(listed.stdout or "[]"):
        pytest.skip("this machine has audio devices besides JACK")
    r = subprocess.run([sys.executable, "-m", "noisyneuron", "bench", "live", "--seconds", "1"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "no output device" in r.stderr, r.stderr
