"""The separator weights shipped in the package: present, small, self-describing, and they work."""

from __future__ import annotations

import numpy as np
import torch

from noisyneuron.demo import make_demo_mix
from noisyneuron.models.apply import separate_array
from noisyneuron.models.pretrained import SHIPPED_SEPARATOR, has_shipped_separator, load_separator


def _sdr(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref**2) / np.sum((ref - est) ** 2)))


def test_shipped_weights_are_small_and_carry_their_metadata():
    assert has_shipped_separator()
    assert SHIPPED_SEPARATOR.stat().st_size < 20e6
    blob = torch.load(SHIPPED_SEPARATOR, map_location="cpu", weights_only=True)  # no pickle, no network
    assert blob["sample_rate"] == 44100 and blob["stems"] == ["vocals", "drums", "bass", "other"]
    assert blob["n_fft"] == 1008 and blob["latency_samples"] == 1007
    assert blob["training_steps"] > 0 and len(blob["data_manifest_hash"]) == 64
    assert blob["noisyneuron_version"] and blob["created"]


def test_shipped_separator_pulls_the_vocal_out_of_the_demo_song_stereo_and_mono():
    torch.set_num_threads(1)
    net = load_separator()
    demo = make_demo_mix(44100, 6.0, seed=5)
    mix = demo["mix"].astype(np.float32)
    stems = separate_array(net, mix, 44100)
    np.testing.assert_allclose(sum(stems.values()), mix, atol=1e-4)  # stems sum to the input
    floor = _sdr(demo["vocals"], mix)  # "the mixture is the vocals"
    assert _sdr(demo["vocals"], stems["vocals"]) > floor + 3.0
    assert _sdr(demo["accompaniment"], mix - stems["vocals"]) > _sdr(demo["accompaniment"], mix) + 1.0
    mono = mix.mean(axis=1, keepdims=True)
    mono_stems = separate_array(net, mono, 44100)
    ref = demo["vocals"].mean(axis=1, keepdims=True)
    assert _sdr(ref, mono_stems["vocals"]) > _sdr(ref, mono) + 3.0  # where the centre cut can do nothing
