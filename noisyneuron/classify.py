"""``noisyneuron classify``: a music / speech / noise / silence timeline of files, and
``noisyneuron classify calibrate``: fit the classifier to your microphone.

``classify FILE...`` runs the same decision path as the live monitor (a decision every 0.1 s
from the last 1 s of real audio, smoothed, with hysteresis and the gate; :func:`~noisyneuron.models.
classifier.batch_decisions`) over each file at its own rate (mono mix; files below 16 kHz are
resampled to 16 kHz) and merges equal consecutive decisions into **segments**: label, start and
end (seconds) and confidence (the mean smoothed confidence of the label over the segment).
Segment boundaries are decision times: a change shows up after the decision latency (median
0.4 s on the test split). Output: a table, JSON or CSV on stdout; ``--plot PNG`` draws the log-mel spectrogram
with a label strip above it (a colour band per segment, a legend; nothing is drawn over the
spectrogram).

``classify calibrate`` is parsed separately (before file names; see :func:`main_calibrate`),
so ``noisyneuron classify song.wav`` and ``noisyneuron classify calibrate --from DIR`` both work;
to classify a file named ``calibrate``, write ``./calibrate``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from noisyneuron.errors import UserError

__all__ = ["segments_of", "classify_files", "add_cli_arguments", "cli_main", "calibrate_parser", "main_calibrate", "FORMATS"]

#: Values of ``--format``.
FORMATS = ("table", "json", "csv")
_MIN_RATE = 16000


def _print(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def segments_of(result: dict, duration: float) -> list[dict]:
    """Merge equal consecutive decisions of :func:`batch_decisions`'s ``result`` into segments.

    Decision ``k`` covers ``[k d, (k + 1) d)`` seconds (``d`` the decision interval); the last
    segment ends at ``duration``. Each segment: ``{"label", "start", "end", "confidence"}``
    (seconds; the label's mean smoothed confidence over the segment, 0..1).
    """
    index, smoothed, labels = result["index"], result["smoothed"], result["labels"]
    d = float(result["decision_seconds"])
    out: list[dict] = []
    k = 0
    while k < len(index):
        j = k
        while j + 1 < len(index) and index[j + 1] == index[k]:
            j += 1
        lab = int(index[k])
        out.append({
            "label": labels[lab],
            "start": round(k * d, 3),
            "end": round((j + 1) * d, 3),
            "confidence": round(float(np.mean(smoothed[k : j + 1, lab])), 3),
        })
        k = j + 1
    if out:
        out[-1]["end"] = round(max(out[-1]["end"], duration), 3)
    return out


def _figure(audio: np.ndarray, rate: int, result: dict, segments: list[dict], net, title: str):
    """The ``--plot`` figure: a label strip (one colour band per segment, named when wide enough,
    and a legend of every label) above the log-mel spectrogram, which nothing is drawn over, on
    a shared time axis (seconds). Returns ``(figure, strip axes, spectrogram axes)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from noisyneuron.models.classifier import log_mel_frames

    mel, _ = log_mel_frames(audio, rate, net.config)
    hop = net.config.hop_seconds
    labels = list(result["labels"])
    colours = {lab: plt.get_cmap("tab10")(i % 10) for i, lab in enumerate(labels)}
    fig, (strip, ax) = plt.subplots(2, 1, figsize=(12, 4.8), sharex=True, layout="constrained", gridspec_kw={"height_ratios": [1, 6]})
    extent = (0.0, len(mel) * hop, 0, mel.shape[1])
    top = float(mel.max()) if len(mel) else 0.0
    ax.imshow(mel.T, origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=top - 80, vmax=top)
    end = max(extent[1], segments[-1]["end"] if segments else 0.0)
    for seg in segments:  # the segments go on the strip only: the spectrogram stays clear
        strip.axvspan(seg["start"], seg["end"], color=colours[seg["label"]], alpha=0.9, lw=0)
        if seg["end"] - seg["start"] >= 0.04 * max(end, 1e-9):
            strip.text(0.5 * (seg["start"] + seg["end"]), 0.5, f"{seg['label']} {seg['confidence']:.2f}", ha="center", va="center", fontsize=8)
    strip.set_yticks([])
    strip.set_ylim(0, 1)
    strip.set_xlim(0, end)
    strip.tick_params(axis="x", labelbottom=False)
    strip.set_title(title, fontsize=9, loc="left")
    ax.set_ylabel("mel band (30 Hz - 7.5 kHz)")
    ax.set_xlabel("time (s)")
    strip.legend(handles=[Patch(color=colours[lab], label=lab) for lab in labels], loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(labels), fontsize=8, frameon=False)
    return fig, strip, ax


def _plot(path: Path, audio: np.ndarray, rate: int, result: dict, segments: list[dict], net, title: str) -> None:
    import matplotlib.pyplot as plt

    from noisyneuron.audio.atomic import atomic_path

    fig, _, _ = _figure(audio, rate, result, segments, net, title)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, keep_suffix=True) as tmp:  # savefig picks PNG by the extension
            fig.savefig(tmp, dpi=100)
    except OSError as error:  # read-only folder, full disk...: one line, no half-written plot
        raise UserError(f"--plot {path}: cannot write it ({error.strerror or error}); choose another place") from None
    finally:
        plt.close(fig)


