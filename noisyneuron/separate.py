"""``noisyneuron separate``: split whole files into stems, offline.

For each input ``song.flac`` the stems go to ``OUT/song/<stem>.wav`` (``--format`` flac or
mp3 with ``--bitrate``; ``--filename`` names them otherwise, e.g. ``"{track} - {stem}.{ext}"``;
folders are separated file by file, ``--recursive`` mirrors their subfolders), written
atomically (each appears only once complete; existing files are replaced, but never an input:
a stem that would be one of the inputs, or two inputs that would write the same stems, is a
one-line error before any work):

- ``--stems 4`` (default): every stem of the model: vocals, drums, bass, other (a Demucs model
  with more sources, e.g. htdemucs_6s, writes all of them);
- ``--stems 2``: ``vocals`` and ``accompaniment`` = mixture - vocals;
- ``--stems NAME`` (vocals, drums, bass, other): ``NAME`` and ``no_NAME`` = mixture - NAME.

The pair of ``--stems 2``/``--stems NAME`` therefore adds up to the input exactly (to the 24-bit
output quantisation); with our model the four stems of ``--stems 4`` do too.

Models: ``ours`` (default) is the streaming separator (:mod:`noisyneuron.models.separator`) run
offline, streamed from disk to disk: the file is decoded, separated with the model's state
carried (:class:`noisyneuron.models.apply.ChunkedSeparation`) and the stems written in pieces, so
peak memory does not grow with the file's length; ``demucs`` is Meta's htdemucs
(:mod:`noisyneuron.models.demucs_backend`), better but much slower, with weights from the local
cache or ``--demucs-weights``, run on overlapping 60 s pieces of the file (crossfaded over 8 s,
normalised by the whole file: :class:`~noisyneuron.models.demucs_backend.ChunkedDemucs`), so
its memory does not grow with the file either. The output folders are created and proven
writable before any work.

Rates and channels: each file is read at its own rate and channel count, and its stems are written
at that rate and channel count. Our model runs natively at 44.1 and 48 kHz; files at other rates
are resampled to 44.1 kHz for it (soxr, HQ) and the stems resampled back. Demucs models resample to
their own rate (44.1 kHz) and back. Mono files give mono stems; files with more than two channels
are separated on their first two channels and the others go, unchanged, into ``other`` (into
``accompaniment``/``no_NAME`` for the two-stem outputs).

WAV and FLAC are written as 24-bit PCM, MP3 at a constant ``--bitrate`` or LAME's default, clipped to [-1, 1] (the count is reported if any sample
clipped).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from noisyneuron.errors import UserError

__all__ = ["separate_files", "add_cli_arguments", "cli_main", "MODELS", "STEM_CHOICES"]

#: Values of ``model``.
MODELS = ("ours", "demucs")
#: Values of ``stems`` besides a single stem name.
STEM_CHOICES = ("4", "2")
_FORMATS = ("wav", "flac", "mp3")
_NATIVE_RATES = (44100, 48000)
_FALLBACK_RATE = 44100


def _print(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _check_stems_syntax(stems: str) -> str:
    stems = str(stems).strip().lower()
    if not stems or (stems not in STEM_CHOICES and not stems.replace("_", "").isalnum()):
        raise UserError(f"--stems {stems!r}: use 4, 2, vocals, drums, bass or other")
    return stems


def _outputs_for(stems: str, sources: list[str]) -> list[str]:
    """Names of the files written for ``stems`` given the model's ``sources``."""
    if stems == "4":
        return list(sources)
    if stems == "2":
        if "vocals" not in sources:
            raise UserError(f"--stems 2 needs a vocals stem; this model has {', '.join(sources)}")
        return ["vocals", "accompaniment"]
    if stems not in sources:
        raise UserError(f"--stems {stems!r}: use 4, 2 or one of {', '.join(sources)}")
    return [stems, f"no_{stems}"]


