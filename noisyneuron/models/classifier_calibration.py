"""Fitting the classifier to a user's microphone and room: ``noisyneuron classify calibrate``.

A model trained on clean recordings can call everything a laptop microphone hears "noise".
Calibration takes a few labelled recordings made *through the user's own input* (recorded from
the device, prompted label by label, or a folder of folders of files), and:

1. cuts them into the network's 1-second windows every 0.2 s, holding back the last 30 % of each
   label's audio (whole files when a label has three or more; else the end of each file) for
   the before/after score, so the score is on audio the fit never saw;
2. scores the current model on the held-back windows (**accuracy before**): each window through
   the level gate and the network, as the monitor decides before smoothing;
3. fine-tunes the **head** only (the conv layers, their batch norm statistics and the front end
   stay frozen): the head's input embeddings of the fit windows are computed once, then the
   head is trained on them (Adam, full batch, 300 epochs, cross-entropy) with an L2 pull towards
   its shipped weights (L2-SP), so labels the user did not record are not forgotten;
4. if silence was recorded, moves the level gate's threshold to where it best separates the
   silence windows from the others (balanced accuracy), unless the current one does as well;
5. scores again (**accuracy after**) and saves the result as a *profile*: an exported classifier
   file with ``profile`` metadata (what was recorded, the scores, the base model), in the user's
   config directory (:func:`~noisyneuron.models.classifier.default_profile_path`). The monitor and
   ``classify`` use it from then on, and say so.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from noisyneuron.errors import UserError
from noisyneuron.models.classifier import DEFAULT_STREAM, SILENCE, ClassifierNet, export_classifier, log_mel_frames

__all__ = ["Recording", "recordings_from_folder", "calibrate", "HOLD_BACK", "WINDOW_STEP_SECONDS"]

#: Fraction of each label's audio held back for the before/after score.
HOLD_BACK = 0.3
#: Step between calibration windows, seconds.
WINDOW_STEP_SECONDS = 0.2
_EPOCHS = 300
_L2SP = 1e-2


@dataclass
class Recording:
    """One labelled recording: float32 mono audio at ``sample_rate`` Hz, and where it came from."""

    label: str
    audio: np.ndarray
    sample_rate: int
    name: str


def recordings_from_folder(folder: str | os.PathLike) -> list[Recording]:
    """Every audio file of ``folder/<label>/`` as a :class:`Recording` (mono, its own rate;
    below 16 kHz resampled to 16 kHz). One-line :class:`UserError` for a missing folder, no
    label folders or an unreadable file."""
    from noisyneuron.models.classifier_training import AUDIO_EXTENSIONS
    from noisyneuron.audio.files import read_audio_checked

    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder (give a folder with one subfolder of recordings per label)")
    out: list[Recording] = []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(label_dir.iterdir()):
            if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS and not f.name.startswith("."):
                audio, rate, _ = read_audio_checked(f, channels=1)
                if rate < 16000:
                    audio, rate, _ = read_audio_checked(f, sample_rate=16000, channels=1)
                out.append(Recording(label_dir.name, np.ascontiguousarray(audio[:, 0]), int(rate), str(f.relative_to(root))))
    if not out:
        raise UserError(f"{root}: no recordings found (expected {root}/<label>/*.wav|flac|ogg|mp3)")
    return out


# ----- windows --------------------------------------------------------------------------------
@dataclass
class _Windows:
    mel: np.ndarray  # (N, T, M) dB
    level: np.ndarray  # (N,) dBFS of each window's gate span
    label: list[str]


def _windows(rec: Recording, start: float, end: float, net: ClassifierNet) -> _Windows:
    """Windows of ``rec`` whose end lies in ``[start, end)`` (fractions of its length)."""
    cfg = net.config
    mel, ms = log_mel_frames(rec.audio, rec.sample_rate, cfg)
    t = cfg.context_frames
    gate = int(round(float((net.export_meta or {}).get("stream", {}).get("gate_seconds", DEFAULT_STREAM["gate_seconds"])) / cfg.hop_seconds))
    step = max(1, int(round(WINDOW_STEP_SECONDS / cfg.hop_seconds)))
    n = len(mel)
    lo = max(t, int(math.ceil(start * n)))
    hi = int(end * n)
    ends = list(range(lo, hi + 1, step))
    if not ends and n >= 1 and end >= 1.0:  # a short recording: one window, floor-padded
        ends = [n]
    wins, levels = [], []
    for e in ends:
        w = mel[max(0, e - t) : e]
        if len(w) < t:
            w = np.concatenate([np.full((t - len(w), cfg.n_mels), cfg.floor_db, np.float32), w])
        wins.append(w)
        g = ms[max(0, e - gate) : e]
        levels.append(10 * math.log10(max(float(np.sum(g)) / gate, 1e-12)))
    mel_w = np.stack(wins).astype(np.float32) if wins else np.zeros((0, t, cfg.n_mels), np.float32)
    return _Windows(mel_w, np.array(levels, dtype=np.float64), [rec.label] * len(wins))


def _concat(parts: list[_Windows], cfg) -> _Windows:
    if not parts:
        return _Windows(np.zeros((0, cfg.context_frames, cfg.n_mels), np.float32), np.zeros(0), [])
    return _Windows(np.concatenate([p.mel for p in parts]), np.concatenate([p.level for p in parts]), sum((p.label for p in parts), []))


def _split(recs: list[Recording], net: ClassifierNet) -> tuple[_Windows, _Windows]:
    """(fit windows, held-back windows); see the module docstring."""
    fit, held = [], []
    by_label: dict[str, list[Recording]] = {}
    for r in recs:
        by_label.setdefault(r.label, []).append(r)
    for label, group in by_label.items():
        if len(group) >= 3:
            order = sorted(group, key=lambda r: hashlib.sha1(r.name.encode()).hexdigest())
            n_held = max(1, int(round(HOLD_BACK * len(group))))
            for k, r in enumerate(order):
                (held if k < n_held else fit).append(_windows(r, 0.0, 1.0, net))
        else:
            for r in group:
                fit.append(_windows(r, 0.0, 1.0 - HOLD_BACK, net))
                held.append(_windows(r, 1.0 - HOLD_BACK, 1.0, net))
    return _concat(fit, net.config), _concat(held, net.config)


def _decide(net: ClassifierNet, w: _Windows, labels: tuple[str, ...], gate: float | None) -> np.ndarray:
    """Decision label index per window: the gate, else the network's most likely label."""
    out = np.zeros(len(w.label), dtype=np.int64)
    if not len(out):
        return out
    with torch.inference_mode():
        probs = torch.softmax(net.eval()(torch.from_numpy(w.mel)), dim=1).numpy()
    out[:] = np.argmax(probs, axis=1)
    if gate is not None and SILENCE in labels:
        out[w.level < gate] = labels.index(SILENCE)
    return out


