"""The ``noisyneuron`` command line.

User errors (a bad file, a missing device) print one line and exit with status 2; Ctrl-C stops
cleanly (exit 130) and leaves any output file valid.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from noisyneuron import __version__
from noisyneuron.errors import UserError
from noisyneuron.live import DEMO_MIX_NAME, cmd_live, run_demo


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
def _build_chain(args: argparse.Namespace, input_is_file: bool):
    """The chain ``--chain`` names, ``--set`` applied, built for the input's channel count."""
    from noisyneuron.control.surface import ControlSurface
    from noisyneuron.realtime.chains import build_chain, source_channels

    chain = build_chain(args.chain, source_channels(args.input, input_is_file))
    ControlSurface(chain).apply_settings(args.set or [])
    return chain


# ----- process --------------------------------------------------------------------------------
def cmd_process(args: argparse.Namespace) -> int:
    from noisyneuron.realtime.offline import process_file

    chain = _build_chain(args, input_is_file=True)
    report = process_file(
        args.input,
        args.output,
        chain,
        blocksize=args.blocksize,
        sample_rate=args.samplerate,
        progress=not args.quiet,
        bitrate_kbps=args.bitrate,
    )
    if chain.note:
        _print(chain.note)
    _print(report.summary())
    return 0


# ----- demo -----------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    out = run_demo(args.chain, Path(args.out_dir), args.set or [], seconds=args.seconds)
    _print(f"wrote {Path(args.out_dir) / DEMO_MIX_NAME} (the demo song) and {out} (through the {args.chain!r} chain)")
    return 0