def _load_ours(net):
    if net is not None:
        return net
    try:
        from noisyneuron.models.pretrained import load_separator
    except ModuleNotFoundError as error:
        if error.name != "noisyneuron.models.pretrained":
            raise
        raise UserError("the shipped separator model is missing from this installation; reinstall noisyneuron or use --model demucs") from None
    return load_separator()


def separate_files(
    inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike = "separated",
    stems: str = "4",
    model: str = "ours",
    demucs_weights: str | os.PathLike | None = None,
    net=None,
    progress: bool = True,
    output_format: str = "wav",
    recursive: bool = False,
    filename: str = "{track}/{stem}.{ext}",
    bitrate: int | None = None,
) -> list[Path]:
    """Separate each input file into stem files under ``out_dir/<input name>/``.

    Args:
        inputs: audio files (WAV, FLAC, OGG, MP3, M4A/AAC, Opus...; any rate and channel
            count), or folders: every audio file in them (``recursive``: in their subfolders too,
            written to the same subfolders under ``out_dir``).
        out_dir: output folder, created if needed; existing stem files in it are replaced.
        stems: ``"4"`` (every stem of the model), ``"2"`` (vocals + accompaniment) or a stem
            name (that stem + ``no_<name>``); see the module docstring.
        model: ``"ours"`` (the streaming separator) or ``"demucs"``.
        demucs_weights: for ``model="demucs"``: a Demucs model file or a pretrained name
            (default ``htdemucs`` from the local cache); see :func:`load_demucs`.
        net: for ``model="ours"``: the :class:`SeparatorNet` to use (default: the shipped one).
        progress: tqdm bars on stderr. A line per file (real-time factor) is printed in any case.
        output_format: ``"wav"``, ``"flac"`` (24-bit PCM) or ``"mp3"``.
        recursive: look for audio files in the subfolders of folder inputs too.
        filename: where each stem goes under ``out_dir`` (and the input's subfolder):
            ``{track}`` (the input's name without extension), ``{stem}``, ``{ext}``; e.g.
            ``"{track}/{stem}.{ext}"`` (the default) or ``"{track} - {stem}.{ext}"``.
        bitrate: for ``"mp3"``, a constant bitrate in kbit/s (one of
            :data:`noisyneuron.audio.files.MP3_BITRATES`; default: LAME's, about 128).

    Returns:
        the written files, in order (input by input, stems in output order).

    Raises:
        UserError: one line: no inputs, a missing/unreadable input, two inputs with the same
            name, a stem file that would be one of the inputs, a bad
            ``stems``/``model``/``output_format``, missing Demucs weights, or an output that
            cannot be written.
    """
    from noisyneuron.audio.files import audio_info, check_not_an_input

    model = str(model).strip().lower()
    if model not in MODELS:
        raise UserError(f"unknown model {model!r}: use ours or demucs")
    output_format = str(output_format).strip().lower().lstrip(".")
    if output_format not in _FORMATS:
        raise UserError(f"unknown output format {output_format!r}: use {', '.join(_FORMATS)}")
    if bitrate is not None and output_format != "mp3":
        raise UserError("--bitrate is for --format mp3 (WAV and FLAC are lossless)")
    stems = _check_stems_syntax(stems)
    if demucs_weights is not None and model != "demucs":
        raise UserError("--demucs-weights is for --model demucs; add --model demucs or leave it out")
    _check_filename_template(filename)
    inputs, relative = _expand_inputs([Path(p) for p in inputs], recursive, Path(out_dir))

    # Check every input before the (long) work starts, so a typo in the last one fails at once.
    infos = [audio_info(p) for p in inputs]
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file; give a folder (it is created if needed)")

    if model == "ours":
        separator = _load_ours(net)
        sources = list(separator.config.stems)
    else:
        from noisyneuron.models.demucs_backend import DEFAULT_DEMUCS_MODEL, load_demucs

        separator = load_demucs(demucs_weights or DEFAULT_DEMUCS_MODEL)
        sources = list(separator.sources)
    names = _outputs_for(stems, sources)
    plans: list[dict[str, Path]] = []
    owners: dict[Path, Path] = {}
    for p in inputs:
        targets = {name: out_dir / relative[p] / filename.format(track=p.stem, stem=name, ext=output_format)
                   for name in names}
        for target in targets.values():
            if target in owners and owners[target] != p:
                raise UserError(f"{owners[target]} and {p} would both write {target}; rename one, put {{track}} "
                                f"in --filename or separate them in two runs")
            owners[target] = p
            check_not_an_input(target, inputs)  # no stem may replace an input (this one's, or one not read yet)
        plans.append(targets)
    for folder in sorted({t.parent for t in owners}):  # a folder that cannot be written fails now, not after the work
        _check_writable(folder)

    from noisyneuron.units import speed_words

    written: list[Path] = []
    for path, info, targets in zip(inputs, infos, plans):
        started = time.perf_counter()
        seconds, clipped = _separate_streaming(model, separator, path, info, names, targets, inputs, progress, bitrate)
        written.extend(targets.values())
        elapsed = time.perf_counter() - started
        where = sorted({str(t.parent) for t in targets.values()})
        line = (
            f"{path}: {', '.join(names)} in {', '.join(w + '/' for w in where)} - {seconds:.1f} s of audio in "
            f"{elapsed:.1f} s ({speed_words(seconds, elapsed)}, {model})"
        )
        if clipped:
            line += f"; {clipped} samples clipped to [-1, 1]"
        _print(line)
    return written


