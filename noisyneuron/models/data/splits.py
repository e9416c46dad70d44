"""Splits by source: every score, song, voice or recording belongs to exactly one split.

A source's split depends only on its identifier (a stable hash), never on the build seed or the
build size, so two builds never put the same source in different splits and a test split stays
held out across every build.
"""

from __future__ import annotations

import hashlib

__all__ = ["SPLITS", "SPLIT_FRACTIONS", "split_of"]

#: Split names, in order.
SPLITS = ("train", "valid", "test")
#: Fraction of sources in each split.
SPLIT_FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}


def split_of(source_id: str) -> str:
    """The split that the source ``source_id`` (e.g. ``"music21:bach/bwv66.6"``) belongs to."""
    digest = hashlib.sha256(source_id.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    edge = 0.0
    for name in SPLITS:
        edge += SPLIT_FRACTIONS[name]
        if u < edge:
            return name
    return SPLITS[-1]
