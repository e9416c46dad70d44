"""Splits by source: every score, song, voice or recording belongs to exactly one split.

A source's split depends only on its identifier (a stable hash), never on the build seed or the
build size, so two builds never put the same source in different splits and a test split stays
held out across every build. :data:`SPLIT_OVERRIDES` pins the few sources that must be held out
whatever their hash says.
"""

from __future__ import annotations

import hashlib

__all__ = ["SPLITS", "SPLIT_FRACTIONS", "SPLIT_OVERRIDES", "split_of"]

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
}


def split_of(source_id: str) -> str:
    """The split that the source ``source_id`` (e.g. ``"music21:bach/bwv66.6"``) belongs to."""
    if source_id in SPLIT_OVERRIDES:
        return SPLIT_OVERRIDES[source_id]
    digest = hashlib.sha256(source_id.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    edge = 0.0
    for name in SPLITS:
        edge += SPLIT_FRACTIONS[name]
        if u < edge:
            return name
    return SPLITS[-1]
