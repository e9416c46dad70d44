"""The weights that ship inside the package, and loading any exported separator.

``noisyneuron/models/weights/separator.pt`` is an :func:`~noisyneuron.models.training.export_separator`
file: a float32 (or float16) state dict plus metadata (config, sample rate, STFT, stems, latency,
NoisyNeuron version, training steps, the training data's manifest hash, validation SDRs). It
loads with ``torch.load(weights_only=True)``: tensors and plain types only, no network.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from noisyneuron.audio.atomic import atomic_write_text
from noisyneuron.errors import UserError

__all__ = [
    "EXPORT_FORMAT", "SHIPPED_SEPARATOR", "SEPARATOR_WEIGHTS_ENV", "load_separator", "has_shipped_separator",
    "selected_separator_weights", "record_separator_quality", "separator_quality",
]

#: ``format`` tag of an exported separator file.
EXPORT_FORMAT = "noisyneuron-separator"
#: The separator checkpoint shipped in the package.
SHIPPED_SEPARATOR = Path(__file__).resolve().parent / "weights" / "separator.pt"
#: Environment variable naming other exported weights to use instead of the shipped ones
#: (the CLI's ``--separator-weights FILE`` sets it).
SEPARATOR_WEIGHTS_ENV = "NOISYNEURON_SEPARATOR_WEIGHTS"


def has_shipped_separator() -> bool:
    """Whether this installation carries the separator weights."""
    return SHIPPED_SEPARATOR.is_file()


def selected_separator_weights(path: str | os.PathLike | None = None) -> Path:
    """The weights file :func:`load_separator` would read: ``path``, else ``$NOISYNEURON_SEPARATOR_WEIGHTS``,
    else the shipped one."""
    if path is None:
        path = os.environ.get(SEPARATOR_WEIGHTS_ENV) or None
    return Path(path) if path is not None else SHIPPED_SEPARATOR


def _quality_path(weights: Path) -> Path:
    return weights.with_name(weights.stem + "-quality.json")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record_separator_quality(figures: dict, path: str | os.PathLike | None = None) -> Path:
    """Store measured quality ``figures`` (see ``evaluation.separation.karaoke_quality``) beside the
    weights (``separator-quality.json`` for ``separator.pt``), tied to the weights by their SHA-256
    so that figures never outlive the weights they were measured with. Returns the file written."""
    weights = selected_separator_weights(path)
    target = _quality_path(weights)
    return atomic_write_text(target, json.dumps({**figures, "weights_sha256": _sha256(weights)}, indent=2) + "\n")


def separator_quality(path: str | os.PathLike | None = None) -> dict | None:
    """The recorded quality figures of these weights (default: the selected ones), or None when
    none were recorded or they belong to other weights."""
    weights = selected_separator_weights(path)
    target = _quality_path(weights)
    if not weights.is_file() or not target.is_file():
        return None
    try:
        figures = json.loads(target.read_text())
    except (OSError, ValueError):
        return None
    if figures.get("weights_sha256") != _sha256(weights):
        return None
    return figures


def load_separator(path: str | os.PathLike | None = None) -> "SeparatorNet":  # noqa: F821
    """A :class:`SeparatorNet` (float32, CPU, eval mode) from an exported file (default: the one
    named by ``$NOISYNEURON_SEPARATOR_WEIGHTS``, else the shipped one); ``net.export_meta``
    holds the file's metadata. One-line UserError when the file is missing or is not an
    exported separator."""
    from noisyneuron.models.run_folder import read_export
    from noisyneuron.models.separator import SeparatorConfig, SeparatorNet

    path = selected_separator_weights(path)
    if not path.is_file():
        if path == SHIPPED_SEPARATOR:
            raise UserError(
                "this build ships no separator weights (noisyneuron/models/weights/separator.pt); train and export one: "
                "noisyneuron train separator --data DIR --export noisyneuron/models/weights/separator.pt"
            )
        raise UserError(f"{path}: no such separator weights file")
    return read_export(path, EXPORT_FORMAT, "separator", "export one with `noisyneuron train separator --export`",
                       lambda config: SeparatorNet(SeparatorConfig.from_dict(config)))
