"""`noisyneuron bench separator` measures what it says (numbers are not judged here: no timed tests)."""

from __future__ import annotations

from noisyneuron.bench.separator import format_separator_table, run_separator_bench


def test_bench_rows_measure_rtf_hop_percentiles_memory_and_latency():
    result = run_separator_bench(seconds=2.0, rows=("separator live", "separator live, torch step", "centre-cut live"))
    live = result["rows"]["separator live"]
    assert "error" not in live, live
    assert live["rtf"] > 0 and live["p99_ms"] >= live["p50_ms"] > 0
    assert live["step"] == "hop" and abs(live["step_ms"] - 504 / 44.1) < 1e-6
    assert abs(live["latency_ms"] - 1007 / 44.1) < 1e-9
    assert live["peak_mb"] >= 0
    before = result["rows"]["separator live, torch step"]  # the float32 torch step, the fast path's peer
    assert "error" not in before, before
    assert before["step"] == "hop" and before["latency_ms"] == live["latency_ms"]
    assert before["p99_ms"] >= before["p50_ms"] > 0
    dsp = result["rows"]["centre-cut live"]
    assert dsp["step"] == "block of 256" and dsp["rtf"] > 0
    table = format_separator_table(result)
    assert "| separator live |" in table and "| separator live, torch step |" in table and "| centre-cut live |" in table
    assert result["cpu"] and result["cpu"] in table


def test_file_memory_rows_report_peaks_per_length_and_their_ratio():
    from noisyneuron.bench.separator import format_file_memory_table, run_file_memory_bench

    result = run_file_memory_bench(durations=(1.0, 2.0), rows=("separate, file to file", "separate_array, in memory"))
    for name, row in result["rows"].items():
        for seconds in ("1", "2"):
            r = row["by_seconds"][seconds]
            assert "error" not in r, (name, r)
            assert r["peak_mb"] > r["growth_mb"] >= 0 and r["rtf"] > 0
        assert row["ratio"] == row["by_seconds"]["2"]["peak_mb"] / row["by_seconds"]["1"]["peak_mb"]
    table = format_file_memory_table(result)
    assert "| separate, file to file |" in table and "2 s: peak / growth MB" in table and "peak 2 s / 1 s" in table
