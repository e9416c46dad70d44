"""Scores from music21's corpus, as compact note lists for rendering accompaniments.

A score is named ``"music21:<corpus path without extension>"`` (``"music21:bach/bwv66.6"``),
with ``"#<number>"`` for one tune of a multi-tune ABC file (``"music21:oneills1850/0001-0050#3"``).

Parsing with music21 is slow (0.05 s to several seconds a piece), so :func:`load_score` keeps each
parsed score as a small JSON note list under ``cache_dir``, and :func:`list_score_ids` keeps the
list of usable pieces (made once from music21's metadata cache, about 30 s) there too. music21 is
imported lazily, only when a cache misses.

Only corpus folders whose pieces are public domain are listed by default; the Essen folksong
collection (non-commercial permission only) needs ``include_restricted=True``.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from noisyneuron import paths
from noisyneuron.audio.atomic import atomic_write_text

__all__ = [
    "ScoreNote",
    "ScoreParts",
    "CORPUS_LICENCES",
    "list_score_ids",
    "load_score",
    "score_licence",
]

_PREFIX = "music21:"
_CACHE_VERSION = 1
_PD = "public domain composition; encoding distributed with the music21 corpus (music21/corpus/license.txt)"
#: Corpus folders used, and the licence each one's pieces come under.
CORPUS_LICENCES: dict[str, str] = {
    "bach": _PD,
    "palestrina": _PD,
    "monteverdi": _PD,
    "beethoven": _PD,
    "mozart": _PD,
    "haydn": _PD,
    "josquin": _PD,
    "trecento": _PD,
    "ciconia": _PD,
    "luca": _PD,
    "lusitano": _PD,
    "corelli": _PD,
    "cpebach": _PD,
    "handel": _PD,
    "schubert": _PD,
    "schumann_clara": _PD,
    "schumann_robert": _PD,
    "verdi": _PD,
    "weber": _PD,
    "chopin": _PD,
    "oneills1850": "public domain (O'Neill's Music of Ireland, 1850 tunes, 1903); ABC encoding in the music21 corpus",
    "ryansMammoth": "public domain (Ryan's Mammoth Collection, 1883); ABC encoding in the music21 corpus",
    "airdsAirs": "public domain (Aird's Selection of Scotch, English, Irish and Foreign Airs, 1782-1803); ABC encoding in the music21 corpus",
}
#: Folders whose licence restricts use (non-commercial): listed only on request.
RESTRICTED_LICENCES: dict[str, str] = {
    "essenFolksong": "Essen Folksong Collection: permission for non-commercial use and distribution with music21 (music21/corpus/essenFolksong/license.txt)",
}
_MIN_MELODY_NOTES = 16  # a one-part piece needs at least this many notes to carry a song
_MIN_PART_NOTES = 32  # several parts: at least this many notes in all
_MAX_PARTS = 8  # bigger scores (cantatas with orchestra) parse slowly and rarely suit a song


@dataclass(frozen=True)
class ScoreNote:
    """One note of a part.

    Attributes:
        start: onset, quarter lengths from the first full bar's downbeat (a pickup starts before
            the first bar: the whole score is shifted so bar lines fall on multiples of the bar).
        duration: length, quarter lengths (ties merged).
        pitch: MIDI note number.
        velocity: MIDI velocity 1..127 (from the score's dynamics where it has any, else 80).
    """

    start: float
    duration: float
    pitch: int
    velocity: int


@dataclass
class ScoreParts:
    """A parsed score.

    Attributes:
        score_id: ``"music21:..."``.
        parts: the notes of each part, sorted by onset; parts ordered by mean pitch, top voice
            first (so ``parts[0]`` is the tune and ``parts[-1]`` the bass of a polyphonic piece).
        length_quarters: the score's length in quarter lengths, rounded up to whole bars.
        time_signature: (numerator, denominator) of the first time signature, (4, 4) if none.
        licence: the licence the piece comes under.
    """

    score_id: str
    parts: list[list[ScoreNote]]
    length_quarters: float
    time_signature: tuple[int, int]
    licence: str
    meta: dict = field(default_factory=dict)

    @property
    def bar_quarters(self) -> float:
        """Length of one bar, quarter lengths."""
        num, den = self.time_signature
        return num * 4.0 / den


def _music21():
    try:
        import music21
    except ImportError:
        from noisyneuron.errors import UserError

        raise UserError("music21 is not installed; run scripts/install-data-tools.sh") from None
    return music21


@functools.lru_cache(maxsize=1)
def _music21_version() -> str:
    """The installed music21's version ("none" when missing): part of the cache keys."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("music21")
    except PackageNotFoundError:
        return "none"


def _folder(score_id: str) -> str:
    return score_id[len(_PREFIX) :].split("/", 1)[0]


def score_licence(score_id: str) -> str:
    """The licence of the piece ``score_id`` (from its corpus folder)."""
    folder = _folder(score_id)
    return CORPUS_LICENCES.get(folder) or RESTRICTED_LICENCES.get(folder) or "see music21/corpus/license.txt"


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, separators=(",", ":")))


