"""How figures are worded for people, the same in every command.

Speed is said one way everywhere: ``5.5x faster than real time`` (audio seconds per wall-clock
second), or ``2.0x slower than real time`` when the work took longer than the audio lasts.
"""

from __future__ import annotations

__all__ = ["speed_words"]


def speed_words(audio_seconds: float, wall_seconds: float) -> str:
    """``"5.5x faster than real time"`` for ``audio_seconds`` of audio done in ``wall_seconds``
    (``"2.0x slower than real time"`` when it took longer; ``"instantly"`` for no measurable
    time). Two significant figures below 10x, whole numbers above."""
    if wall_seconds <= 0:
        return "instantly"
    if audio_seconds <= 0:
        return "no audio"
    ratio = audio_seconds / wall_seconds
    if ratio >= 1.0:
        return f"{_ratio(ratio)}x faster than real time"
    return f"{_ratio(1.0 / ratio)}x slower than real time"


def _ratio(x: float) -> str:
    return f"{x:.1f}" if x < 10 else f"{x:.0f}"
