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

from noisyneuron import paths
from noisyneuron.audio.atomic import atomic_write_bytes
from noisyneuron.audio.resampling import resample

__all__ = [
    "Recording",
    "music_recordings",
    "fretsonfire_songs",
    "read_excerpt",
    "debian_licence",
    "CURATED_LICENCES",
    "SFX_PACKAGES",
    "sfx_recordings",
    "recording_licence",
    "game_music_recordings",
    "source_cache_dir",
]

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
    # the sounds are src/wav/* (CC-BY-SA-3.0 as a collection; the stanza's "src/wav/*" pattern
    # names the source tree, the package installs them packed in opensfx.cat)
    "openttd-opensfx": "CC-BY-SA-3.0",
    "pingus-data": "GPL-2+",
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
    total = None
    for path in recording.paths:
        with sf.SoundFile(path) as f:
            sr = f.samplerate
            f.seek(min(int(start * sr), max(0, f.frames - 1)))
            data = f.read(int(np.ceil(seconds * sr)) + 1, dtype="float64", always_2d=True)
        if data.shape[1] == 1:
            data = np.repeat(data, 2, axis=1)
        data = data[:, :2]
        data = resample(data, sr, sample_rate, int(round(seconds * sample_rate)))
        total = data if total is None else total + data
    return total


# ----- real sound effects and ambiences (shared/DATA.md, added 2026-12) -------------------------
#: Where each package installs its sound effects and ambiences: folders (walked), a zip archive
#: (``.wz``) or OpenTTD's sound catalogue (``.cat``, RIFF WAVs back to back).
SFX_PACKAGES: dict[str, tuple[str, ...]] = {
    "openttd-opensfx": ("/usr/share/games/openttd/baseset/opensfx/opensfx.cat",),
    "widelands-data": ("/usr/share/games/widelands/data/sound", "/usr/share/games/widelands/data/world/critters"),
    "supertuxkart-data": ("/usr/share/games/supertuxkart/data/sfx",),
    "redeclipse-data": ("/usr/share/games/redeclipse/data/sounds",),
    "warzone2100-data": ("/usr/share/games/warzone2100/base.wz",),
    "megaglest-data": ("/usr/share/games/megaglest/tilesets", "/usr/share/games/megaglest/data/core/water_sounds",
                       "/usr/share/games/megaglest/techs/megapack/commondata/sounds"),
    "freedroidrpg-data": ("/usr/share/freedroidrpg/data/sound/effects",),
    "supertux-data": ("/usr/share/games/supertux2/sounds",),
    "pingus-data": ("/usr/share/games/pingus/data/sounds",),
    "tuxpaint-data": ("/usr/share/tuxpaint/sounds",),
    "tuxfootball": ("/usr/share/games/tuxfootball/sound",),
}
#: Music that these packages ship (the music class; held out with their package).
GAME_MUSIC_DIRS: dict[str, tuple[str, ...]] = {
    "supertuxkart-data": ("/usr/share/games/supertuxkart/data/music",),
    "redeclipse-data": ("/usr/share/games/redeclipse/data/sounds/music",),
    "widelands-data": ("/usr/share/games/widelands/data/music",),
    "megaglest-data": ("/usr/share/games/megaglest/data/core/menu/music", "/usr/share/games/megaglest/techs/megapack/factions"),
    "freedroidrpg-data": ("/usr/share/freedroidrpg/data/sound/music",),
    "supertux-data": ("/usr/share/games/supertux2/music",),
    "xmoto-data": ("/usr/share/games/xmoto/Textures/Musics",),
    "tuxfootball": ("/usr/share/games/tuxfootball/sound",),
}
#: Music files that sit among a package's effects (Red Eclipse's themes, 38-156 s).
GAME_MUSIC_FILES: dict[str, tuple[str, ...]] = {
    "redeclipse-data": tuple(f"/usr/share/games/redeclipse/data/sounds/{n}" for n in ("original.ogg", "theme.ogg", "theme_chip.ogg")),
}
# voices, speech, announcers, musical jingles and stingers: not noise (matched on the lower-case
# path below the package's folder)
_NOT_SFX = re.compile(
    r"music|voice|speech|announcer|taunt|tutorial|comment|talk|countdown|missmesg|cmndrvoc|vtoltalk|memressp|nexus|coltive|"
    r"sequenceaudio|/extra/|jingle|fanfare|song|intro|title|victory|lobby|giggle|ohno|letsgo|yipee|goodidea|areyousure|"
    r"youcannot|tuxok|excellent|welldone|scream|ingame|menu|gnu_flute|_pa\.|static-radio|track_intro|lenautile|harp|grunt|"
    r"ugh\.|wee\.|yeti|mr_tree|tada|savebell|lifeup|invincible|upgrade|gp_end|race_finish|last_lap|start_race|fireworks_show|"
    r"/player/|_ack\d|_select\d|_die\d|_attack\d|_hit\d|good_morning|chatted|snore|wilhelm|ugh|typewriterbell|/interfce/|"
    r"beep|whistle"
)
#: Packages whose effects are only some of their sounds (the rest are voice lines and interface).
_SFX_ONLY = {"warzone2100-data": re.compile(r"^audio/sfx/(building|explons|vehicle|weapons)/")}
_MIN_SFX_SECONDS = 0.25