# ----- bench ----------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "classifier":
        from noisyneuron.bench.classifier import (
            format_classifier_table,
            run_classifier_bench,
        )

        result = {"classifier": run_classifier_bench(seconds=args.seconds)}
        print(format_classifier_table(result["classifier"]))
    elif args.what == "separator":
        from noisyneuron.bench.separator import (
            format_separator_table,
            run_separator_bench,
        )

        result = {"separator": run_separator_bench(seconds=args.seconds)}
        print(format_separator_table(result["separator"]))
        from noisyneuron.bench.separator import (
            format_file_memory_table,
            run_file_memory_bench,
        )

        print()
        result["file_memory"] = run_file_memory_bench()
        print(format_file_memory_table(result["file_memory"]))
    elif args.what == "dsp":
        from noisyneuron.bench.dsp import format_table, run_dsp_bench

        result = {"dsp": run_dsp_bench(seconds=args.seconds)}
        print(format_table(result["dsp"]))
        from noisyneuron.bench.engine import format_engine_table, run_engine_bench

        result["engine"] = run_engine_bench(seconds=args.engine_seconds, blocksizes=(128, 256))
        print(format_engine_table(result["engine"]))
    elif args.what == "live":
        from noisyneuron.bench.live import format_live_table, run_live_bench

        modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
        result = {"live": run_live_bench(seconds=args.seconds, chain=args.chain or "separator", modes=modes,
                                         warmup=args.warmup, osc_roundtrips=args.osc_roundtrips)}
        print(format_live_table(result["live"]))
    else:
        raise UserError(f"unknown benchmark {args.what!r}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        _print(f"wrote {args.json}")
    return 0


# ----- data and eval --------------------------------------------------------------------------
def cmd_data_build(args: argparse.Namespace) -> int:
    from noisyneuron.datasets.build import default_workers
    from noisyneuron.datasets.commands import build_dataset

    workers = args.workers or default_workers()
    if not args.quiet:
        what = "fixture set" if args.fixture else (f"{args.tracks or 40} test tracks" if args.kind == "realworld" else f"{args.hours:g} h")
        _print(f"building a {args.kind} data set ({what}, seed {args.seed}) in {args.out} with {workers} worker(s)")
    stats, manifest = build_dataset(
        args.kind, args.out, args.hours, args.seed, workers, args.item_seconds, args.fixture,
        progress=not args.quiet, splits=tuple(args.splits) if args.splits else None, tracks=args.tracks,
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
    from noisyneuron.datasets.layout import read_manifest

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

    from noisyneuron.datasets.layout import (
        check_track,
        read_manifest,
        separation_tracks,
    )

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
    from noisyneuron.datasets.pack import pack_separation

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
            "--set", action="append", metavar="KEY=VALUE",
            help="set a control in its unit, applied after the config file and any preset: KEY is a control's "
                 "name (vocals), its key as presets store it (separator.vocals, chain.mix, PROCESSOR.bypass) or "
                 "its OSC address; VALUE a number, a number with its unit ('-12 dB', '2 kHz', '50 %%'), off or "
                 "-inf (the minimum), on for bypass; e.g. --set vocals=-12 --set drums=off --set mix=50; repeatable",
        )
        p.add_argument("--quiet", "-q", action="store_true", help="no progress or status lines")
        p.add_argument("--separator-weights", metavar="FILE", help="exported separator weights for --chain separator (default: the shipped ones)")

    p = sub.add_parser(
        "live", help="run a chain live between devices or files",
        description=(
            "Run a chain live. Each of --input/--output is a device (index or part of a name, "
            "see `noisyneuron devices`; default: the system default) or an audio file. "
            "Without any audio device and without devices named, it plays the bundled demo song "
            "through the chain into a WAV file and says so. "
            "In a terminal it opens the terminal UI (80x24 and up, also over SSH and in tmux): meters, "
            "the chain with bypass toggles and a fader per parameter, the classifier, a spectrum, "
            "latency/load/xruns, OSC and MIDI status, MIDI learn (l), presets (s/o), device choice (d); "
            "? shows every key. The UI runs in its own process and talks OSC to the engine "
            "(--ui-in-process: one process). --headless, or no terminal, prints status lines instead. "
            "OSC (--osc...) and MIDI (--midi-...) reach every parameter as /noisyneuron/<processor>/<param> "
            "(and each processor's bypass); any MIDI option also opens the virtual input 'NoisyNeuron'. "
            "Devices, chain, parameter values, [osc] and [midi] can come from the config file (--config); "
            "flags override it, and --set overrides --preset, which overrides the file."
        ),
    )
    add_chain_options(p)
    p.add_argument("--input", "-i", metavar="DEV|FILE", help="input device or audio file (default: default input)")
    p.add_argument("--output", "-o", metavar="DEV|FILE", help="output device or audio file (default: default output)")
    p.add_argument("--blocksize", "-b", type=int, default=None, help="frames per audio block (default 256)")
    p.add_argument("--samplerate", "-r", type=float, default=None, help="sample rate in Hz (default: the device's)")
    p.add_argument("--backend", default="rtmixer", choices=["rtmixer", "callback"],
                   help="rtmixer: C callback + ring buffers (default, measured glitch-free under load); "
                        "callback: processing inside a Python PortAudio callback (the measured peer)")
    p.add_argument("--buffer-blocks", type=int, default=None, help="ring-buffer margin in blocks (default 2): more is safer, adds latency")
    p.add_argument("--loop", action="store_true", help="loop a file input")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--headless", action="store_true",
                   help="no terminal UI: status lines on stderr (also the case when there is no terminal)")
    p.add_argument("--stats-json", metavar="FILE", help="write the final counters and latency as JSON")
    p.add_argument("--demo-dir", default=".", help="where the no-device demo writes its WAV files (default .)")
    p.add_argument("--config", metavar="FILE",
                   help="config file (default: $XDG_CONFIG_HOME/noisyneuron/config.toml, i.e. ~/.config/...); flags override it")
    p.add_argument("--preset", metavar="NAME", help="load a saved preset at start (presets/ beside the config file)")
    p.add_argument("--ui-in-process", action="store_true",
                   help="run the terminal UI in the engine's process instead of its own (measured: costs the "
                        "neural chains late blocks; see `noisyneuron bench live`)")
    g = p.add_argument_group("OSC")
    g.add_argument("--osc", action=argparse.BooleanOptionalAction, default=None,
                   help="serve OSC (default: as the config says; off without one); --no-osc: don't")
    g.add_argument("--osc-port", type=int, metavar="PORT", help="UDP port (default 9000; implies --osc)")
    g.add_argument("--osc-host", metavar="ADDR", help="address to bind (default 127.0.0.1; another one needs --osc-allow)")
    g.add_argument("--osc-allow", action="append", metavar="ADDR", help="client address or network allowed to send; repeatable")
    from noisyneuron.control.midi import add_live_arguments as add_midi_arguments

    add_midi_arguments(p)
    # unset here so that the config file can fill them (defaults: karaoke, 256, 2)
    p.set_defaults(func=cmd_live, chain=None, blocksize=None, buffer_blocks=None)

    p = sub.add_parser(
        "process", help="run a chain over a file (offline)",
        description=(
            "Run the same chain the live path runs over a file, faster than real time. The output "
            "lines up with the input sample for sample (the chain's latency is compensated). The "
            "output appears under its name only when complete."
        ),
    )
    p.add_argument("input", help="input audio file (WAV, FLAC, OGG, MP3, M4A/AAC, Opus, ALAC)")
    p.add_argument("output", help="output audio file: .wav or .flac (lossless, 24-bit PCM), "
                                  ".ogg (Vorbis) or .mp3 (lossy: LAME's variable bitrate, about 128 kbit/s, or --bitrate)")
    p.add_argument("--bitrate", type=int, default=None, metavar="KBPS",
                   help="MP3 output: constant bitrate, kbit/s (64..320, e.g. 192; default: LAME's, about 128)")
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

    from noisyneuron import classify as classify_cmd

    p = sub.add_parser(
        "classify", help="music/speech/noise/silence timeline of files; `classify calibrate` fits it to your microphone",
        description=(
            "Classify whole files with the live monitor's decision path (a decision every 0.1 s from the last 1 s, "
            "smoothed, with hysteresis and a level gate) and print the segments: label, start, end, confidence. "
            "Uses your calibration profile when there is one (and says so)."
        ),
        epilog=(
            "examples:\n"
            "  noisyneuron classify song.wav                       a table of segments\n"
            "  noisyneuron classify a.flac b.mp3 --format json     JSON (or --format csv)\n"
            "  noisyneuron classify talk.wav --plot talk.png       spectrogram with the labels drawn\n"
            "  noisyneuron classify calibrate --input default      fit to your microphone (see: noisyneuron classify calibrate --help)\n"
            "  noisyneuron classify calibrate --from recordings/   ... or to recordings/<label>/*.wav\n"
            "\n"
            "`calibrate` as the first word is the calibration command; to classify a file named calibrate, write ./calibrate.\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    classify_cmd.add_cli_arguments(p)
    p.set_defaults(func=lambda a: classify_cmd.cli_main(a))

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
            "Spleeter in the same run; then the peak memory of separating a 10 s and a 10 min file "
            "(separate's file-to-file path beside the in-memory one). "
            "live: the live chain on the current output device (the JACK dummy server where one "
            "runs) headless, with the terminal UI in the engine's process, and with the engine in "
            "its own process and the UI talking to it over OSC (what `live` runs): xruns, late "
            "blocks, callback and processing load for each, the UI's frame rate, and the OSC round trip."
        ),
    )
    p.add_argument("what", choices=["dsp", "separator", "live", "classifier"], help="what to benchmark (classifier: the monitor's RTF and per-decision latency p50/p99 on one core, peak memory, beside the energy baseline and silero-vad)")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds of audio per measurement (default 10)")
    p.add_argument("--engine-seconds", type=float, default=5.0, help="seconds per engine measurement")
    p.add_argument("--chain", default=None, help="live: the chain to run (default separator)")
    p.add_argument("--modes", default="headless,tui,tui-process", help="live: modes to run, comma-separated (default all three)")
    p.add_argument("--warmup", type=float, default=2.0, help="live: seconds before each measured window (default 2)")
    p.add_argument("--osc-roundtrips", type=int, default=1000, help="live: OSC set+query round trips to time (0: none)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "data", help="build training and evaluation data sets",
        description="Build data sets from the allowed sources (shared/DATA.md), reproducibly from a seed.",
    )
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    q = data_sub.add_parser(
        "build", help="build (or resume) a separation, real-world or classification data set",
        description=(
            "separation: stereo 44.1 kHz tracks whose mixture is exactly the sum of their stems "
            "(vocals + drums/bass/other, or vocals + accompaniment for real recordings). "
            "realworld: the held-out-source evaluation set (valid and test splits): real voices of "
            "speakers and packages training never hears (real singing, a sampled choir, read speech), "
            "produced and mastered like records, over real recordings of held-out packages; no "
            "synthesiser or vocoder in it. The separator's published figures and --chain karaoke's "
            "choice come from its test split. "
            "classification: 16 kHz mono clips labelled music/speech/noise/silence. "
            "Sources are split 80/10/10 into train/valid/test by source. The build is "
            "deterministic for a seed and resumable: run the same command again after an "
            "interruption and it makes only what is missing. It needs the tools from "
            "scripts/install-data-tools.sh (not --fixture)."
        ),
        epilog=(
            "examples:\n"
            "  noisyneuron data build separation --out data/sep --hours 10 --seed 1\n"
            "  noisyneuron data build realworld --out data/realworld --tracks 40 --seed 2026\n"
            "  noisyneuron data build classification --out data/cls --hours 2 --seed 1\n"
            "  noisyneuron data build separation --out /tmp/fx --fixture   tiny numpy-only set, seconds\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("kind", choices=["separation", "realworld", "classification"], help="which data set")
    q.add_argument("--out", required=True, help="output folder (an existing build there is resumed)")
    q.add_argument("--hours", type=float, default=1.0, help="hours of audio to make (default 1)")
    q.add_argument("--seed", type=int, default=0, help="build seed (default 0)")
    q.add_argument("--tracks", type=int, default=None, metavar="N", help="realworld: test tracks (default 40; valid gets half as many)")
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

    from noisyneuron.models import classifier_options

    q = train_sub.add_parser(
        "classifier", help="the streaming music/speech/noise classifier, or your own labels from a folder of folders",
        description=(
            "Train the streaming classifier on a folder of folders (DIR/<label>/*.wav|flac|ogg|mp3: one subfolder "
            "per label, any label names, e.g. environmental sounds) or a built classification set (train/valid/test). "
            "A 'silence' folder is left to the level gate unless --learn-silence. An existing checkpoint in --out is "
            "continued with the very batches an uninterrupted run would have drawn. Writes checkpoint.pt, best.pt, "
            "log.jsonl and loss.png; --export writes the small inference file that --classifier-weights and the "
            "monitor load."
        ),
        epilog=(
            "examples:\n"
            "  noisyneuron train classifier --data data/cls --export classifier.pt\n"
            "  noisyneuron train classifier --data ~/sounds --out runs/birds --steps 2000 --export birds.pt   (~/sounds/<label>/*.wav)\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    classifier_options.add_cli_arguments(q)

    def run_classifier_training(a: argparse.Namespace) -> int:
        from noisyneuron.models import classifier_training

        return classifier_training.cli_main(a)

    q.set_defaults(func=run_classifier_training)

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

    from noisyneuron.control import midi as midi_control
    from noisyneuron.control.osc import add_cli_arguments as add_osc_command

    add_osc_command(sub)
    p = sub.add_parser(
        "midi", help="MIDI ports, monitor and learn",
        description="List MIDI ports, watch what comes in, map knobs and pads (README: MIDI).",
    )
    midi_control.add_cli_arguments(p)
    p.set_defaults(func=midi_control.cli_main)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["classify", "calibrate"]:  # its own parser: `classify FILE...` takes file names
        from noisyneuron.classify import main_calibrate

        return _run(lambda: main_calibrate(argv[2:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "separator_weights", None):
        from noisyneuron.models.pretrained import SEPARATOR_WEIGHTS_ENV

        os.environ[SEPARATOR_WEIGHTS_ENV] = str(Path(args.separator_weights).resolve())
    return _run(lambda: args.func(args))


def _run(func) -> int:
    """Run a command: one line and status 2 for a UserError, 130 for Ctrl-C."""
    try:
        return int(func() or 0)
    except UserError as exc:
        _print(f"noisyneuron: error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _print("interrupted")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
