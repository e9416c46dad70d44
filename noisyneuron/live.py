"""The ``noisyneuron live`` command: the live chain on audio devices (or files), with the terminal
UI in this process and the engine in its own (what ``live`` runs), headless with a status line a
second, or the UI in the engine's process (``--ui-in-process``); on a machine with no audio
device, the bundled demo song through the same chain into a file (:func:`run_demo`).

The session itself is built by :mod:`noisyneuron.control.live` (one builder for here and the
engine host); this module prints, waits and reports.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from noisyneuron.errors import UserError

__all__ = ["DEMO_MIX_NAME", "DEMO_OUT_NAME", "cmd_live", "run_demo"]

DEMO_MIX_NAME = "noisyneuron-demo-mix.wav"
DEMO_OUT_NAME = "noisyneuron-demo-karaoke.wav"


def _print(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _install_sigterm_handler() -> None:
    def _raise(signum, frame):  # turn SIGTERM (tmux kill, systemd) into a clean Ctrl-C stop
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)


def run_demo(chain_name: str, out_dir: Path, settings: list[str], seconds: float = 20.0) -> Path:
    """Render the bundled demo song, run it through ``chain_name`` offline, write both files."""
    from noisyneuron.audio.files import FileSink
    from noisyneuron.control.surface import ControlSurface
    from noisyneuron.demo import make_demo_mix
    from noisyneuron.realtime.chains import build_chain
    from noisyneuron.realtime.offline import process_array

    sample_rate = 44100
    out_dir.mkdir(parents=True, exist_ok=True)
    demo = make_demo_mix(sample_rate=sample_rate, seconds=seconds)
    chain = build_chain(chain_name)
    ControlSurface(chain).apply_settings(settings)
    if chain.note:
        _print(chain.note)
    processed = process_array(demo["mix"], chain, blocksize=512, sample_rate=sample_rate)
    mix_path, out_path = out_dir / DEMO_MIX_NAME, out_dir / DEMO_OUT_NAME
    for path, audio in ((mix_path, demo["mix"]), (out_path, processed)):
        with FileSink(path, sample_rate, audio.shape[1]) as sink:
            sink.write(audio)
    return out_path


def _no_devices_at_all() -> bool:
    from noisyneuron.realtime.devices import list_devices

    devices = list_devices()
    return not any(d.max_output_channels for d in devices) or not any(d.max_input_channels for d in devices)


def _status_line(engine, stats=None) -> str:
    """The once-a-second line of headless `live`; audio lost is named when there is any."""
    s = engine.stats() if stats is None else stats
    parts = [
        f"latency {engine.latency_seconds * 1000:.1f} ms",
        f"load {s.processing_load_mean * 100:.0f}% (p99 {s.processing_load_p99 * 100:.0f}%)",
        f"xruns {s.xruns}",
        f"late {s.late_blocks}",
    ]
    if s.lost_seconds > 0:
        parts.append(s.lost_text())
    return " | ".join(parts)


def _print_summary(stats, chain, buffer_blocks) -> None:
    """The run's counters, and a plain warning when it lost more than 1 % of itself."""
    from noisyneuron.realtime.engine import slow_run_verdict

    _print(stats.summary())
    verdict = slow_run_verdict(stats, chain, buffer_blocks)
    if verdict:
        _print(f"noisyneuron: {verdict}")


def _is_terminal(stream) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _no_tui_reason(args: argparse.Namespace) -> str | None:
    """Why the terminal UI cannot open (None: it can): it reads keys from standard input and
    draws on standard error, or on standard output when only standard error is redirected."""
    if not _is_terminal(sys.__stdin__):
        return "standard input is not a terminal"
    if not (_is_terminal(sys.__stderr__) or _is_terminal(sys.__stdout__)):
        return "standard output and standard error are both redirected"
    return None


def _use_tui(args: argparse.Namespace) -> bool:
    """The terminal UI runs unless --headless or there is no terminal (:func:`_no_tui_reason`;
    :func:`_live_in_process` says why once the run has started)."""
    return not args.headless and _no_tui_reason(args) is None