def _read_json(path: Path) -> object | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def list_score_ids(cache_dir: Path | None = None, include_restricted: bool = False) -> list[str]:
    """Every usable corpus piece, sorted: two or more parts (at most 8) with 32+ notes, or one
    part with 16+ notes.

    Made from music21's metadata cache (about 30 s the first time), then read from
    ``cache_dir/scores/index-v1-music21-<version>.json``. ``include_restricted`` adds the Essen folksongs
    (non-commercial permission only, see :data:`RESTRICTED_LICENCES`).
    """
    cache = Path(cache_dir) if cache_dir is not None else paths.cache_dir()
    path = cache / "scores" / f"index-v{_CACHE_VERSION}-music21-{_music21_version()}.json"
    index = _read_json(path)
    if not isinstance(index, dict) or "ids" not in index:
        index = {"ids": _scan_corpus()}
        try:
            _write_json(path, index)
        except OSError:
            pass  # a read-only cache: work without it
    folders = set(CORPUS_LICENCES) | (set(RESTRICTED_LICENCES) if include_restricted else set())
    return [sid for sid in index["ids"] if _folder(sid) in folders]


def _scan_corpus() -> list[str]:
    """Usable pieces of every known folder (restricted ones included), from music21's metadata."""
    m21 = _music21()
    bundle = m21.corpus.corpora.CoreCorpus().metadataBundle
    bundle.read()
    folders = set(CORPUS_LICENCES) | set(RESTRICTED_LICENCES)
    ids = set()
    for entry in bundle:
        rel = str(entry.sourcePath).replace(os.sep, "/")
        folder = rel.split("/", 1)[0]
        if folder not in folders or rel.rsplit(".", 1)[-1] not in ("mxl", "xml", "musicxml", "krn", "abc", "mid"):
            continue
        md = entry.metadata
        parts = int(getattr(md, "numberOfParts", 0) or 0)
        notes = int(getattr(md, "noteCount", 0) or 0)
        if not (1 <= parts <= _MAX_PARTS):
            continue
        if (parts == 1 and notes < _MIN_MELODY_NOTES) or (parts >= 2 and notes < _MIN_PART_NOTES):
            continue
        sid = _PREFIX + rel.rsplit(".", 1)[0]
        if entry.number is not None and rel.endswith(".abc"):
            sid += f"#{entry.number}"
        ids.add(sid)
    return sorted(ids)


def _cache_path(cache: Path, score_id: str) -> Path:
    name = score_id[len(_PREFIX) :].replace("/", "__").replace("#", "--").replace(" ", "_")
    return cache / "scores" / f"v{_CACHE_VERSION}-music21-{_music21_version()}" / f"{name}.json"


