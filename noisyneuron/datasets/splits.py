"""Splits by source: every score, song, voice or recording belongs to exactly one split.

A source's split depends only on its identifier (a stable hash), never on the build seed or the
build size, so two builds never put the same source in different splits and a test split stays
held out across every build. :data:`SPLIT_OVERRIDES` pins the few sources that must be held out
whatever their hash says, and :data:`PACKAGE_SPLITS` holds whole packages out.

Real voices are split by speaker (``"tuxpaint-stamps-default:ro"``: the Romanian readers), never
by clip, so no voice is heard in two splits.
"""

from __future__ import annotations

import hashlib

__all__ = ["SPLITS", "SPLIT_FRACTIONS", "SPLIT_OVERRIDES", "PACKAGE_SPLITS", "split_at", "split_of"]

#: Split names, in order.
SPLITS = ("train", "valid", "test")
#: Fraction of sources in each split.
SPLIT_FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}


#: Sources whose split is fixed by hand. The four Frets on Fire songs are the only real
#: multitrack recordings allowed; their hashes all fall in train, so two of them are held out for
#: the real-stem evaluation of the separator.
SPLIT_OVERRIDES = {
    "fretsonfire-songs-sectoid:Feelings": "test",
    "fretsonfire-songs-sectoid:War of freedom": "test",
    # real voices, split by speaker (a language's clips in these packages are one speaker or a
    # small group of them): whole speakers are held out for the real-world evaluation
    "tuxpaint-stamps-default:ro": "test",
    "tuxpaint-stamps-default:el": "test",
    "tuxpaint-stamps-default:bg": "valid",
    # the other large Tux Paint speakers train (their hashes would hold out four of the nine)
    "tuxpaint-stamps-default:ru": "train",
    "tuxpaint-stamps-default:be": "train",
    "tuxpaint-stamps-default:da": "train",
    "tuxpaint-stamps-default:en": "train",
    "klettres-data:it": "test",
    "klettres-data:uk": "test",
    "klettres-data:hu": "valid",
}

#: Packages held out whole: every source whose id starts with ``"<package>:"`` is in this split,
#: so the real-world evaluation hears accompaniments, voices and singing from packages that
#: training never touched (not just other clips of a package it did).
PACKAGE_SPLITS = {
    "wesnoth-1.16-music": "test",  # real orchestral / folk recordings: real-world test accompaniments
    "extremetuxracer-data": "valid",  # real recordings: real-world validation accompaniments
    "festvox-ru": "test",  # one real male speaker (unit-selection recordings)
    "scratch": "test",  # real isolated singing: the only real singing here
    "musescore-general-soundfont": "test",  # sampled real choir and voice patches
    # real sound effects, ambiences and game music (the classifier's held-out-source evaluation):
    # every other such package trains, whole
    "redeclipse-data": "test",  # ambience loops (wind, water, fire, machines), effects, music
    "supertux-data": "test",  # rain, thunder, waterfall, lava, effects; music
    "xmoto-data": "test",  # music
    "freedroidrpg-data": "valid",  # effects, music
}


def split_of(source_id: str) -> str:
    """The split that the source ``source_id`` (e.g. ``"music21:bach/bwv66.6"``) belongs to."""
    if source_id in SPLIT_OVERRIDES:
        return SPLIT_OVERRIDES[source_id]
    package = source_id.split(":", 1)[0]
    if package in PACKAGE_SPLITS:
        return PACKAGE_SPLITS[package]
    digest = hashlib.sha256(source_id.encode("utf-8")).digest()
    return split_at(int.from_bytes(digest[:8], "big") / 2.0**64)


def split_at(u: float) -> str:
    """The split a point ``u`` in [0, 1) falls in, the splits laid end to end by
    :data:`SPLIT_FRACTIONS` (train first)."""
    edge = 0.0
    for name in SPLITS:
        edge += SPLIT_FRACTIONS[name]
        if u < edge:
            return name
    return SPLITS[-1]
