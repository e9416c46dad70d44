"""A compact, lossy copy of a built separation set, for moving training data to another machine.

``noisyneuron data pack --data DIR --out DIR --max-mb 56`` copies whole tracks of a split (in a
seeded random order) until the size budget is spent: stems as OGG Vorbis (about 1 MB per 30 s
four-stem track at the default quality, 20-35 dB waveform SNR), no mixture (readers sum the
decoded stems, so mixture = sum of stems stays exact), ``track.json`` marked ``"packed": true``.
Training reads a packed set like any other; evaluation should use the lossless build.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from noisyneuron.audio.atomic import partial_sibling
from noisyneuron.errors import UserError
from noisyneuron.datasets.layout import SEPARATION_RATE, read_manifest, separation_tracks, write_json_atomic, write_manifest

__all__ = ["pack_separation"]


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def pack_separation(data: str | os.PathLike, out: str | os.PathLike, max_mb: float, split: str = "train", quality: float = 0.7, seed: int = 0, skip: int = 0, progress: bool = True) -> dict:
    """Pack tracks of ``split`` from ``data`` into ``out`` until ``max_mb`` megabytes are used.

    Args:
        data: a built separation set.
        out: destination folder (created; must not be inside ``data``).
        max_mb: size budget, megabytes (1e6 bytes), for the whole folder.
        split: which split to pack.
        quality: libsndfile's Vorbis compression level, 0 (best quality) .. 1 (smallest).
        seed: order in which tracks are taken.
        skip: leave out the first ``skip`` tracks of that order (a second pack with the same
            seed and ``skip`` = the first pack's count holds different tracks).
        progress: tqdm bar.

    Returns:
        ``{"tracks": n, "bytes": total, "seconds": audio seconds, "next_skip": skip + n}``.
    """
    from tqdm import tqdm

    manifest = read_manifest(data)
    if manifest.get("kind") != "separation":
        raise UserError(f"{data}: not a separation data set")
    tracks = separation_tracks(data, split)
    if not tracks:
        raise UserError(f"{data}: no {split} tracks to pack")
    order = np.random.default_rng(seed).permutation(len(tracks))[skip:]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    budget = int(max_mb * 1e6)
    used, n, seconds = 0, 0, 0.0
    bar = tqdm(total=budget / 1e6, unit="MB", disable=not progress, desc="packing", bar_format="{l_bar}{bar}| {n:.1f}/{total:.0f} MB")
    for idx in order:
        track = tracks[int(idx)]
        dest = out / track.split / track.id
        tmp = partial_sibling(dest, unique=False)  # a folder, renamed by hand (see write_separation_track)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for stem in track.stems:
            sf.write(tmp / f"{stem}.ogg", track.load(stem), SEPARATION_RATE, format="OGG", subtype="VORBIS", compression_level=quality)
        write_json_atomic(tmp / "track.json", dict(track.meta, packed=True, pack_quality=quality))
        size = _dir_bytes(tmp)
        if used + size > budget - 200_000:  # leave room for the manifest
            shutil.rmtree(tmp)
            break
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
        used += size
        n += 1
        seconds += track.seconds
        bar.update(size / 1e6)
    bar.close()
    build = dict(manifest.get("build", {}), packed_from=str(data), pack={"split": split, "quality": quality, "seed": seed, "skip": skip, "tracks": n})
    write_manifest(out, "separation", build)
    return {"tracks": n, "bytes": used, "seconds": seconds, "next_skip": skip + n}
