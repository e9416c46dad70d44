"""Tiny, fast material for the classifier tests: labelled folders and a briefly trained model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from noisyneuron.datasets import noise as nz
from noisyneuron.datasets.classification import make_fixture_clips, synth_music

SR = 16000


@pytest.fixture(autouse=True)
def no_user_profile(tmp_path, monkeypatch):
    """Never read or write the real user's calibration profile or weights (autouse in every test
    module that imports it)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("NOISYNEURON_CLASSIFIER_PROFILE", raising=False)
    monkeypatch.delenv("NOISYNEURON_CLASSIFIER_WEIGHTS", raising=False)


def tiny_model(root: Path, steps: int = 40) -> Path:
    """Train a classifier for ``steps`` steps on the numpy-only fixture set (music, speech, noise,
    silence; 2-second clips) and export it: returns the exported file (a few seconds on one core)."""
    import torch

    from noisyneuron.models.classifier_options import ClassifierTrainConfig
    from noisyneuron.models.classifier_training import export_run, train

    data = root / "fixture-data"
    if not (data / "manifest.json").is_file():
        make_fixture_clips(data, seed=0, per_split=3, seconds=2.0)
    out = root / "fixture-run"
    threads = torch.get_num_threads()
    try:
        train(ClassifierTrainConfig(data=data, out=out, steps=steps, batch_size=16, valid_every=steps, checkpoint_every=steps, torch_threads=1), progress=False)
    finally:
        torch.set_num_threads(threads)
    export_run(out, root / "tiny-classifier.pt", "float16")
    return root / "tiny-classifier.pt"


def example(label: str, seconds: float, seed: int, rate: int = SR) -> np.ndarray:
    """Mono float32 audio of a label at ``rate`` Hz, from the fixture's generators."""
    rng = np.random.default_rng(seed)
    if label == "music":
        x, _ = synth_music(rng, seconds, rate)
    elif label == "speech":
        x = nz.formant_speech(rng, seconds, rate, level_dbfs=-24.0)
    elif label == "noise":
        x, _ = nz.random_noise(str(rng.choice(["pink", "fan", "hum", "engine", "rain"])), rng, seconds, rate, -28.0)
    else:
        x = nz.noise_floor(rng, seconds, rate, -75.0)
    return np.asarray(x, dtype=np.float32)


def folder_of_folders(root: Path, labels: dict[str, int], seconds: float = 3.0, colour=None, rate: int = SR) -> Path:
    """``root/<label>/<n>.wav`` for each label (``labels[label]`` files each); ``colour(x)``
    transforms each signal (a microphone model, say)."""
    for k, (label, count) in enumerate(labels.items()):
        (root / label).mkdir(parents=True, exist_ok=True)
        for n in range(count):
            x = example(label, seconds, 1000 * k + n, rate)
            if colour is not None:
                x = colour(x, np.random.default_rng(77 + 1000 * k + n)).astype(np.float32)
            sf.write(str(root / label / f"{label}-{n}.wav"), x, rate, subtype="FLOAT")
    return root