#: The default output names: a folder per input, a file per stem (Demucs's layout).
DEFAULT_FILENAME = "{track}/{stem}.{ext}"


def _check_filename_template(template: str) -> None:
    """``--filename``: placeholders {track} (the input's name without extension), {stem} and
    {ext}; it must name the stem (or every stem would go to one file) and stay under --out."""
    import string

    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as error:
        raise UserError(f"--filename {template!r}: {error}; use {{track}}, {{stem}} and {{ext}}") from None
    unknown = fields - {"track", "stem", "ext"}
    if unknown:
        raise UserError(f"--filename {template!r}: unknown {', '.join('{' + f + '}' for f in sorted(unknown))}; "
                        f"use {{track}}, {{stem}} and {{ext}}, e.g. {DEFAULT_FILENAME!r}")
    if "stem" not in fields:
        raise UserError(f"--filename {template!r} has no {{stem}}: every stem would be written to the same file")
    if Path(template).is_absolute() or ".." in Path(template).parts:
        raise UserError(f"--filename {template!r}: give a name inside --out (no leading / and no ..)")


def _expand_inputs(paths: list[Path], recursive: bool, out_dir: Path) -> tuple[list[Path], dict[Path, Path]]:
    """Files as given, folders as the audio files in them (sorted; in subfolders too when
    ``recursive``; never the stems of an earlier run under ``out_dir``). Returns the files and, per file, the subfolder its stems go to (relative to
    the output folder: empty for files given by name)."""
    from noisyneuron.audio.files import READABLE_EXTENSIONS

    files: list[Path] = []
    relative: dict[Path, Path] = {}
    out_root = out_dir.resolve()
    for path in paths:
        if not path.is_dir():
            files.append(path)
            relative[path] = Path()
            continue
        pattern = "**/*" if recursive else "*"
        found = sorted(f for f in path.glob(pattern) if f.is_file() and f.suffix.lower() in READABLE_EXTENSIONS
                       and not any(part.startswith(".") for part in f.relative_to(path).parts)
                       and not f.resolve().is_relative_to(out_root))
        if not found:
            hint = "" if recursive else " (add --recursive to look in its subfolders)"
            raise UserError(f"{path}: no audio files in this folder{hint}")
        for f in found:
            files.append(f)
            relative[f] = f.parent.relative_to(path)
    if not files:
        raise UserError("no input files: give one or more audio files (or folders) to separate")
    return files, relative