def _score(net: ClassifierNet, w: _Windows, labels: tuple[str, ...], gate: float | None) -> dict:
    decided = _decide(net, w, labels, gate)
    truth = np.array([labels.index(lab) for lab in w.label], dtype=np.int64)
    per = {}
    for lab in sorted(set(w.label), key=labels.index):
        m = truth == labels.index(lab)
        per[lab] = float(np.mean(decided[m] == truth[m]))
    return {"accuracy": float(np.mean(decided == truth)) if len(truth) else None, "per_label": per, "windows": int(len(truth))}


def _fit_gate(fit: _Windows, held: _Windows, gate: float | None) -> float | None:
    """The threshold that best separates the silence windows (below) from the others (above),
    when silence was recorded: the one with the highest balanced accuracy (the mean of the two
    fractions; the middle of the best run of thresholds), kept only if it beats the current one."""
    levels = np.concatenate([fit.level, held.level])
    labels = np.array(fit.label + held.label)
    sil = np.sort(levels[labels == SILENCE])
    rest = np.sort(levels[labels != SILENCE])
    if not len(sil) or not len(rest):
        return gate

    def balanced(t: float) -> float:
        return 0.5 * (np.searchsorted(sil, t) / len(sil) + (len(rest) - np.searchsorted(rest, t)) / len(rest))

    points = np.unique(np.concatenate([sil, rest]))
    candidates = np.concatenate([[points[0] - 1.0], 0.5 * (points[1:] + points[:-1]), [points[-1] + 1.0]])
    scores = np.array([balanced(t) for t in candidates])
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    # the middle of the widest stretch of best thresholds: as far as possible from both sides
    t = float(0.5 * (candidates[best[0]] + candidates[best[-1]])) if np.all(np.diff(best) == 1) else float(candidates[best[len(best) // 2]])
    if gate is not None and balanced(gate) >= scores.max():
        return gate
    return round(t, 1)


def calibrate(net: ClassifierNet, recordings: list[Recording], profile_path: str | os.PathLike, seed: int = 0) -> dict:
    """Fine-tune ``net``'s head on ``recordings`` and save the profile; see the module docstring.

    Returns ``{"before", "after"`` (``{"accuracy", "per_label", "windows"}`` on the held-back
    windows), ``"fit_windows", "gate_before", "gate_after", "labels", "path", "bytes"}``.
    One-line :class:`UserError` for a label the model does not have, or too little audio.
    """
    model_labels = tuple(net.config.labels)
    labels = model_labels if SILENCE in model_labels else model_labels + (SILENCE,)
    unknown = sorted({r.label for r in recordings} - set(labels))
    if unknown:
        raise UserError(
            f"label(s) {', '.join(unknown)} are not the model's ({', '.join(labels)}); "
            "calibrate with those folder names, or train your own labels with `noisyneuron train classifier`"
        )
    base_meta = dict(net.export_meta or {})
    gate = (base_meta.get("stream") or {}).get("silence_dbfs", DEFAULT_STREAM["silence_dbfs"])
    fit, held = _split(recordings, net)
    if len(fit.label) < 2 or len(held.label) < 1:
        raise UserError("too little audio to calibrate: record at least 5 s per label")
    before = _score(net, held, labels, gate)
    tuned = copy.deepcopy(net).eval()
    trainable = [i for i, lab in enumerate(fit.label) if lab in model_labels]
    if len({fit.label[i] for i in trainable}) >= 1:
        torch.manual_seed(seed)
        with torch.no_grad():
            emb = tuned.embed(torch.from_numpy(fit.mel[trainable]))
        target = torch.tensor([model_labels.index(fit.label[i]) for i in trainable])
        head = tuned.head
        reference = [p.detach().clone() for p in head.parameters()]
        opt = torch.optim.Adam(head.parameters(), lr=1e-3)
        head.train()
        for _ in range(_EPOCHS):
            loss = torch.nn.functional.cross_entropy(head(emb), target)
            loss = loss + _L2SP * sum(((p - r) ** 2).sum() for p, r in zip(head.parameters(), reference))
            opt.zero_grad()
            loss.backward()
            opt.step()
        head.eval()
    new_gate = _fit_gate(fit, held, gate)
    after = _score(tuned, held, labels, new_gate)
    stream = {**DEFAULT_STREAM, **(base_meta.get("stream") or {})}
    stream["silence_dbfs"] = new_gate
    base_source = getattr(net, "source", "given")
    meta = export_classifier(
        tuned, profile_path, "float32",
        stream=stream,
        training_steps=base_meta.get("training_steps"),
        data_manifest_hash=base_meta.get("data_manifest_hash"),
        valid=base_meta.get("valid"),
        profile={
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "base": base_source,
            "recordings": sorted({r.name for r in recordings}),
            "labels_recorded": sorted({r.label for r in recordings}),
            "fit_windows": len(fit.label),
            "held_back_windows": len(held.label),
            "accuracy_before": before["accuracy"],
            "accuracy_after": after["accuracy"],
            "gate_before": gate,
            "gate_after": new_gate,
        },
    )
    return {"before": before, "after": after, "fit_windows": len(fit.label), "gate_before": gate, "gate_after": new_gate,
            "labels": list(labels), "path": str(profile_path), "bytes": meta["bytes"]}
