"""The real recordings training may use (``shared/DATA.md``), found where their packages install them.

Each :class:`Recording` has a stable ``id`` (package and path, e.g.
``"wesnoth-1.16-music:battle.ogg"``) that decides its split (:func:`~.splits.split_of`), the
package it comes from and that package's licence, so a manifest can credit every source.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["Recording", "music_recordings", "fretsonfire_songs", "read_excerpt", "debian_licence", "CURATED_LICENCES"]

# ----- licences ---------------------------------------------------------------------------------
# packages whose copyright file is not machine-readable (DEP-5), read by hand from
# /usr/share/doc/<pkg>/copyright
CURATED_LICENCES = {
    "wesnoth-1.16-music": "GPL-2+",
    "fretsonfire-songs-sectoid": "Expat",
    "espeak-ng": "GPL-3+",
    "flite": "BSD-style (CMU Flite licence)",
    "festival": "BSD-style (CSTR Festival licence)",
    "festvox-kallpc16k": "BSD-style (CSTR / CMU)",
    "immich-memories-music": "MIT",
    "noisyneuron": "MIT",
}


@functools.lru_cache(maxsize=None)
def _dep5_stanzas(package: str) -> tuple[tuple[tuple[str, ...], str], ...]:
    path = Path("/usr/share/doc") / package / "copyright"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ()
    if not text.startswith("Format:"):
        return ()
    stanzas = []
    for para in re.split(r"\n\s*\n", text):
        files: list[str] = []
        licence = None
        field = None
        for line in para.splitlines():
            if line.startswith((" ", "\t")):
                if field == "Files":
                    files += line.split()
                continue
            key, _, value = line.partition(":")
            field = key.strip()
            if field == "Files":
                files += value.split()
            elif field == "License" and licence is None:
                licence = value.strip()
        if files and licence:
            stanzas.append((tuple(files), licence))
    return tuple(stanzas)


def _pattern_matches(pattern: str, path: str) -> bool:
    if pattern == "*":
        return True
    parts = pattern.split("/")
    if parts[-1] in ("*", ""):
        return False  # "debian/*" and the like: never the installed data files
    path_parts = path.split("/")
    for k in range(len(parts)):  # try the pattern's tails against the path's tail
        tail = parts[k:]
        if len(tail) <= len(path_parts) and fnmatch.fnmatch("/".join(path_parts[-len(tail):]), "/".join(tail)):
            return True
    return False


@functools.lru_cache(maxsize=None)
def debian_licence(package: str, path: str = "") -> str:
    """Licence of an installed Debian package's file, from ``/usr/share/doc/<package>/copyright``.

    Machine-readable (DEP-5) files: the last ``Files:`` stanza whose pattern matches the tail of
    ``path`` (``*`` for any). Others: a licence read from the file by hand. ``"unknown (see
    /usr/share/doc/<package>/copyright)"`` when neither gives one.
    """
    best = None
    for files, licence in _dep5_stanzas(package):
        if any(_pattern_matches(p, path) for p in files):
            best = licence
    if best:
        return best
    return CURATED_LICENCES.get(package, f"unknown (see /usr/share/doc/{package}/copyright)")



_MUSIC_DIRS = {
    "warzone2100-music": "/usr/share/games/warzone2100/music",
    "wesnoth-1.16-music": "/usr/share/games/wesnoth/1.16/data/core/music",
    "frozen-bubble-data": "/usr/share/games/frozen-bubble/snd",
    "extremetuxracer-data": "/usr/share/games/etr/music",
}
_FOF_DIR = "/usr/share/games/fretsonfire/data/songs/sectoid"
_EXTENSIONS = (".ogg", ".opus", ".mp3", ".flac", ".wav")
_MIN_MUSIC_SECONDS = 30.0  # shorter files in these packages are jingles and sound effects


@dataclass(frozen=True)
class Recording:
    """A real recording. ``paths`` has one file, or several that play together (stems)."""

    id: str
    package: str
    paths: tuple[str, ...]
    seconds: float

    @property
    def licence(self) -> str:
        if self.package in ("immich-memories-music",):
            return CURATED_LICENCES[self.package]
        return debian_licence(self.package, self.paths[0])

    def source(self) -> dict:
        """The manifest entry crediting this recording."""
        return {"kind": "recording", "id": self.id, "package": self.package, "licence": self.licence}


def _immich_dir() -> Path | None:
    try:
        import importlib.util

        spec = importlib.util.find_spec("immich_memories_music")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@functools.lru_cache(maxsize=1)
def music_recordings() -> tuple[Recording, ...]:
    """Every installed piece of allowed real music at least 30 s long, sorted by id."""
    found = []
    dirs = dict(_MUSIC_DIRS)
    immich = _immich_dir()
    if immich is not None:
        dirs["immich-memories-music"] = str(immich)
    for package, base in dirs.items():
        if not os.path.isdir(base):
            continue
        for root, _, files in os.walk(base):
            for name in sorted(files):
                if not name.lower().endswith(_EXTENSIONS):
                    continue
                path = os.path.join(root, name)
                try:
                    seconds = sf.info(path).duration
                except (RuntimeError, sf.LibsndfileError):
                    continue
                if seconds >= _MIN_MUSIC_SECONDS:
                    found.append(Recording(f"{package}:{os.path.relpath(path, base)}", package, (path,), float(seconds)))
    return tuple(sorted(found, key=lambda r: r.id))


@functools.lru_cache(maxsize=1)
def fretsonfire_songs() -> tuple[Recording, ...]:
    """Frets on Fire songs: ``guitar.ogg`` and the backing ``song.ogg`` (plus any other .ogg) per song."""
    found = []
    if os.path.isdir(_FOF_DIR):
        for song in sorted(os.listdir(_FOF_DIR)):
            d = os.path.join(_FOF_DIR, song)
            oggs = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".ogg")) if os.path.isdir(d) else []
            if oggs:
                seconds = min(sf.info(p).duration for p in oggs)
                found.append(Recording(f"fretsonfire-songs-sectoid:{song}", "fretsonfire-songs-sectoid", tuple(oggs), float(seconds)))
    return tuple(found)


def read_excerpt(recording: Recording, start: float, seconds: float, sample_rate: int = 44100) -> np.ndarray:
    """``seconds`` of the recording from ``start`` (seconds), all its files summed, stereo float64
    at ``sample_rate`` Hz, shape (round(seconds * sample_rate), 2); zero-padded past the end."""
    import soxr

    total = None
    for path in recording.paths:
        with sf.SoundFile(path) as f:
            sr = f.samplerate
            f.seek(min(int(start * sr), max(0, f.frames - 1)))
            data = f.read(int(np.ceil(seconds * sr)) + 1, dtype="float64", always_2d=True)
        if data.shape[1] == 1:
            data = np.repeat(data, 2, axis=1)
        data = data[:, :2]
        if sr != sample_rate and len(data):
            data = soxr.resample(data, sr, sample_rate, quality="HQ")
        frames = int(round(seconds * sample_rate))
        data = data[:frames] if len(data) >= frames else np.pad(data, ((0, frames - len(data)), (0, 0)))
        total = data if total is None else total + data
    return total
