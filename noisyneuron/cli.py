"""The ``noisyneuron`` command line.

User errors (a bad file, a missing device) print one line and exit with status 2; Ctrl-C stops
cleanly (exit 130) and leaves any output file valid.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from noisyneuron import __version__
from noisyneuron.errors import UserError

DEMO_MIX_NAME = "noisyneuron-demo-mix.wav"
DEMO_OUT_NAME = "noisyneuron-demo-karaoke.wav"


def _print(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----- devices --------------------------------------------------------------------------------
def cmd_devices(args: argparse.Namespace) -> int:
    from noisyneuron.realtime.devices import NO_DEVICE_HINT, list_devices

    devices = list_devices()
    if args.json:
        print(json.dumps([d.__dict__ for d in devices], indent=2))
        return 0
    if not devices:
        print(NO_DEVICE_HINT)
        return 1
    print(f"{'':2}{'idx':>3}  {'in':>3} {'out':>3}  {'rate':>6}  {'host API':<28} name")
    for d in devices:
        mark = ("<" if d.is_default_input else " ") + (">" if d.is_default_output else " ")
        print(
            f"{mark}{d.index:>3}  {d.max_input_channels:>3} {d.max_output_channels:>3}  "
            f"{d.default_sample_rate:>6.0f}  {d.host_api:<28} {d.name}"
        )
    print("\n< default input, > default output; give --input/--output an index or part of a name")
    return 0


# ----- shared helpers -------------------------------------------------------------------------
def _looks_like_file(spec: str | None) -> bool:
    if spec is None:
        return False
    from noisyneuron.realtime.files import SUPPORTED_EXTENSIONS

    return os.sep in spec or Path(spec).suffix.lower().lstrip(".") in {
        e.lower().lstrip(".") for e in SUPPORTED_EXTENSIONS
    }


def _build_chain(args: argparse.Namespace):
    from noisyneuron.realtime.chains import apply_settings, build_chain

    chain = build_chain(args.chain)
    apply_settings(chain, args.set or [])
    return chain


def _install_sigterm_handler() -> None:
    def _raise(signum, frame):  # turn SIGTERM (tmux kill, systemd) into a clean Ctrl-C stop
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)


# ----- process --------------------------------------------------------------------------------
def cmd_process(args: argparse.Namespace) -> int:
    from noisyneuron.realtime.offline import process_file

    chain = _build_chain(args)
    report = process_file(
        args.input,
        args.output,
        chain,
        blocksize=args.blocksize,
        sample_rate=args.samplerate,
        progress=not args.quiet,
    )
    if chain.note:
        _print(chain.note)
    _print(report.summary())
    return 0


# ----- demo -----------------------------------------------------------------------------------
def run_demo(chain_name: str, out_dir: Path, settings: list[str], seconds: float = 20.0) -> Path:
    """Render the bundled demo song, run it through ``chain_name`` offline, write both files."""
    from noisyneuron.demo import make_demo_mix
    from noisyneuron.realtime.chains import apply_settings, build_chain
    from noisyneuron.realtime.files import FileSink
    from noisyneuron.realtime.offline import process_array

    sample_rate = 44100
    out_dir.mkdir(parents=True, exist_ok=True)
    demo = make_demo_mix(sample_rate=sample_rate, seconds=seconds)
    chain = build_chain(chain_name)
    apply_settings(chain, settings)
    if chain.note:
        _print(chain.note)
    processed = process_array(demo["mix"], chain, blocksize=512, sample_rate=sample_rate)
    mix_path, out_path = out_dir / DEMO_MIX_NAME, out_dir / DEMO_OUT_NAME
    for path, audio in ((mix_path, demo["mix"]), (out_path, processed)):
        with FileSink(path, sample_rate, audio.shape[1]) as sink:
            sink.write(audio)
    return out_path


def cmd_demo(args: argparse.Namespace) -> int:
    out = run_demo(args.chain, Path(args.out_dir), args.set or [], seconds=args.seconds)
    _print(f"wrote {Path(args.out_dir) / DEMO_MIX_NAME} (the demo song) and {out} (through the {args.chain!r} chain)")
    return 0


# ----- live -----------------------------------------------------------------------------------
def _no_devices_at_all() -> bool:
    from noisyneuron.realtime.devices import list_devices

    devices = list_devices()
    return not any(d.max_output_channels for d in devices) or not any(d.max_input_channels for d in devices)


def _status_line(engine) -> str:
    s = engine.stats()
    parts = [
        f"latency {engine.latency_seconds * 1000:.1f} ms",
        f"load {s.processing_load_mean * 100:.0f}% (p99 {s.processing_load_p99 * 100:.0f}%)",
        f"xruns {s.xruns}",
        f"late {s.late_blocks}",
    ]
    return " | ".join(parts)


def cmd_live(args: argparse.Namespace) -> int:
    from noisyneuron.realtime.devices import resolve_device
    from noisyneuron.realtime.engine import Engine
    from noisyneuron.realtime.files import FileSink, FileSource

    _install_sigterm_handler()
    user_named_devices = not (
        (args.input is None or _looks_like_file(args.input))
        and (args.output is None or _looks_like_file(args.output))
    )
    if not user_named_devices and _no_devices_at_all() and not (args.input and args.output):
        _print(
            "No usable audio device here (no sound card or sound server). Playing the bundled "
            f"demo song through the same {args.chain!r} chain into a file instead."
        )
        out = run_demo(args.chain, Path(args.demo_dir), args.set or [])
        _print(f"Listen to {out} (original: {Path(args.demo_dir) / DEMO_MIX_NAME}).")
        return 0

    chain = _build_chain(args)
    sample_rate = args.samplerate
    source = sink = None
    in_spec, out_spec = args.input, args.output
    if _looks_like_file(in_spec) and _looks_like_file(out_spec):
        raise UserError("both --input and --output are files: use `noisyneuron process IN OUT`")
    # with a file at one end, the device at the other sets the clock and the sample rate
    if _looks_like_file(out_spec):
        sample_rate = sample_rate or resolve_device(in_spec, "input").default_sample_rate
        sink = out_spec = FileSink(out_spec, sample_rate, 2)
    elif _looks_like_file(in_spec):
        sample_rate = sample_rate or resolve_device(out_spec, "output").default_sample_rate
        source = in_spec = FileSource(in_spec, sample_rate, 2, args.blocksize, loop=args.loop)
    engine = Engine(
        chain, input=in_spec, output=out_spec, sample_rate=sample_rate,
        blocksize=args.blocksize, backend=args.backend, buffer_blocks=args.buffer_blocks,
    )

    in_name, out_name = engine.describe_endpoints()
    started = time.monotonic()
    try:
        engine.start()
        lat = engine.latency_breakdown()
        _print(
            f"live: {chain.name} chain | {in_name} -> {out_name} | {engine.sample_rate:g} Hz, "
            f"block {engine.blocksize} | latency {engine.latency_seconds * 1000:.1f} ms "
            f"({lat['total']} samples: device {lat['device_input']}+{lat['device_output']}, "
            f"ring {lat['ring_buffer']}, chain {lat['chain']}) | Ctrl-C stops"
        )
        next_status = started + 1.0
        while True:
            if args.duration is not None and time.monotonic() - started >= args.duration:
                break
            if engine.wait(0.1):
                _print("input file finished")
                break
            if not args.quiet and time.monotonic() >= next_status:
                next_status += 1.0
                _print(_status_line(engine))
    except KeyboardInterrupt:
        _print("stopping")
    finally:
        engine.stop()
        if sink is not None:
            sink.close()
        if source is not None and hasattr(source, "close"):
            source.close()
    stats = engine.stats()
    _print(stats.summary())
    if sink is not None:
        _print(f"wrote {sink.path}")
    if args.stats_json:
        report = {"stats": stats.as_dict(), "latency": engine.latency_breakdown(),
                  "sample_rate": engine.sample_rate, "blocksize": engine.blocksize,
                  "backend": engine.backend}
        Path(args.stats_json).write_text(json.dumps(report, indent=2))
    return 0


# ----- bench ----------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "separator":
        from noisyneuron.bench.separator import format_separator_table, run_separator_bench

        result = {"separator": run_separator_bench(seconds=args.seconds)}
        print(format_separator_table(result["separator"]))
    elif args.what == "dsp":
        from noisyneuron.bench.dsp import format_table, run_dsp_bench

        result = {"dsp": run_dsp_bench(seconds=args.seconds)}
        print(format_table(result["dsp"]))
        from noisyneuron.bench.engine import format_engine_table, run_engine_bench

        result["engine"] = run_engine_bench(seconds=args.engine_seconds, blocksizes=(128, 256))
        print(format_engine_table(result["engine"]))
    else:
        raise UserError(f"unknown benchmark {args.what!r}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        _print(f"wrote {args.json}")
    return 0


# ----- data and eval --------------------------------------------------------------------------
def cmd_data_build(args: argparse.Namespace) -> int:
    from noisyneuron.models.data.build import default_workers
    from noisyneuron.models.data.commands import build_dataset

    workers = args.workers or default_workers()
    if not args.quiet:
        what = "fixture set" if args.fixture else f"{args.hours:g} h"
        _print(f"building a {args.kind} data set ({what}, seed {args.seed}) in {args.out} with {workers} worker(s)")
    stats, manifest = build_dataset(
        args.kind, args.out, args.hours, args.seed, workers, args.item_seconds, args.fixture,
        progress=not args.quiet, splits=tuple(args.splits) if args.splits else None,
    )
    totals = ", ".join(f"{s} {t['items']} items / {t['hours']:.2f} h" for s, t in sorted(manifest["totals"].items()))
    _print(stats.summary())
    _print(f"{args.out}: {totals}; manifest.json lists sources, licences and seeds")
    if stats.failed:
        for line in stats.errors[:10]:
            _print(f"  failed: {line}")
        _print(f"{stats.failed} item(s) failed; run the same command again to retry them")
        return 1
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from noisyneuron.models.data.layout import read_manifest

    manifest = read_manifest(args.dir)
    build = manifest.get("build", {})
    print(f"{args.dir}: {manifest['kind']} data set, seed {build.get('seed')}")
    for split, t in sorted(manifest["totals"].items()):
        print(f"  {split:<6} {t['items']:>6} items  {t['hours']:7.2f} h")
    print("  licences:")
    for package, licence in sorted(manifest["licences"].items()):
        print(f"    {package}: {licence}")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from noisyneuron.models.data.layout import check_track, read_manifest, separation_tracks

    manifest = read_manifest(args.dir)
    if manifest["kind"] != "separation":
        raise UserError(f"{args.dir}: `data check` reads separation data sets; this one is {manifest['kind']}")
    tracks = separation_tracks(args.dir)
    bad = 0
    for track in tqdm(tracks, desc="checking", unit="track", disable=args.quiet):
        problems = check_track(track)
        if problems:
            bad += 1
            print(f"{track.split}/{track.id}: {'; '.join(problems)}")
    _print(f"{len(tracks) - bad} of {len(tracks)} tracks sound" + (f"; delete the {bad} listed and build again to remake them" if bad else ""))
    return 1 if bad else 0


def cmd_data_pack(args: argparse.Namespace) -> int:
    from noisyneuron.models.data.pack import pack_separation

    r = pack_separation(args.data, args.out, args.max_mb, split=args.split, quality=args.quality, seed=args.seed, skip=args.skip, progress=not args.quiet)
    _print(f"packed {r['tracks']} {args.split} tracks ({r['seconds'] / 60:.1f} min of audio, {r['bytes'] / 1e6:.1f} MB) into {args.out}; "
           f"the next pack of different tracks: --skip {r['next_skip']}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    if args.what == "separation":
        from noisyneuron.evaluation.separation import cli_main
    else:
        from noisyneuron.evaluation.classifier import cli_main
    return int(cli_main(args) or 0)


# ----- parser ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from noisyneuron.realtime.chains import CHAINS

    chains_help = "; ".join(f"{name}: {desc}" for name, (_, desc) in CHAINS.items())
    parser = argparse.ArgumentParser(
        prog="noisyneuron",
        description="Real-time audio host: live karaoke (vocal removal), stem control and monitoring.",
        epilog=(
            "examples:\n"
            "  noisyneuron live --chain karaoke              karaoke from the default input to the default output\n"
            "  noisyneuron live --input song.flac            play a file through the chain to the speakers\n"
            "  noisyneuron process song.mp3 karaoke.wav      the same chain over a file, faster than real time\n"
            "  noisyneuron live --set vocals=-12             turn the vocals down by 12 dB instead of off\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"noisyneuron {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("devices", help="list audio devices", description="List the audio devices PortAudio sees.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_devices)

    def add_chain_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--chain", default="karaoke", choices=sorted(CHAINS), help=f"processing chain ({chains_help})")
        p.add_argument(
            "--set", action="append", metavar="PARAM=VALUE",
            help="set a parameter in its unit, e.g. vocals=-12 (dB), width=40 (%%), mix=50 (%%), karaoke.bypass=1; repeatable",
        )
        p.add_argument("--quiet", "-q", action="store_true", help="no progress or status lines")
        p.add_argument("--separator-weights", metavar="FILE", help="exported separator weights for --chain separator (default: the shipped ones)")

    p = sub.add_parser(
        "live", help="run a chain live between devices or files",
        description=(
            "Run a chain live. Each of --input/--output is a device (index or part of a name, "
            "see `noisyneuron devices`; default: the system default) or an audio file. "
            "Without any audio device and without devices named, it plays the bundled demo song "
            "through the chain into a WAV file and says so."
        ),
    )
    add_chain_options(p)
    p.add_argument("--input", "-i", metavar="DEV|FILE", help="input device or audio file (default: default input)")
    p.add_argument("--output", "-o", metavar="DEV|FILE", help="output device or audio file (default: default output)")
    p.add_argument("--blocksize", "-b", type=int, default=256, help="frames per audio block (default 256)")
    p.add_argument("--samplerate", "-r", type=float, default=None, help="sample rate in Hz (default: the device's)")
    p.add_argument("--backend", default="rtmixer", choices=["rtmixer", "callback"],
                   help="rtmixer: C callback + ring buffers (default, measured glitch-free under load); "
                        "callback: processing inside a Python PortAudio callback (the measured peer)")
    p.add_argument("--buffer-blocks", type=int, default=2, help="ring-buffer margin in blocks (default 2): more is safer, adds latency")
    p.add_argument("--loop", action="store_true", help="loop a file input")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--headless", action="store_true", help="no terminal UI: status lines on stderr")
    p.add_argument("--stats-json", metavar="FILE", help="write the final counters and latency as JSON")
    p.add_argument("--demo-dir", default=".", help="where the no-device demo writes its WAV files (default .)")
    p.set_defaults(func=cmd_live)

    p = sub.add_parser(
        "process", help="run a chain over a file (offline)",
        description=(
            "Run the same chain the live path runs over a file, faster than real time. The output "
            "lines up with the input sample for sample (the chain's latency is compensated). The "
            "output appears under its name only when complete."
        ),
    )
    p.add_argument("input", help="input audio file (WAV, FLAC, OGG, MP3)")
    p.add_argument("output", help="output audio file (.wav, .flac, .ogg)")
    add_chain_options(p)
    p.add_argument("--blocksize", "-b", type=int, default=512, help="frames per block (default 512)")
    p.add_argument("--samplerate", "-r", type=int, default=None, help="resample to this rate in Hz (default: the file's)")
    p.set_defaults(func=cmd_process)

    from noisyneuron import separate as separate_cmd

    p = sub.add_parser(
        "separate", help="split files into stems (vocals, drums, bass, other) with our model or Demucs",
        description="Split whole files into stems, offline and faster than real time: any format, sample rate and channel count in; one folder of stems per input out.",
        epilog=(
            "examples:\n"
            "  noisyneuron separate song.mp3                    vocals, drums, bass, other in separated/song/\n"
            "  noisyneuron separate a.flac b.wav --stems 2      vocals + accompaniment\n"
            "  noisyneuron separate song.mp3 --stems drums      drums + no_drums (practice along)\n"
            "  noisyneuron separate song.mp3 --model demucs     Demucs HTDemucs, when its weights are here\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    separate_cmd.add_cli_arguments(p)
    p.set_defaults(func=lambda a: separate_cmd.cli_main(a))

    p = sub.add_parser("demo", help="render the demo song and run it through a chain into WAV files")
    add_chain_options(p)
    p.add_argument("--out-dir", default=".", help="directory for the WAV files (default .)")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the demo song in seconds")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "bench", help="benchmarks: speed against peers in the same run",
        description=(
            "dsp: STFT -> mask -> inverse STFT throughput (numba vs numpy vs torch) and the karaoke "
            "chain, in multiples of real time, plus the engine's load at blocksizes 128 and 256 on "
            "the current audio device (rtmixer vs a plain callback, with and without Python load). "
            "separator: the neural separator's real-time factor live (blocks of 256) and offline, "
            "per-hop time p50/p99 and peak memory on one core, beside the DSP centre cut and "
            "Spleeter in the same run."
        ),
    )
    p.add_argument("what", choices=["dsp", "separator"], help="what to benchmark")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds of audio per measurement (default 10)")
    p.add_argument("--engine-seconds", type=float, default=5.0, help="seconds per engine measurement")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "data", help="build training and evaluation data sets",
        description="Build data sets from the allowed sources (shared/DATA.md), reproducibly from a seed.",
    )
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    q = data_sub.add_parser(
        "build", help="build (or resume) a separation or classification data set",
        description=(
            "separation: stereo 44.1 kHz tracks whose mixture is exactly the sum of their stems "
            "(vocals + drums/bass/other, or vocals + accompaniment for real recordings). "
            "classification: 16 kHz mono clips labelled music/speech/noise/silence. "
            "Sources are split 80/10/10 into train/valid/test by source. The build is "
            "deterministic for a seed and resumable: run the same command again after an "
            "interruption and it makes only what is missing. It needs the tools from "
            "scripts/install-data-tools.sh (not --fixture)."
        ),
        epilog=(
            "examples:\n"
            "  noisyneuron data build separation --out data/sep --hours 10 --seed 1\n"
            "  noisyneuron data build classification --out data/cls --hours 2 --seed 1\n"
            "  noisyneuron data build separation --out /tmp/fx --fixture   tiny numpy-only set, seconds\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("kind", choices=["separation", "classification"], help="which data set")
    q.add_argument("--out", required=True, help="output folder (an existing build there is resumed)")
    q.add_argument("--hours", type=float, default=1.0, help="hours of audio to make (default 1)")
    q.add_argument("--seed", type=int, default=0, help="build seed (default 0)")
    q.add_argument("--workers", type=int, default=0, help="worker processes (default: one per CPU)")
    q.add_argument("--item-seconds", type=float, default=None, help="track length (separation, default 30) or clip length (classification, default 4), seconds")
    q.add_argument("--splits", nargs="+", choices=["train", "valid", "test"], help="build only these splits of the plan (e.g. --splits test for an evaluation set)")
    q.add_argument("--fixture", action="store_true", help="build the tiny numpy-only fixture set instead (seconds; for tests)")
    q.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    q.set_defaults(func=cmd_data_build)
    q = data_sub.add_parser(
        "pack", help="a compact lossy copy of a split, to move training data to another machine",
        description=(
            "Copy whole tracks of a split (seeded order) as OGG Vorbis stems, without mixtures, until "
            "--max-mb is used. Training reads the copy like the original; evaluate on the lossless set."
        ),
    )
    q.add_argument("--data", required=True, help="a built separation data set")
    q.add_argument("--out", required=True, help="destination folder")
    q.add_argument("--max-mb", type=float, default=56.0, help="size budget in MB (default 56)")
    q.add_argument("--split", default="train", choices=["train", "valid", "test"], help="split to pack (default train)")
    q.add_argument("--quality", type=float, default=0.7, help="Vorbis compression level, 0 best .. 1 smallest (default 0.7)")
    q.add_argument("--seed", type=int, default=0, help="order in which tracks are taken")
    q.add_argument("--skip", type=int, default=0, help="leave out the first N tracks of that order")
    q.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    q.set_defaults(func=cmd_data_pack)
    q = data_sub.add_parser(
        "check", help="verify a separation set: every mixture exactly the sum of its stems",
        description="Read every track and report any whose files are unreadable, of the wrong length, or whose mixture is not exactly the sum of its stems. Exit 1 if any.",
    )
    q.add_argument("dir", help="data set folder")
    q.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    q.set_defaults(func=cmd_data_check)
    q = data_sub.add_parser("info", help="summarise a built data set", description="Items, hours per split and licences of a built data set.")
    q.add_argument("dir", help="data set folder")
    q.set_defaults(func=cmd_data_info)

    from noisyneuron.models import train_options

    p = sub.add_parser("train", help="train a model on a built data set", description="Train a model on a built data set.")
    train_sub = p.add_subparsers(dest="model_kind", metavar="MODEL", required=True)
    q = train_sub.add_parser(
        "separator", help="the streaming separator (CPU by default, --device cuda where a GPU exists)",
        description=(
            "Train the streaming separator on a separation data set's train split, validating on its "
            "valid split; an existing checkpoint in --out is continued with the very batches an "
            "uninterrupted run would have drawn. Writes checkpoint.pt, best.pt, log.jsonl and loss.png."
        ),
    )
    train_options.add_cli_arguments(q)

    def run_training(a: argparse.Namespace) -> int:
        from noisyneuron.models import training

        return training.cli_main(a)

    q.set_defaults(func=run_training)

    p = sub.add_parser(
        "eval", help="evaluation reports: SDR / accuracy side by side with peers",
        description="Evaluate systems on a built data set's held-out split; writes markdown, JSON and PNG reports.",
    )
    eval_sub = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    from noisyneuron.evaluation import classifier as eval_classifier
    from noisyneuron.evaluation import separation as eval_separation

    q = eval_sub.add_parser(
        "separation", help="BSS-eval v4 SDR and SI-SDR per stem, real-time factor and latency",
        description=eval_separation.__doc__.strip().splitlines()[0] if eval_separation.__doc__ else None,
    )
    eval_separation.add_cli_arguments(q)
    q.set_defaults(func=cmd_eval)
    q = eval_sub.add_parser(
        "classifier", help="accuracy, per-class F1, confusion matrix, decision latency",
        description=eval_classifier.__doc__.strip().splitlines()[0] if eval_classifier.__doc__ else None,
    )
    eval_classifier.add_cli_arguments(q)
    q.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "separator_weights", None):
        from noisyneuron.models.pretrained import SEPARATOR_WEIGHTS_ENV

        os.environ[SEPARATOR_WEIGHTS_ENV] = str(Path(args.separator_weights).resolve())
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        _print(f"noisyneuron: error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _print("interrupted")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