def _check_plot_target(path: Path) -> None:
    """Refuse a plot that cannot be written before any work: its nearest existing folder must be a
    folder we may write in (a file in the way, a read-only file system: one line)."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"--plot {path}: {folder} is a file, not a folder; choose another place")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"--plot {path}: cannot write in {folder} (read-only or no permission); choose another place")


def _plot_path(plot: Path, input_path: Path, many: bool) -> Path:
    return plot.with_name(f"{plot.stem}-{input_path.stem}{plot.suffix or '.png'}") if many else plot


def classify_files(inputs: list[str], net=None, plot: str | None = None, progress: bool = True, **stream_kwargs) -> list[dict]:
    """Classify each file; returns per file ``{"file", "seconds", "sample_rate", "weights",
    "segments", "rtf"}`` (see :func:`segments_of`). Every input is checked first: a missing or
    unreadable file is a one-line :class:`UserError` before any work."""
    from noisyneuron.models.classifier import batch_decisions, load_classifier
    from noisyneuron.audio.files import audio_info, read_audio_checked

    paths = [Path(p) for p in inputs]
    if not paths:
        raise UserError("no input files: give one or more audio files to classify")
    infos = [audio_info(p) for p in paths]
    if plot is not None and Path(plot).suffix.lower() not in ("", ".png"):
        raise UserError(f"--plot {plot}: give a .png file name")
    for path in paths if plot is not None else ():
        _check_plot_target(_plot_path(Path(plot), path, len(paths) > 1))
    if net is None:
        net = load_classifier()
    out = []
    for path, info in zip(paths, infos):
        started = time.perf_counter()
        if info.sample_rate >= _MIN_RATE:
            audio, rate, _ = read_audio_checked(path, channels=1)
        else:
            audio, rate, _ = read_audio_checked(path, sample_rate=_MIN_RATE, channels=1)
        mono = np.ascontiguousarray(audio[:, 0])
        result = batch_decisions(net, mono, rate, **stream_kwargs)
        seconds = len(mono) / rate
        segments = segments_of(result, seconds)
        elapsed = time.perf_counter() - started  # reading + classifying (the plot is extra)
        if plot is not None:
            target = _plot_path(Path(plot), path, len(paths) > 1)
            _plot(target, mono, int(rate), result, segments, net, f"{path.name}: {len(segments)} segment(s), weights: {net.source}")
        out.append({"file": str(path), "seconds": round(seconds, 3), "sample_rate": int(rate), "weights": net.source,
                    "segments": segments, "rtf": elapsed / seconds if seconds else 0.0})
    return out


def _format(results: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([{k: v for k, v in r.items() if k != "rtf"} for r in results], indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["file", "start", "end", "label", "confidence"])
        for r in results:
            for s in r["segments"]:
                w.writerow([r["file"], f"{s['start']:.2f}", f"{s['end']:.2f}", s["label"], f"{s['confidence']:.3f}"])
        return buf.getvalue().rstrip("\n")
    lines = []
    for r in results:
        lines.append(f"{r['file']} ({r['seconds']:.1f} s)")
        lines.append(f"  {'start':>8} {'end':>8}  {'label':<10} confidence")
        for s in r["segments"]:
            lines.append(f"  {s['start']:8.2f} {s['end']:8.2f}  {s['label']:<10} {s['confidence']:.2f}")
    return "\n".join(lines)


# ----- command line -----------------------------------------------------------------------------
def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``noisyneuron classify FILE...``."""
    parser.add_argument("inputs", nargs="+", metavar="FILE", help="audio files (WAV, FLAC, OGG, MP3); `calibrate` as the first word runs calibration instead")
    parser.add_argument("--format", default="table", choices=FORMATS, help="output on stdout (default: table)")
    parser.add_argument("--plot", metavar="PNG", default=None, help="save a spectrogram with the labels drawn (several files: PNG-<file>.png)")
    parser.add_argument("--classifier-weights", metavar="FILE", default=None, help="exported classifier weights (default: your calibration profile, else the shipped ones)")
    parser.add_argument("--no-profile", action="store_true", help="ignore your calibration profile (use the shipped weights)")
    parser.add_argument("--gate", type=float, default=None, metavar="DBFS", help="gate: below this RMS (dBFS, last 0.4 s) is silence unless the input stands out from its own floor (default: the model's, -58)")
    parser.add_argument("--decision-seconds", type=float, default=0.1, metavar="S", help="time between decisions (default 0.1)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no notes on stderr")


