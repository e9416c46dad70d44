"""Real recorded voices, grouped by speaker: the unit a split holds out (``shared/DATA.md``).

A :class:`VoiceSource` is one speaker or one small group of speakers that cannot be told apart
(the readers of one language in a package), with all of their clips. Its split comes from its
id alone (:func:`~.splits.split_of`), so a voice is never heard in two splits: training sings
with the train speakers, the real-world evaluation with speakers and packages it never heard.

Sources:

- ``tuxpaint-stamps-default:<lang>``: read descriptions and names of Tux Paint's stamps
  (about 7,400 phrases, 13 languages, 44.1 kHz, GPL-2);
- ``klettres-data:<lang>``: letters and syllables in 20 languages (GPL-2+);
- ``festvox-ru:msu_ru_nsh``: one male Russian speaker, unit-selection recordings (16 kHz);
- ``scratch:Vocals``: Scratch's real isolated singing (12 short files, CC-BY-SA-3.0), ``kind``
  ``"singing"``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from .splits import split_of

__all__ = ["VoiceSource", "voice_sources", "all_voice_sources"]

_TUXPAINT_DIR = Path("/usr/share/tuxpaint/stamps")
_KLETTRES_DIR = Path("/usr/share/klettres")
_FESTVOX_RU_DIR = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav")
_SCRATCH_VOCALS_DIR = Path("/usr/share/scratch/Media/Sounds/Vocals")
# Tux Paint voice files: <stamp>_desc_<lang>.ogg (a description) or <stamp>_<lang>.ogg (its name)
_TUXPAINT_LANG = re.compile(r"_(?:desc_)?([a-z]{2}(?:_[A-Z]{2})?)\.ogg$")
_MIN_CLIPS = 5  # fewer clips than this are not worth a speaker of their own

_LICENCES = {
    "tuxpaint-stamps-default": "GPL-2 (Tux Paint stamps; volunteer recordings of human voices)",
    "klettres-data": "GPL-2+ (klettres-data, KDE Edu; recordings of human voices)",
    "festvox-ru": "BSD-style (festvox-ru, msu_ru_nsh recordings)",
    "scratch": "CC-BY-SA-3.0 (Scratch media library)",
}


@dataclass(frozen=True)
class VoiceSource:
    """One speaker (or group of indistinguishable speakers) and every clip of theirs.

    Attributes:
        id: ``"<package>:<speaker>"``; decides the split.
        package: the Debian package the clips come from.
        kind: ``"speech"`` or ``"singing"``.
        clips: absolute paths of the audio files, sorted.
    """

    id: str
    package: str
    kind: str
    clips: tuple[str, ...]

    @property
    def split(self) -> str:
        return split_of(self.id)

    @property
    def licence(self) -> str:
        return _LICENCES[self.package]

    def source(self, clip: str) -> dict:
        """The manifest entry crediting one clip of this voice."""
        return {"kind": "recording", "id": f"{self.id}/{Path(clip).name}", "speaker": self.id, "package": self.package, "licence": self.licence}


def _grouped(package: str, kind: str, paths: list[Path], speaker_of) -> list[VoiceSource]:
    groups: dict[str, list[str]] = {}
    for p in paths:
        speaker = speaker_of(p)
        if speaker:
            groups.setdefault(speaker, []).append(str(p))
    return [VoiceSource(f"{package}:{s}", package, kind, tuple(sorted(c))) for s, c in sorted(groups.items()) if len(c) >= _MIN_CLIPS]


@functools.lru_cache(maxsize=1)
def all_voice_sources() -> tuple[VoiceSource, ...]:
    """Every installed real voice, sorted by id (empty where none of the packages is installed)."""
    found: list[VoiceSource] = []
    if _TUXPAINT_DIR.is_dir():
        def lang(p: Path) -> str | None:
            m = _TUXPAINT_LANG.search(p.name)
            return m.group(1).split("_")[0] if m else None

        found += _grouped("tuxpaint-stamps-default", "speech", sorted(_TUXPAINT_DIR.rglob("*.ogg")), lang)
    if _KLETTRES_DIR.is_dir():
        found += _grouped("klettres-data", "speech", sorted(_KLETTRES_DIR.rglob("*.ogg")), lambda p: p.relative_to(_KLETTRES_DIR).parts[0])
    if _FESTVOX_RU_DIR.is_dir():
        found += _grouped("festvox-ru", "speech", sorted(_FESTVOX_RU_DIR.glob("*.wav")), lambda p: "msu_ru_nsh")
    if _SCRATCH_VOCALS_DIR.is_dir():
        files = sorted(p for p in _SCRATCH_VOCALS_DIR.iterdir() if p.suffix.lower() in (".wav", ".mp3") and not p.name.lower().startswith("beatbox"))
        found += _grouped("scratch", "singing", files, lambda p: "Vocals")
    return tuple(sorted(found, key=lambda v: v.id))


def voice_sources(split: str, package: str | None = None, kind: str | None = None) -> list[VoiceSource]:
    """The installed voices of ``split`` (optionally of one ``package`` and one ``kind``)."""
    return [
        v for v in all_voice_sources()
        if v.split == split and (package is None or v.package == package) and (kind is None or v.kind == kind)
    ]
