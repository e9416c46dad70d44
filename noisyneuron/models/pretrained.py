"""The weights that ship inside the package, and loading any exported separator.

``noisyneuron/models/weights/separator.pt`` is an :func:`~noisyneuron.models.training.export_separator`
file: a float32 (or float16) state dict plus metadata (config, sample rate, STFT, stems, latency,
NoisyNeuron version, training steps, the training data's manifest hash, validation SDRs). It
loads with ``torch.load(weights_only=True)``: tensors and plain types only, no network.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from noisyneuron.errors import UserError
from noisyneuron.models.separator import SeparatorConfig, SeparatorNet

__all__ = ["EXPORT_FORMAT", "SHIPPED_SEPARATOR", "SEPARATOR_WEIGHTS_ENV", "load_separator", "has_shipped_separator"]

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


def load_separator(path: str | os.PathLike | None = None) -> SeparatorNet:
    """A :class:`SeparatorNet` (float32, CPU, eval mode) from an exported file (default: the one
    named by ``$NOISYNEURON_SEPARATOR_WEIGHTS``, else the shipped one); ``net.export_meta``
    holds the file's metadata. One-line UserError when the file is missing or is not an
    exported separator."""
    if path is None:
        path = os.environ.get(SEPARATOR_WEIGHTS_ENV) or None
    path = Path(path) if path is not None else SHIPPED_SEPARATOR
    if not path.is_file():
        if path == SHIPPED_SEPARATOR:
            raise UserError(
                "this build ships no separator weights (noisyneuron/models/weights/separator.pt); train and export one: "
                "noisyneuron train separator --data DIR --export noisyneuron/models/weights/separator.pt"
            )
        raise UserError(f"{path}: no such separator weights file")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file
        raise UserError(f"{path}: cannot read separator weights ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != EXPORT_FORMAT:
        raise UserError(f"{path}: not an exported NoisyNeuron separator (export one with `noisyneuron train separator --export`)")
    net = SeparatorNet(SeparatorConfig.from_dict(blob["config"]))
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    net.export_meta = {k: v for k, v in blob.items() if k != "state_dict"}
    return net.eval()