def cli_main(args: argparse.Namespace) -> int:
    """Run ``noisyneuron classify FILE...``; 0 on success, one-line errors raise :class:`UserError`."""
    from noisyneuron.models.classifier import load_classifier
    from noisyneuron.units import speed_words

    net = load_classifier(args.classifier_weights, use_profile=not args.no_profile)
    kwargs = {"decision_seconds": args.decision_seconds}
    if args.gate is not None:
        kwargs["silence_dbfs"] = args.gate
    results = classify_files(args.inputs, net, args.plot, progress=not args.quiet, **kwargs)
    print(_format(results, args.format), flush=True)
    if not args.quiet:
        if net.source.startswith("profile"):
            _print(f"classify: using your calibration {net.source} (--no-profile: the shipped weights)")
        for r in results:
            _print(f"{r['file']}: {len(r['segments'])} segment(s), {r['seconds']:.1f} s in {r['rtf'] * r['seconds']:.2f} s "
                   f"({speed_words(r['seconds'], r['rtf'] * r['seconds'])})")
        if args.plot:
            _print(f"plot: {args.plot}" if len(results) == 1 else f"plots: {', '.join(str(_plot_path(Path(args.plot), Path(r['file']), True)) for r in results)}")
    return 0


def calibrate_parser() -> argparse.ArgumentParser:
    """The parser of ``noisyneuron classify calibrate``."""
    p = argparse.ArgumentParser(
        prog="noisyneuron classify calibrate",
        description=(
            "Fit the classifier to your microphone and room: record labelled examples from the input device "
            "(prompted label by label) or take a folder of folders (DIR/<label>/*.wav), fine-tune the network's head "
            "with the rest frozen, and save a profile in your config directory. Prints the accuracy before and after "
            "on held-back examples (the last 30% of each label's audio). The live monitor and `classify` use the profile "
            "from then on (and say so); delete the file or pass --no-profile to `classify` to go back."
        ),
        epilog=(
            "examples:\n"
            "  noisyneuron classify calibrate --input default --seconds 20      prompt per label, 20 s each\n"
            "  noisyneuron classify calibrate --from recordings/                  recordings/<label>/*.wav\n"
            "  noisyneuron classify calibrate --from recordings/ --profile studio.pt\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", "-i", metavar="DEVICE", help="record from this input device (index or part of a name; 'default')")
    src.add_argument("--from", dest="from_dir", metavar="DIR", help="take recordings from DIR/<label>/*.wav|flac|ogg|mp3 instead")
    p.add_argument("--labels", default=None, metavar="A,B,...", help="labels to record (default: the model's labels and silence)")
    p.add_argument("--seconds", type=float, default=20.0, metavar="S", help="seconds recorded per label (default 20)")
    p.add_argument("--samplerate", type=float, default=None, metavar="HZ", help="recording rate (default: the device's)")
    p.add_argument("--save-recordings", metavar="DIR", default=None, help="also keep the takes as DIR/<label>/take-*.wav (reuse with --from)")
    p.add_argument("--profile", metavar="PATH", default=None, help="where to save the profile (default: the config directory, see below)")
    p.add_argument("--classifier-weights", metavar="FILE", default=None, help="the model to calibrate (default: the shipped weights)")
    p.add_argument("--yes", "-y", action="store_true", help="do not wait for Enter before each recording (the default when stdin is not a terminal)")
    return p


def _ask(msg: str) -> None:
    """Wait for Enter; end of input (Ctrl-D) cancels calibration with a one-line error."""
    try:
        input(msg)
    except EOFError:
        raise UserError("calibration cancelled: end of input before recording (pass --yes to record without prompts)") from None


def main_calibrate(argv: list[str]) -> int:
    """Run ``noisyneuron classify calibrate ARGS``; returns the exit status.

    Prompts before each label only when standard input is a terminal and ``--yes`` is not given:
    otherwise (a script, a pipe, a test) it records label after label without waiting."""
    from noisyneuron.models.classifier import DEFAULT_STREAM, default_profile_path, load_classifier
    from noisyneuron.models.classifier_calibration import calibrate, recordings_from_folder
    from noisyneuron.realtime.recording import record_from_device

    parser = calibrate_parser()
    parser.epilog += f"\nprofile: {default_profile_path()} ($XDG_CONFIG_HOME or $NOISYNEURON_CLASSIFIER_PROFILE move it)\n"
    args = parser.parse_args(argv)
    net = load_classifier(args.classifier_weights, use_profile=False)
    profile = Path(args.profile) if args.profile else default_profile_path()
    if args.from_dir:
        recordings = recordings_from_folder(args.from_dir)
    else:
        labels = [s.strip() for s in args.labels.split(",") if s.strip()] if args.labels else list(net.config.labels) + (["silence"] if "silence" not in net.config.labels else [])
        if args.seconds < 5:
            raise UserError("--seconds must be at least 5 (each label is split into fit and held-back audio)")
        interactive = not args.yes and sys.stdin is not None and sys.stdin.isatty()
        if not args.yes and not interactive:
            _print("calibrate: standard input is not a terminal: recording each label without waiting for Enter (as --yes)")
        gate = ((net.export_meta or {}).get("stream") or {}).get("silence_dbfs", DEFAULT_STREAM["silence_dbfs"])
        recordings = record_from_device(args.input, labels, args.seconds, args.samplerate, prompt=_ask if interactive else _print,
                                        say=_print, save_dir=args.save_recordings, gate_dbfs=gate)
    r = calibrate(net, recordings, profile)
    b, a = r["before"], r["after"]
    print(f"calibrated on {len(recordings)} recording(s), labels {', '.join(sorted({x.label for x in recordings}))}; "
          f"{r['fit_windows']} windows fitted, {b['windows']} held back")
    print(f"held-back accuracy: before {b['accuracy']:.3f} -> after {a['accuracy']:.3f}")
    for lab in b["per_label"]:
        print(f"  {lab:<10} {b['per_label'][lab]:.3f} -> {a['per_label'][lab]:.3f}")
    if r["gate_after"] != r["gate_before"]:
        print(f"level gate: {r['gate_before']} -> {r['gate_after']} dBFS (from your silence recording)")
    print(f"profile saved: {r['path']} ({r['bytes'] / 1e3:.0f} kB); the monitor and `classify` now use it")
    return 0
