"""The check that no voice, speaker or recording is heard in two splits, across data sets.

Every built track lists its sources in ``track.json``. The units a split must keep to itself are
the **speakers** of real voices (``"speaker"``, e.g. ``"tuxpaint-stamps-default:ro"``) and every
other **recording** and **score** (``"id"``). Generators (synthesisers, vocoders, sound fonts,
drum kits) are tools, not sources: the synthetic splits share them, and the real-world set uses
none (:func:`generator_sources` finds any that slipped in).

``noisyneuron eval separation`` runs :func:`split_leaks` over the training data and the
real-world set before it reports, and the tests run it on small builds.

Classification sets (:func:`classification_leaks`) are held out by **package**: a real package
(music, effects, ambiences) is in one split, whole, so its unit is the package; real voices are
held out by **speaker**; a generator instance or a TTS voice + sentence is its own unit.
``noisyneuron eval classifier`` runs it over the evaluated set (and ``--train-data``) and
reports what it finds.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["source_units", "split_leaks", "generator_sources", "GENERATOR_KINDS", "classification_units", "classification_leaks"]

#: Source kinds that make sound rather than being recorded sound.
GENERATOR_KINDS = ("singing-voice", "tts-engine", "tts-voice", "vocoder", "soundfont", "generated")
_UNIT_KINDS = ("recording", "score")


def source_units(meta: dict) -> set[str]:
    """The units of one track's metadata that a split must hold alone (speakers, recordings, scores)."""
    units = set()
    for src in meta.get("sources", []):
        if src.get("kind") in _UNIT_KINDS:
            units.add(src.get("speaker") or src["id"])
    return units


def classification_units(meta: dict) -> set[str]:
    """The units of one classification clip that a split must hold alone: ``"speaker <id>"`` for a
    real voice, ``"package <name>"`` for any other recording (music, effects, ambiences, held out
    whole), ``"source <id>"`` for a generator or TTS source."""
    units = set()
    for src in meta.get("sources", []):
        if src.get("speaker"):
            units.add(f"speaker {src['speaker']}")
        elif src.get("kind") in ("recording", "ambience", "music"):
            units.add(f"package {src['package']}")
        else:
            units.add(f"source {src['id']}")
    return units


def _leaks(items) -> list[str]:
    where: dict[str, set[str]] = {}
    example: dict[tuple[str, str], str] = {}
    for place, split, units in items:
        for unit in units:
            where.setdefault(unit, set()).add(split)
            example.setdefault((unit, split), place)
    leaks = []
    for unit, splits in sorted(where.items()):
        if len(splits) > 1:
            places = ", ".join(example[(unit, s)] for s in sorted(splits))
            leaks.append(f"{unit} is in splits {', '.join(sorted(splits))} ({places})")
    return leaks


def classification_leaks(roots: list[str | os.PathLike]) -> list[str]:
    """Speakers, packages and sources heard in more than one split over the classification sets at
    ``roots`` (one line each, empty when there are none); splits are named as in :func:`split_leaks`."""
    from noisyneuron.datasets.layout import classification_clips

    def items():
        for root in roots:
            for clip in classification_clips(Path(root)):
                yield f"{root}/{clip.split}/{clip.label}/{clip.id}", clip.split, classification_units(clip.meta)

    return _leaks(items())


def _tracks(root: Path):
    from noisyneuron.datasets.layout import separation_tracks

    return separation_tracks(root)


def split_leaks(roots: list[str | os.PathLike]) -> list[str]:
    """Units heard in more than one split over the data sets at ``roots`` (one line each, empty
    when there are none). A split is named by its name alone, so ``train`` of one data set and
    ``test`` of another are different splits, and ``test`` of two data sets is one."""
    return _leaks((f"{root}/{t.split}/{t.id}", t.split, source_units(t.meta)) for root in roots for t in _tracks(Path(root)))


def generator_sources(root: str | os.PathLike) -> list[str]:
    """Tracks of a data set that use a generator (``"track: kind id"`` lines; empty when none)."""
    out = []
    for track in _tracks(Path(root)):
        for src in track.meta.get("sources", []):
            if src.get("kind") in GENERATOR_KINDS:
                out.append(f"{track.split}/{track.id}: {src['kind']} {src.get('id')}")
    return out