def recording_licence(package: str, path: str) -> str:
    """The licence of a real recording: :func:`debian_licence`, except for sounds the package
    installs packed in an archive, whose stanza names them by their source-tree path (OpenSFX's
    ``src/wav/*``: CC-BY-SA-3.0, :data:`CURATED_LICENCES`)."""
    if package == "openttd-opensfx":
        return CURATED_LICENCES[package]
    return debian_licence(package, path)


def source_cache_dir() -> Path:
    """Where sounds unpacked from archives are kept (``$NOISYNEURON_SOURCE_CACHE``, else
    ``sources`` in :func:`noisyneuron.paths.cache_dir`): they are decoded once, then read like files."""
    env = os.environ.get("NOISYNEURON_SOURCE_CACHE")
    if env:
        return Path(env)
    return paths.cache_dir() / "sources"


def _write_once(dest: Path, data: bytes) -> str:
    if not dest.is_file() or dest.stat().st_size != len(data):
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, data)  # unique temporary: parallel workers unpack the same archive
    return str(dest)


def _cat_members(path: str) -> list[tuple[str, bytes]]:
    """The WAVs of an OpenTTD sound catalogue, in order: (``"NN.wav"``, bytes)."""
    import struct

    blob = Path(path).read_bytes()
    out = []
    for k, m in enumerate(re.finditer(b"RIFF", blob)):
        size = struct.unpack("<I", blob[m.start() + 4 : m.start() + 8])[0]
        if blob[m.start() + 8 : m.start() + 12] == b"WAVE":
            out.append((f"{k:02d}.wav", blob[m.start() : m.start() + 8 + size]))
    return out


def _archive_files(package: str, path: str) -> list[tuple[str, str]]:
    """(name inside the archive, unpacked file) for every sound of an archive, unpacked once."""
    base = source_cache_dir() / package / Path(path).name
    if path.endswith(".cat"):
        return [(name, _write_once(base / name, data)) for name, data in _cat_members(path)]
    import zipfile

    out = []
    with zipfile.ZipFile(path) as z:
        for name in sorted(z.namelist()):
            only = _SFX_ONLY.get(package)
            if name.lower().endswith(_EXTENSIONS) and not _NOT_SFX.search("/" + name.lower()) and (only is None or only.search(name)):
                out.append((name, _write_once(base / name, z.read(name))))
    return out


def _duration(path: str) -> float | None:
    try:
        return float(sf.info(path).duration)
    except (RuntimeError, sf.LibsndfileError):
        return None


@functools.lru_cache(maxsize=1)
def sfx_recordings() -> tuple[Recording, ...]:
    """Every installed real sound effect or ambience of :data:`SFX_PACKAGES` (at least 0.25 s;
    voices, speech, music and jingles left out by name), sorted by id
    (``"<package>:<path below its folder>"``)."""
    found = []
    for package, places in SFX_PACKAGES.items():
        for place in places:
            if not os.path.exists(place):
                continue
            if os.path.isfile(place):
                members = _archive_files(package, place)
                items = [(f"{Path(place).name}/{name}", file) for name, file in members]
            else:
                items = []
                for root, _, files in os.walk(place):
                    for name in sorted(files):
                        full = os.path.join(root, name)
                        rel = os.path.relpath(full, place)
                        if name.lower().endswith(_EXTENSIONS) and not _NOT_SFX.search("/" + rel.lower()):
                            items.append((f"{Path(place).name}/{rel}", full))
            music = set(GAME_MUSIC_FILES.get(package, ()))
            for rel, file in items:
                if file in music:
                    continue
                seconds = _duration(file)
                if seconds is not None and seconds >= _MIN_SFX_SECONDS:
                    found.append(Recording(f"{package}:{rel}", package, (file,), seconds))
    return tuple(sorted(found, key=lambda r: r.id))


@functools.lru_cache(maxsize=1)
def game_music_recordings() -> tuple[Recording, ...]:
    """The music of the sound-effect packages (:data:`GAME_MUSIC_DIRS`), at least 30 s, sorted by id.
    Kept apart from :func:`music_recordings`: the separation builders do not use these."""
    found = []
    for package, places in GAME_MUSIC_DIRS.items():
        for place in places:
            if not os.path.isdir(place):
                continue
            for root, _, files in os.walk(place):
                for name in sorted(files):
                    full = os.path.join(root, name)
                    if not name.lower().endswith(_EXTENSIONS) or (package == "megaglest-data" and "/music" not in full):
                        continue
                    seconds = _duration(full)
                    if seconds is not None and seconds >= _MIN_MUSIC_SECONDS:
                        found.append(Recording(f"{package}:{Path(place).name}/{os.path.relpath(full, place)}", package, (full,), seconds))
    for package, files in GAME_MUSIC_FILES.items():
        for full in files:
            seconds = _duration(full) if os.path.isfile(full) else None
            if seconds is not None and seconds >= _MIN_MUSIC_SECONDS:
                found.append(Recording(f"{package}:{Path(full).parent.name}/{Path(full).name}", package, (full,), seconds))
    return tuple(sorted(found, key=lambda r: r.id))
