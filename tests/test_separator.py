"""The streaming separator: stems sum to the input, streaming equals the full pass, exact latency."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from noisyneuron.models.separator import SeparatorConfig, SeparatorNet, StreamingSeparator
from noisyneuron.realtime.processors.separator import NeuralSeparator


@pytest.fixture(scope="module")
def net() -> SeparatorNet:
    torch.manual_seed(0)
    n = SeparatorNet(SeparatorConfig(hidden=48, layers=2)).eval()
    with torch.no_grad():  # a random net with masks far from uniform, so stems differ clearly
        n.decode[-1].weight.mul_(20.0)
        for p in n.parameters():  # values an exported float16 file holds, as the shipped weights
            p.copy_(p.half().float())
    return n


def _signal(seconds: float, rate: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    x = np.stack([tone + 0.05 * rng.standard_normal(len(t)) for _ in range(channels)], axis=1)
    return x.astype(np.float32)


def test_latency_is_under_23_ms_and_scales_with_the_rate(net):
    assert net.config.latency_samples == 1007
    assert net.config.latency_samples / 44100 < 0.023
    assert net.config.geometry(48000) == (1096, 548)
    assert SeparatorConfig(hop=252).geometry(48000) == (1096, 274)
    assert StreamingSeparator(net, 48000).latency_samples == 1095
    assert 1095 / 48000 < 0.023


@pytest.mark.parametrize("rate", [44100, 48000])
def test_stems_sum_to_the_input(net, rate):
    x = torch.from_numpy(_signal(1.0, rate).T.copy())[None]
    with torch.no_grad():
        stems = net(x, rate)
    assert stems.shape == (1, 4, 2, x.shape[-1])
    assert torch.allclose(stems.sum(1), x, atol=1e-5)
    # and the stems are not trivially equal shares
    assert (stems[0, 0] - stems[0, 1]).abs().max() > 1e-2


@pytest.mark.parametrize("rate", [44100, 48000])
def test_streaming_equals_the_full_pass(net, rate):
    x = torch.from_numpy(_signal(1.0, rate).T.copy())
    with torch.no_grad():
        full = net(x[None], rate)[0]
    streamer = StreamingSeparator(net, rate)
    pieces, pos = [], 0
    for size in [1, 300, 17, 1024, 4096, 999] * 10:
        if pos >= x.shape[1]:
            break
        pieces.append(streamer.push(x[:, pos : pos + size]))
        pos += size
    out = torch.cat(pieces, dim=-1)
    delay = streamer.n_fft - streamer.hop
    assert out.shape[-1] % streamer.hop == 0
    assert out[..., :delay].sum(0).abs().max() < 1e-6  # times before the signal: stems cancel
    n = out.shape[-1] - delay
    torch.testing.assert_close(out[..., delay:], full[..., :n], atol=1e-5, rtol=0)


def test_reset_forgets_the_past(net):
    x = torch.from_numpy(_signal(0.5, 44100).T.copy())
    s = StreamingSeparator(net)
    first = s.push(x)
    s.push(torch.randn(2, 5000))
    s.reset()
    assert torch.allclose(s.push(x), first, atol=1e-6)


def _run(proc: NeuralSeparator, x: np.ndarray, sizes=(256, 100, 512, 1, 37)) -> np.ndarray:
    out = np.zeros_like(x)
    pos, i = 0, 0
    while pos < len(x):
        n = min(sizes[i % len(sizes)], len(x) - pos)
        block = x[pos : pos + n].copy()
        proc.process(block)
        out[pos : pos + n] = block
        pos, i = pos + n, i + 1
    return out


@pytest.mark.parametrize("rate", [44100, 48000])
def test_processor_at_unity_returns_the_input_delayed_by_its_latency(net, rate):
    proc = NeuralSeparator(net=net, vocals_db=0.0)
    proc.prepare(rate, 512, 2)
    x = _signal(0.6, rate)
    out = _run(proc, x)
    lat = proc.latency_samples
    assert lat == net.config.geometry(rate)[0] - 1
    np.testing.assert_allclose(out[lat:], x[:-lat], atol=1e-5)
    assert np.abs(out[:lat]).max() < 1e-6


def test_processor_karaoke_and_solo_match_the_offline_stems(net):
    x = _signal(0.6, 44100)
    with torch.no_grad():
        stems = net(torch.from_numpy(x.T.copy())[None])[0].numpy()  # (S, C, T)
    lat = 1007
    karaoke = NeuralSeparator(net=net)  # vocals off by default
    karaoke.prepare(44100, 512, 2)
    np.testing.assert_allclose(_run(karaoke, x)[lat:], stems[1:].sum(0).T[:-lat], atol=1e-5)
    solo = NeuralSeparator(net=net, vocals_db=0.0)
    solo.prepare(44100, 512, 2)
    solo.parameters["solo"].set(3)  # bass only
    solo.parameters["bass"].set(-6.0)
    solo.reset()
    np.testing.assert_allclose(_run(solo, x)[lat:], 10 ** (-6 / 20) * stems[2].T[:-lat], atol=1e-5)


def test_processor_mono_and_extra_channels(net):
    mono = _signal(0.5, 44100, channels=1)
    proc = NeuralSeparator(net=net, vocals_db=0.0)
    proc.prepare(44100, 512, 1)
    out = _run(proc, mono)
    np.testing.assert_allclose(out[1007:], mono[:-1007], atol=1e-5)
    three = _signal(0.5, 44100, channels=3, seed=4)
    proc = NeuralSeparator(net=net)
    proc.prepare(44100, 512, 3)
    out = _run(proc, three)
    np.testing.assert_allclose(out[1007:, 2], three[:-1007, 2], atol=0)  # only delayed
    assert np.abs(out[1007:, :2] - three[:-1007, :2]).max() > 1e-3  # vocals removed there


def test_separator_chain_uses_the_shipped_weights_and_says_when_there_are_none(net, tmp_path, monkeypatch):
    from noisyneuron.errors import UserError
    from noisyneuron.models import pretrained
    from noisyneuron.control.surface import ControlSurface
    from noisyneuron.realtime.chains import build_chain
    from noisyneuron.realtime.offline import process_array

    monkeypatch.setattr(pretrained, "SHIPPED_SEPARATOR", tmp_path / "none.pt")
    with pytest.raises(UserError, match="ships no separator weights"):
        build_chain("separator")
    weights = tmp_path / "separator.pt"
    torch.save({"format": pretrained.EXPORT_FORMAT, "config": net.config.as_dict(), "state_dict": net.state_dict()}, weights)
    monkeypatch.setattr(pretrained, "SHIPPED_SEPARATOR", weights)
    chain = build_chain("separator")
    x = _signal(0.5, 44100)
    with torch.no_grad():
        stems = net(torch.from_numpy(x.T.copy())[None])[0].numpy()
    out = process_array(x, chain, blocksize=256, sample_rate=44100)  # vocals off: karaoke
    np.testing.assert_allclose(out, stems[1:].sum(0).T, atol=1e-5)
    ControlSurface(chain).apply_settings(["vocals=0", "drums=off"])
    out = process_array(x, chain, blocksize=256, sample_rate=44100)
    np.testing.assert_allclose(out, (stems[0] + stems[2] + stems[3]).T, atol=1e-5)