def load_score(score_id: str, cache_dir: Path | None = None) -> ScoreParts:
    """The notes of ``score_id``, parsed with music21 once and then read from the JSON cache.

    ``cache_dir`` None uses :func:`noisyneuron.paths.cache_dir`. Raises :class:`~noisyneuron.errors.UserError`
    when music21 is needed but not installed, ``ValueError`` for an id that is not ``music21:...``.
    """
    if not score_id.startswith(_PREFIX):
        raise ValueError(f"not a music21 score id: {score_id!r}")
    cache = Path(cache_dir) if cache_dir is not None else paths.cache_dir()
    path = _cache_path(cache, score_id)
    data = _read_json(path)
    if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION:
        data = _parse(score_id)
        try:
            _write_json(path, data)
        except OSError:
            pass
    return ScoreParts(
        score_id=score_id,
        parts=[[ScoreNote(float(s), float(d), int(p), int(v)) for s, d, p, v in part] for part in data["parts"]],
        length_quarters=float(data["length_quarters"]),
        time_signature=(int(data["time_signature"][0]), int(data["time_signature"][1])),
        licence=score_licence(score_id),
        meta={"title": data.get("title", "")},
    )


def _parse(score_id: str) -> dict:
    """Parse one piece with music21 into the cache's JSON form."""
    m21 = _music21()
    rel = score_id[len(_PREFIX) :]
    number = None
    if "#" in rel:
        rel, num = rel.split("#", 1)
        number = int(num)
    with warnings.catch_warnings():  # music21 warns about overfull measures and the like
        warnings.simplefilter("ignore")
        score = m21.corpus.parse(rel, number=number) if number is not None else m21.corpus.parse(rel)
    if isinstance(score, m21.stream.Opus):
        score = score.scores[0]
    ts = score.recurse().getElementsByClass(m21.meter.TimeSignature).first()
    time_signature = (int(ts.numerator), int(ts.denominator)) if ts is not None else (4, 4)
    bar = time_signature[0] * 4.0 / time_signature[1]
    # a pickup bar: shift everything so that bar lines fall on multiples of the bar length
    shift = 0.0
    first_measure = score.parts[0].getElementsByClass(m21.stream.Measure).first() if len(score.parts) else None
    if first_measure is not None:
        pad = float(first_measure.paddingLeft or 0.0)
        if 0.0 < pad < bar:
            shift = pad
    parts = []
    for part in score.parts:
        notes = _part_notes(m21, part, shift)
        if notes:
            parts.append(notes)
    if not parts:
        raise ValueError(f"{score_id}: the score has no notes")
    # top voice first: order parts by mean pitch, highest first (stable for equal means)
    parts.sort(key=lambda ns: -sum(n[2] for n in ns) / len(ns))
    end = max(n[0] + n[1] for ns in parts for n in ns)
    length = max(bar, float(int(-(-round(end, 6) // bar))) * bar)
    title = ""
    if score.metadata is not None:
        title = str(score.metadata.title or "")
    return {
        "version": _CACHE_VERSION,
        "score_id": score_id,
        "title": title,
        "time_signature": list(time_signature),
        "length_quarters": length,
        "parts": parts,
    }


def _part_notes(m21, part, shift: float) -> list[list]:
    """[start, duration, pitch, velocity] per note of a part (ties merged, grace notes dropped)."""
    out: list[list] = []
    open_ties: dict[int, list] = {}  # pitch -> the note a tie continues
    flat = part.flatten()
    velocity = 80
    for el in flat.getElementsByClass((m21.note.Note, m21.chord.Chord, m21.dynamics.Dynamic)):
        if isinstance(el, m21.dynamics.Dynamic):
            try:
                velocity = int(round(float(el.volumeScalar) * 127))
            except (TypeError, ValueError):
                pass
            continue
        dur = float(el.quarterLength)
        if dur <= 0:
            continue  # grace notes
        start = float(el.offset) + shift
        pitches = [el.pitch] if isinstance(el, m21.note.Note) else list(el.pitches)
        tie = el.tie.type if el.tie is not None else None
        vel = velocity
        if el.volume is not None and el.volume.velocity is not None:
            vel = int(el.volume.velocity)
        for p in pitches:
            midi = int(round(p.ps))
            if tie in ("stop", "continue") and midi in open_ties:
                prev = open_ties[midi]
                prev[1] = round(start + dur - prev[0], 6)
                if tie == "stop":
                    del open_ties[midi]
                continue
            note = [round(start, 6), round(dur, 6), midi, max(1, min(127, vel))]
            out.append(note)
            if tie in ("start", "continue"):
                open_ties[midi] = note
            else:
                open_ties.pop(midi, None)
    out.sort(key=lambda n: (n[0], -n[2]))
    return out