def _check_writable(folder: Path) -> None:
    """Create ``folder`` and prove a file can be made in it; a one-line UserError otherwise."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".noisyneuron-write-test-"):
            pass
    except OSError as error:
        raise UserError(f"cannot write stems into {folder} ({error.strerror or error}); choose another --out") from None


#: Frames read from the input per step of the streaming separation (at the model's rate).
_READ_FRAMES = 65536
#: Demucs's pieces and their overlap, seconds (:class:`~noisyneuron.models.demucs_backend.ChunkedDemucs`).
_DEMUCS_PIECE_SECONDS = 60.0
_DEMUCS_OVERLAP_SECONDS = 8.0


def _demucs_run(model, path: Path, rate: int, channels: int):
    """A :class:`~noisyneuron.models.demucs_backend.ChunkedDemucs` for ``path``, normalised by
    the whole file's mono mix (one quick decoding pass first, as Demucs's own CLI normalises)."""
    from noisyneuron.models.demucs_backend import ChunkedDemucs, demucs_normalisation
    from noisyneuron.audio.files import FileSource

    total = total_squares = 0.0
    frames = 0
    block = np.zeros((_READ_FRAMES, channels), dtype=np.float32)
    with FileSource(path, rate, channels, _READ_FRAMES) as source:
        while not source.finished:
            got = source.read_into(block)
            if got == 0:
                break
            ref = block[:got, : min(2, channels)].astype(np.float64).mean(axis=1)
            total += float(ref.sum())
            total_squares += float(np.dot(ref, ref))
            frames += got
    return ChunkedDemucs(model, rate, channels, demucs_normalisation(total, total_squares, frames),
                         piece_seconds=_DEMUCS_PIECE_SECONDS, overlap_seconds=_DEMUCS_OVERLAP_SECONDS)


def _separate_streaming(model: str, separator, path: Path, info, names: list[str], targets: dict[str, Path], inputs,
                        progress: bool, bitrate: int | None = None) -> tuple[float, int]:
    """Separate ``path`` from disk to disk: the file is decoded, separated and written in
    pieces, so memory does not grow with its length. Our model carries its state across pieces
    (:class:`~noisyneuron.models.apply.ChunkedSeparation`) and runs at 44.1 or 48 kHz (other
    rates are resampled to 44.1 kHz and the stems back); Demucs separates overlapping pieces and
    crossfades them (:class:`~noisyneuron.models.demucs_backend.ChunkedDemucs`) at the file's
    rate (it resamples to its own inside). Returns (seconds of audio, samples clipped)."""
    from contextlib import ExitStack

    from noisyneuron.models.apply import ChunkedSeparation
    from noisyneuron.audio.resampling import fit_length
    from noisyneuron.audio.files import FileSink, FileSource

    file_rate, channels = int(info.sample_rate), int(info.channels)
    if model == "ours":
        rate = file_rate if file_rate in _NATIVE_RATES else _FALLBACK_RATE
    else:
        rate = file_rate
    two_stem = _is_pair(names)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=round(info.duration_seconds or 0.0, 1) or None, unit="s", desc="separating", leave=False,
                   bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} s [{elapsed}<{remaining}]")
    with ExitStack() as stack:
        if bar is not None:
            stack.callback(bar.close)
        run = ChunkedSeparation(separator, rate, channels) if model == "ours" else _demucs_run(separator, path, rate, channels)
        source = stack.enter_context(FileSource(path, rate, channels, _READ_FRAMES))
        # the mixture at the file's rate, for mixture - stem (read alongside, frame for frame)
        mixture = stack.enter_context(FileSource(path, file_rate, channels, _READ_FRAMES)) if two_stem else None
        back = None
        if rate != file_rate:
            import soxr

            back = {stem: soxr.ResampleStream(rate, file_rate, channels, dtype="float32", quality="HQ") for stem in run.stems}
        sinks = {name: stack.enter_context(FileSink(target, file_rate, channels, inputs=inputs, bitrate_kbps=bitrate))
                 for name, target in targets.items()}
        written = 0

        def emit(stems: dict[str, np.ndarray], last: bool) -> None:
            nonlocal written
            if back is not None:
                stems = {k: back[k].resample_chunk(v, last=last).reshape(-1, channels) for k, v in stems.items()}
                if last:  # exactly the length the file has at its own rate
                    target = int(round(run.frames_in * file_rate / rate))
                    stems = {k: fit_length(v, max(0, target - written)) for k, v in stems.items()}
            n = len(next(iter(stems.values())))
            if n == 0:
                return
            if two_stem:
                mix = np.zeros((n, channels), dtype=np.float32)
                mixture.read_into(mix)
                out = {names[0]: stems[names[0]], names[1]: mix - stems[names[0]]}
            else:
                out = {name: stems[name] for name in names}
            for name, sink in sinks.items():
                sink.write(np.ascontiguousarray(out[name], dtype=np.float32))
            written += n

        block = np.zeros((_READ_FRAMES, channels), dtype=np.float32)
        while not source.finished:
            got = source.read_into(block)
            if got == 0:
                break
            emit(run.push(block[:got]), last=False)
            if bar is not None:
                bar.update(got / rate)
        if run.frames_in == 0:
            from noisyneuron.audio.files import AudioFileError

            raise AudioFileError(f"{path} holds no audio (0 frames); pick another file")
        emit(run.finish(), last=True)
    clipped = sum(sink.clipped for sink in sinks.values())
    return run.frames_in / rate, clipped


def _is_pair(names: list[str]) -> bool:
    """True for the two-stem outputs (``vocals`` + ``accompaniment``, ``X`` + ``no_X``), whose
    second file is the mixture minus the first."""
    return len(names) == 2 and names[1] in ("accompaniment", f"no_{names[0]}")


# ----- command line -----------------------------------------------------------------------------
def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``noisyneuron separate`` arguments to ``parser``."""
    parser.add_argument("inputs", nargs="+", metavar="IN",
                        help="audio files to separate (WAV, FLAC, OGG, MP3, M4A/AAC, Opus, ALAC...), or folders of them")
    parser.add_argument("--recursive", "-r", action="store_true",
                        help="for folders: their subfolders too (stems go to the same subfolders under --out)")
    parser.add_argument("--out", default="separated", metavar="DIR", help="output folder; stems go to DIR/<input name>/ (default: separated)")
    parser.add_argument(
        "--stems", default="4", metavar="4|2|NAME",
        help="4: vocals, drums, bass, other; 2: vocals + accompaniment; vocals/drums/bass/other: that stem + no_<stem> (default: 4)",
    )
    parser.add_argument("--model", default="ours", metavar="ours|demucs", help="ours (fast, the live separator) or demucs (htdemucs: better, slower) (default: ours)")
    parser.add_argument("--separator-weights", metavar="FILE", help="exported separator weights for --model ours (default: the shipped ones)")
    parser.add_argument("--demucs-weights", metavar="FILE", default=None, help="Demucs model file (.th) or pretrained name, for --model demucs (default: htdemucs from the local cache)")
    parser.add_argument("--format", default="wav", metavar="wav|flac|mp3", dest="format",
                        help="output format: wav and flac 24-bit, mp3 (default: wav)")
    parser.add_argument("--bitrate", type=int, default=None, metavar="KBPS",
                        help="mp3: constant bitrate, kbit/s (64..320, e.g. 192; default: LAME's, about 128)")
    parser.add_argument("--filename", default=DEFAULT_FILENAME, metavar="TEMPLATE",
                        help="where each stem goes under --out: {track} (input name), {stem}, {ext} "
                             "(default: '{track}/{stem}.{ext}'; e.g. '{track} - {stem}.{ext}')")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def cli_main(args: argparse.Namespace) -> int:
    """Run ``noisyneuron separate`` from parsed arguments; returns the exit status (0).
    Raises :class:`UserError` (one line, exit 2) for bad input."""
    separate_files(
        args.inputs,
        args.out,
        stems=args.stems,
        model=args.model,
        demucs_weights=args.demucs_weights,
        progress=not args.quiet,
        output_format=args.format,
        recursive=args.recursive,
        filename=args.filename,
        bitrate=args.bitrate,
    )
    return 0
