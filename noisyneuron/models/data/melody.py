"""A melody: the notes a vocal line sings, timed in seconds, shared by scores and voices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MelodyNote", "midi_to_hz", "melody_f0"]


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


def melody_f0(melody: list[MelodyNote], frame_period: float, n_frames: int) -> np.ndarray:
    """Fundamental frequency per analysis frame, Hz (0 where no note sounds).

    Args:
        melody: the notes.
        frame_period: seconds between frames (WORLD's default is 0.005).
        n_frames: number of frames to return.
    """
    f0 = np.zeros(n_frames)
    for note in melody:
        a = max(0, int(round(note.start / frame_period)))
        b = min(n_frames, int(round(note.end / frame_period)))
        if b > a:
            f0[a:b] = midi_to_hz(note.pitch)
    return f0