def _live_line(chain_name: str, in_name: str, out_name: str, sample_rate: float, blocksize: int,
               latency_ms: float, lat: dict, stops: str) -> str:
    return (
        f"live: {chain_name} chain | {in_name} -> {out_name} | {sample_rate:g} Hz, "
        f"block {blocksize} | latency {latency_ms:.1f} ms "
        f"({lat['total']} samples: device {lat['device_input']}+{lat['device_output']}, "
        f"ring {lat['ring_buffer']}, chain {lat['chain']}) | {stops}"
    )


def _write_stats_json(path: str, stats: dict, latency: dict, sample_rate: float, blocksize: int, backend: str) -> None:
    report = {"stats": stats, "latency": latency, "sample_rate": sample_rate, "blocksize": blocksize, "backend": backend}
    Path(path).write_text(json.dumps(report, indent=2))


def cmd_live(args: argparse.Namespace) -> int:
    from noisyneuron.control.config import load_config, load_preset, presets_dir
    from noisyneuron.control.live import LiveSpec

    _install_sigterm_handler()
    config = load_config(args.config)
    spec = LiveSpec.resolve(args, config)
    no_device_named = spec.input is None and spec.output is None
    if no_device_named and _no_devices_at_all() and not (spec.input_file and spec.output_file):
        _print(
            "No usable audio device here (no sound card or sound server). Playing the bundled "
            f"demo song through the same {spec.chain!r} chain into a file instead."
        )
        out = run_demo(spec.chain, Path(args.demo_dir), spec.settings)
        _print(f"Listen to {out} (original: {Path(args.demo_dir) / DEMO_MIX_NAME}).")
        return 0
    if spec.input_file and spec.output_file:
        raise UserError("both --input and --output are files: use `noisyneuron process IN OUT`")
    presets = presets_dir(Path(args.config) if args.config else None)
    if args.preset:
        spec = LiveSpec.resolve(args, config, load_preset(args.preset, presets))
    if _use_tui(args) and not args.ui_in_process:
        return _live_tui_process(args, spec, config, presets)
    return _live_in_process(args, spec, config, presets, tui=_use_tui(args))


def _finish_live(args: argparse.Namespace, spec, stats, chain, osc_summary: str, report: dict) -> None:
    """The run's summary, the OSC summary and --stats-json, the same in both shapes of `live`."""
    _print_summary(stats, chain, spec.buffer_blocks)
    if osc_summary and not args.quiet:
        _print(osc_summary)
    if args.stats_json:
        _write_stats_json(args.stats_json, report["stats"], report["latency"], report["sample_rate"],
                          report["blocksize"], report["backend"])


def _run_tui(args: argparse.Namespace, session, config, presets: Path) -> int:
    """The terminal UI on ``session`` (the engine here or in its own process) until it quits;
    its exit code. A message it ends with is printed."""
    from noisyneuron.tui.app import NoisyNeuronApp, terminal_driver

    app = NoisyNeuronApp(session, presets_directory=presets, config=config, duration=args.duration,
                         driver_class=terminal_driver())
    message = app.run()
    if message:
        _print(message)
    return app.return_code or 0


def _live_tui_process(args: argparse.Namespace, spec, config, presets: Path) -> int:
    """The terminal UI here, the engine in its own process (noisyneuron.control.host), OSC between."""
    from noisyneuron.control.host import RemoteSession
    from noisyneuron.control.live import start_control
    from noisyneuron.realtime.engine import EngineStats

    if not args.quiet:
        _print(f"starting the {spec.chain!r} chain in its own process…")
    session = RemoteSession(spec)
    ready = session.ready
    if ready.get("note") and not args.quiet:
        _print(ready["note"])
    if session.osc_error:
        _print(f"OSC not started: {session.osc_error}")
    _print(_live_line(ready["chain"], ready["input"], ready["output"], ready["sample_rate"], ready["blocksize"],
                      ready["latency_ms"], ready["latency"], "q quits"))
    exit_code = 0
    try:
        start_control(session, spec, config, osc=False, say=_print)
        exit_code = _run_tui(args, session, config, presets)
    except KeyboardInterrupt:
        _print("stopping")
    finally:
        final = session.stop()
    for line in session.stderr_lines:
        _print(line)
    if final is None:
        _print("the audio engine process ended without its final counters")
        return exit_code or 1
    known = set(EngineStats.__dataclass_fields__)
    stats = EngineStats(**{k: v for k, v in final["final"].items() if k in known})
    osc_summary = final.get("osc_summary") if spec.osc.enabled and not session.osc_error else ""
    _finish_live(args, spec, stats, session.chain, osc_summary, {**final, "stats": final["final"]})
    if final.get("wrote"):
        _print(f"wrote {final['wrote']}")
    if final.get("failed"):
        _print(f"noisyneuron: error: {final['failed']}")
        return int(final.get("exit_code") or 1)
    return exit_code


