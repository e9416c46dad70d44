"""What a run lost, as the user reads it: the summary, the status line, and the too-slow warning
that is said once (and again only after the run has been clean for a window). The counting itself
is measured on the JACK dummy server in tests/test_engine_jack.py."""

from __future__ import annotations

from types import SimpleNamespace

from noisyneuron.realtime.chain import Chain
from noisyneuron.realtime.chains import build_chain
from noisyneuron.realtime.engine import EngineStats, SlowMachineWatch, slow_run_verdict


def _at(second: float, lost: float, p99: float = 0.3) -> EngineStats:
    return EngineStats(run_seconds=second, lost_seconds=lost, dropped_input_seconds=lost,
                       lost_share=lost / second if second else 0.0, processing_load_p99=p99,
                       processing_load_mean=0.5)


def test_summary_status_line_and_json_name_the_loss():
    from noisyneuron.live import _status_line

    s = EngineStats(blocks=96000, seconds=512.0, run_seconds=600.0, dropped_input_seconds=87.0,
                    late_output_seconds=86.5, lost_seconds=87.0, lost_share=0.145)
    assert "ran 600.0 s (512.0 s of audio processed)" in s.summary()
    assert "lost 87.0 s, 14.5% of the run (input dropped 87.0 s, output late 86.5 s)" in s.summary()
    engine = SimpleNamespace(latency_seconds=0.0107, stats=lambda: s)
    assert _status_line(engine).endswith("| late 0 | lost 87.0 s (14.5%)")
    assert s.as_dict()["lost_share"] == 0.145 and s.as_dict()["run_seconds"] == 600.0
    clean = EngineStats(seconds=60.0, run_seconds=60.0)
    assert "nothing lost" in clean.summary() and "lost" not in _status_line(SimpleNamespace(latency_seconds=0.01, stats=lambda: clean))
    assert EngineStats(lost_seconds=0.0053, lost_share=0.01).lost_text() == "lost 0.01 s (1.0%)"


def test_the_warning_comes_once_and_again_only_after_recovering():
    watch = SlowMachineWatch(Chain([], name="separator"), buffer_blocks=2)
    said = []
    lost = 0.0
    for second in range(1, 61):
        # losing 5 % from 1 s to 20 s, clean from 20 s to 35 s, losing again from 35 s
        if second <= 20 or second > 35:
            lost += 0.05
        said.append((second, watch.check(_at(second, lost))))
    warned_at = [second for second, line in said if line]
    # at once (the window is the run so far), then not while it goes on, nor while it recovers
    # (nothing lost in the last 10 s from 30 s on), and again once it is over 1 % of 10 s again
    assert len(warned_at) == 2 and warned_at[0] == 1 and 36 <= warned_at[1] <= 38, warned_at
    line = said[0][1]
    assert line.startswith("warning: this machine is too slow for the separator chain")
    assert "--buffer-blocks 4" in line and "--chain centre-cut" in line, line


def test_a_short_burst_under_one_percent_is_not_too_slow():
    watch = SlowMachineWatch(None)
    assert all(watch.check(_at(s, 0.005 if s >= 3 else 0.0)) is None for s in range(1, 30))  # one 5 ms block
    # the separator's p99 is over one block by design (a hop every other block): the 2-block margin
    # absorbs it, and a late block then is the machine's, not a sign the chain is too slow
    watch = SlowMachineWatch(None, buffer_blocks=2)
    assert watch.check(_at(1, 0.0, p99=1.4)) is None and watch.check(_at(2, 0.005, p99=1.4)) is None
    # ... but one block in a hundred taking longer than the whole margin, while audio is lost, is
    watch = SlowMachineWatch(None, buffer_blocks=2)
    assert watch.check(_at(1, 0.0, p99=2.5)) is None  # nothing lost (yet)
    assert watch.check(_at(2, 0.005, p99=2.5))


def test_advice_fits_the_chain_and_the_load():
    cheap = build_chain("centre-cut")
    line = SlowMachineWatch(cheap, 3).check(_at(1.0, 0.5))
    assert "--buffer-blocks 6" in line and "centre-cut`" not in line, line  # it is the centre cut already
    over = EngineStats(run_seconds=10.0, lost_seconds=3.0, lost_share=0.3, processing_load_mean=1.5)
    verdict = slow_run_verdict(over, Chain([], name="separator"), 2)
    assert verdict.startswith("warning: the machine was too slow for the separator chain: 3.0 s of the 10.0 s run lost (30.0%)")
    assert "150% of real time" in verdict and "no buffer can keep up" in verdict and "--chain centre-cut" in verdict
    assert slow_run_verdict(EngineStats(run_seconds=10.0, lost_seconds=0.05, lost_share=0.005)) is None
