"""A melody: the notes a vocal line sings, timed in seconds, shared by scores and voices."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MelodyNote", "midi_to_hz"]


@dataclass(frozen=True)
class MelodyNote:
    """One sung note.

    Attributes:
        start: onset, seconds from the start of the track.
        duration: length, seconds.
        pitch: MIDI note number (60 = C4 = 261.6 Hz).
        lyric: the syllable sung on it (may be empty: a voice then picks one).
    """

    start: float
    duration: float
    pitch: int
    lyric: str = ""

    @property
    def end(self) -> float:
        return self.start + self.duration


def midi_to_hz(pitch: float) -> float:
    """Frequency in Hz of a MIDI note number (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)