def _live_in_process(args: argparse.Namespace, spec, config, presets: Path, *, tui: bool) -> int:
    """Headless (status lines), or the terminal UI in the engine's process (--ui-in-process)."""
    from noisyneuron.control.live import build_live_session, start_control

    build = build_live_session(spec, display=tui)
    session, source, sink = build.session, build.source, build.sink
    chain = session.chain
    if build.unknown_preset_keys and not args.quiet:
        _print(f"preset {spec.preset_name}: skipped {', '.join(build.unknown_preset_keys)} (not in chain {chain.name!r})")
    in_name, out_name = session.describe_endpoints()
    in_name = spec.input_file or in_name
    out_name = spec.output_file or out_name
    osc_summary = ""
    exit_code = 0
    try:
        session.start()
        started = time.monotonic()  # --duration counts from here: seconds of audio, not of start-up
        engine = session.engine
        _print(_live_line(chain.name, in_name, out_name, engine.sample_rate, engine.blocksize,
                          engine.latency_seconds * 1000, engine.latency_breakdown(), "q quits" if tui else "Ctrl-C stops"))
        start_control(session, spec, config, say=_print)
        reason = None if tui or args.headless else _no_tui_reason(args)
        if reason is not None and not args.quiet:
            _print(f"live: no terminal UI ({reason}): running headless; --headless runs so without this line")
        if session.osc is not None and not tui:
            _print(session.osc.describe())
        if session.midi is not None and not tui:
            _print(session.midi.status().line())
        if tui:
            exit_code = _run_tui(args, session, config, presets)
        else:
            _headless_loop(args, spec, session, started)
    except KeyboardInterrupt:
        _print("stopping")
    except BaseException as exc:  # the output file must not get its final name: keep it as incomplete
        if sink is not None:
            sink.abort(f"{type(exc).__name__}" + (f" ({exc})" if str(exc) else ""))
        raise
    finally:
        if session.osc is not None:
            osc_summary = session.osc.stats().summary()
        session.stop()
        if source is not None:
            source.close()
    failure = session.failure
    failed_line = ""
    if failure is not None:
        failed_line = f"live stopped after {session.engine.stats().seconds:.1f} s: {' '.join(str(failure).split())}"
        if sink is not None:
            sink.abort(announce=False)
            failed_line = sink.kept_message(failed_line)
    elif sink is not None:
        try:
            sink.close()
        except UserError as exc:
            failure, failed_line = exc, str(exc)
    engine = session.engine
    stats = engine.stats()
    _finish_live(args, spec, stats, chain, osc_summary, {
        "stats": stats.as_dict(), "latency": engine.latency_breakdown(), "sample_rate": engine.sample_rate,
        "blocksize": engine.blocksize, "backend": engine.backend})
    if failure is not None:
        _print(f"noisyneuron: error: {failed_line}")
        return failure.exit_code if isinstance(failure, UserError) else 1
    if sink is not None:
        _print(f"wrote {sink.path}")
    return exit_code


def _headless_loop(args: argparse.Namespace, spec, session, started: float) -> None:
    """Status lines once a second until --duration, the file's end or a processing failure."""
    from noisyneuron.realtime.engine import SlowMachineWatch

    slow_watch = SlowMachineWatch(session.chain, spec.buffer_blocks)
    next_status = started + 1.0
    while True:
        if args.duration is not None and time.monotonic() - started >= args.duration:
            break
        if session.engine.wait(0.1):  # the file ended, or processing stopped on an error
            if session.failure is None:
                _print("input file finished")
            break
        if time.monotonic() >= next_status:
            next_status += 1.0
            stats = session.engine.stats()
            if not args.quiet:
                _print(_status_line(session.engine, stats))
            warning = slow_watch.check(stats)
            if warning:  # said even with --quiet: the audio is being lost
                _print(f"noisyneuron: {warning}")
