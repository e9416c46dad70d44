"""The streaming classifier: front end, streaming = batch, hysteresis, the level gate, the chain
processor, training / export / resume, calibration, and the evaluation's "ours" system."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest
import torch

from classifier_fixtures import example, folder_of_folders, no_user_profile, tiny_model  # noqa: F401 (autouse)
from noisyneuron.errors import UserError
from noisyneuron.models.classifier import (
    SILENCE,
    ClassifierConfig,
    ClassifierNet,
    StreamingClassifier,
    batch_decisions,
    load_classifier,
    log_mel_frames,
    smooth_and_decide,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> "torch.nn.Module":
    path = tiny_model(tmp_path_factory.mktemp("tiny"))
    net = load_classifier(path)
    net.path = path
    return net


def _stream(sc: StreamingClassifier, x: np.ndarray, rng: np.random.Generator, max_block: int = 5000):
    """Feed ``x`` in random block sizes; every decision's (index, smoothed, level, gated, time, held)."""
    got = []
    sc.on_decision = lambda s: got.append((s.label_index, s.smoothed.copy(), s.level_dbfs, s.gated, s.stream_seconds, s.held))
    pos = 0
    while pos < len(x):
        n = int(rng.integers(1, max_block))
        sc.process(x[pos : pos + n])
        pos += n
    return got


def _scene(rate: int) -> np.ndarray:
    """music, speech, noise, silence, music: 2 s each, at ``rate``."""
    parts = [example(lab, 2.0, 10 + k, rate) for k, lab in enumerate(["music", "speech", "noise", "silence", "music"])]
    return np.concatenate(parts).astype(np.float32)


# ----- front end ------------------------------------------------------------------------------
def test_front_end_reads_the_same_at_every_device_rate():
    cfg = ClassifierConfig()
    frames = {}
    for rate in (16000, 44100, 48000):
        t = np.arange(int(2.0 * rate)) / rate
        x = (0.5 * np.sin(2 * np.pi * 1000.0 * t) + 0.05 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
        mel, ms = log_mel_frames(x, rate, cfg)
        n_fft, hop = cfg.geometry(rate)
        assert len(mel) == len(x) // hop and mel.shape[1] == cfg.n_mels
        assert hop / rate == pytest.approx(cfg.hop_seconds) and n_fft / rate == pytest.approx(cfg.window_seconds)
        # the hop's mean square: a 0.5 + 0.05 sine pair has RMS^2 = 0.125 + 0.00125
        assert np.median(ms[5:]) == pytest.approx(0.12625, rel=0.01)
        frames[rate] = mel[5:95]
    loud = frames[16000] > frames[16000].max() - 60
    for rate in (44100, 48000):
        assert np.max(np.abs(frames[rate] - frames[16000])[loud]) < 0.5, rate
    # silence reads the floor exactly
    mel, _ = log_mel_frames(np.zeros(16000, np.float32), 16000, cfg)
    assert np.all(mel == cfg.floor_db)


def test_network_is_blind_to_gain():
    net = ClassifierNet().eval()
    mel, _ = log_mel_frames(example("music", 1.2, 3), 16000)
    x = torch.from_numpy(mel[-50:][None])
    with torch.no_grad():
        assert torch.allclose(torch.softmax(net(x), 1), torch.softmax(net(x - 17.0), 1), atol=1e-5)


# ----- streaming vs batch ---------------------------------------------------------------------
@pytest.mark.parametrize("rate", [16000, 48000])
def test_streaming_equals_batch_decisions(tiny, rate):
    x = _scene(rate)
    sc = StreamingClassifier(tiny, rate)
    got = _stream(sc, x, np.random.default_rng(rate))
    batch = batch_decisions(tiny, x, rate)
    assert len(got) == len(batch["index"]) == len(x) // sc.decision_samples
    assert [g[0] for g in got] == list(batch["index"])
    np.testing.assert_allclose(np.array([g[1] for g in got]), batch["smoothed"], atol=1e-5)
    np.testing.assert_allclose([g[2] for g in got], batch["level_dbfs"], atol=1e-6)
    assert [g[4] for g in got] == pytest.approx(list(batch["times"]))
    # stereo blocks are averaged to mono first: the same decisions
    sc.reset()
    stereo = np.repeat(x[:, None], 2, axis=1)
    assert [g[0] for g in _stream(sc, stereo, np.random.default_rng(1))] == list(batch["index"])


def test_decisions_follow_the_scene(tiny):
    """The tiny model is barely trained, but silence is the gate's: the silent 2 s read silence."""
    out = batch_decisions(tiny, _scene(16000), 16000)
    labels = [out["labels"][i] for i in out["index"]]
    silent = [lab for lab, t in zip(labels, out["times"]) if 6.5 <= t <= 8.0]
    assert silent and all(lab == SILENCE for lab in silent)
    assert all(out["gated"][(out["times"] >= 6.5) & (out["times"] <= 8.0)])
    assert not any(lab == SILENCE for lab, t in zip(labels, out["times"]) if 1.0 <= t <= 6.0)


# ----- hysteresis, gate -----------------------------------------------------------------------
def test_hysteresis_prevents_flicker_on_a_toggling_posterior():
    toggling = [np.array([0.56, 0.44], np.float32), np.array([0.44, 0.56], np.float32)] * 20

    def run(alpha, margin, raws):
        state = np.zeros(2, np.float32)
        current, labels = -1, []
        for i, raw in enumerate(raws):
            current = smooth_and_decide(raw, state, alpha, current, margin, i == 0)
            labels.append(current)
        return labels

    raw_labels = run(1.0, 0.0, toggling)  # no smoothing, no hysteresis: flips every decision
    assert sum(a != b for a, b in zip(raw_labels, raw_labels[1:])) == len(toggling) - 1
    steady = run(0.49, 0.1, toggling)
    assert len(set(steady)) == 1
    # a real change still goes through, within a few decisions
    change = toggling[:10] + [np.array([0.1, 0.9], np.float32)] * 10
    labels = run(0.49, 0.1, change)
    assert labels[-1] == 1 and labels.index(1) <= 10 + 2


def test_streaming_label_does_not_flicker_on_a_borderline_signal(tiny):
    """Alternating 0.1 s of two sources: the raw decisions would toggle; the label changes rarely."""
    a, b = example("music", 4.0, 1), example("noise", 4.0, 2)
    x = np.concatenate([(a if (k // 1600) % 2 else b)[k : k + 1600] for k in range(0, len(a), 1600)])
    out = batch_decisions(tiny, x, 16000)
    changes = int(np.sum(out["index"][1:] != out["index"][:-1]))
    raw_changes = int(np.sum(np.argmax(out["raw"], 1)[1:] != np.argmax(out["raw"], 1)[:-1]))
    assert changes <= max(2, raw_changes // 3), (changes, raw_changes)


def test_silence_gate_decides_before_the_model(tiny):
    x = np.concatenate([example("silence", 2.0, 5), example("noise", 2.0, 6)])  # -75 dBFS floor, then -28 dBFS
    sc = StreamingClassifier(tiny, 16000)
    calls = []
    sc.net.register_forward_hook(lambda *a: calls.append(1))
    got = _stream(sc, x, np.random.default_rng(2))
    quiet = [g for g in got if g[4] <= 2.0]
    assert all(g[3] for g in quiet) and all(sc.labels[g[0]] == SILENCE for g in quiet)
    assert all(-80.0 < g[2] < -70.0 for g in quiet[3:])  # the level of a -75 dBFS floor
    assert len(calls) == sum(1 for g in got if not g[3] and not g[5]) > 0  # the network ran only when not gated (or held)
    assert sc.labels[got[-1][0]] != SILENCE
    # the threshold is a setting: at -90 dBFS the floor is no longer silence by level
    sc2 = StreamingClassifier(tiny, 16000, silence_dbfs=-90.0)
    assert not any(g[3] for g in _stream(sc2, x, np.random.default_rng(3)))
    # no gate at all: no silence label unless the model has one
    assert SILENCE not in StreamingClassifier(tiny, 16000, silence_dbfs=None).labels


def test_configurable_decision_and_context(tiny):
    sc = StreamingClassifier(tiny, 48000, decision_seconds=0.2, context_seconds=0.6)
    assert sc.decision_samples == 9600 and sc.context_frames == 30
    x = example("music", 3.0, 9, 48000)
    got = _stream(sc, x, np.random.default_rng(4))
    assert len(got) == 15 and [g[0] for g in got] == list(batch_decisions(tiny, x, 48000, decision_seconds=0.2, context_seconds=0.6)["index"])


# ----- the chain processor --------------------------------------------------------------------
@pytest.mark.parametrize("rate,channels", [(44100, 2), (48000, 1), (48000, 2)])
def test_processor_passes_audio_bit_exact_and_publishes_readings(tiny, rate, channels):
    from noisyneuron.realtime.chain import Chain
    from noisyneuron.realtime.processors.classifier import ClassifierProcessor

    proc = ClassifierProcessor(net=tiny)
    chain = Chain([proc], name="monitor")
    chain.prepare(rate, 1024, channels)
    assert chain.latency_samples == 0 and proc.latency_samples == 0
    assert proc.reading() is None  # no decision yet
    x = np.repeat(_scene(rate)[:, None], channels, axis=1) * np.linspace(0.5, 1.0, channels)[None, :].astype(np.float32)
    x = np.ascontiguousarray(x, dtype=np.float32)
    rng = np.random.default_rng(0)
    pos, out = 0, np.zeros_like(x)
    readings = []
    while pos < len(x):
        n = int(rng.integers(1, 1025))
        block = x[pos : pos + n].copy()
        chain.process(block)
        out[pos : pos + n] = block
        pos += n
        readings.append(proc.reading())
    assert np.array_equal(out, x)  # analysis only: bit for bit
    assert readings[0] is None  # the first block is shorter than a decision
    readings = [r for r in readings if r is not None]
    last = readings[-1]
    decisions = len(x) // proc.classifier.decision_samples
    assert last.sequence == decisions and last.stream_seconds == pytest.approx(decisions * 0.1)
    assert set(last.confidences) == set(proc.labels) and sum(last.confidences.values()) == pytest.approx(1.0, abs=1e-4)
    assert last.label in proc.labels and -120.0 <= last.level_dbfs < 0.0
    seqs = [r.sequence for r in readings]
    assert seqs == sorted(seqs)
    silent = [r for r in readings if 6.6 <= r.stream_seconds <= 8.0]
    assert silent and all(r.label == SILENCE and r.gated for r in silent)
    chain.reset()
    assert proc.reading() is None


def test_readings_are_consistent_while_the_audio_side_writes(tiny):
    """A control thread polls while the audio thread publishes: every snapshot is whole."""
    from noisyneuron.realtime.processors.classifier import ClassifierProcessor

    proc = ClassifierProcessor(net=tiny)
    proc.prepare(16000, 160, 1)
    x = _scene(16000)[:, None].copy()
    done = threading.Event()
    seen = []

    def poll():
        while not done.is_set():
            seen.append(proc.reading())

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for pos in range(0, len(x), 160):
            proc.process(x[pos : pos + 160])
    finally:
        done.set()
        reader.join()
    assert len(seen) > 50
    for r in seen:
        if r is not None:
            assert sum(r.confidences.values()) == pytest.approx(1.0, abs=1e-4)
            assert r.stream_seconds == pytest.approx(r.sequence * 0.1)
            assert r.label == max(r.confidences, key=r.confidences.get) or r.confidences[r.label] > 0.0


def test_processor_block_allocates_no_python_memory_when_gated(tiny):
    """The gated path (no torch) allocates nothing that tracemalloc sees, block after block."""
    from noisyneuron.realtime.processors.classifier import ClassifierProcessor

    proc = ClassifierProcessor(net=tiny)
    proc.prepare(48000, 256, 2)
    block = np.zeros((256, 2), np.float32)
    for _ in range(200):
        proc.process(block)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(2000):  # 10.7 s, 106 decisions
            proc.process(block)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if s.size_diff > 0)
    assert grown < 8192, grown
    assert proc.reading().gated


def test_monitor_chains_are_registered():
    from noisyneuron.realtime.chains import CHAINS

    assert "monitor" in CHAINS and "separator+monitor" in CHAINS


# ----- training, export, resume ---------------------------------------------------------------
def test_train_own_labels_from_a_folder_of_folders_export_and_resume(tmp_path):
    import os

    from noisyneuron.models.classifier_options import ClassifierTrainConfig
    from noisyneuron.models.classifier_training import discover, export_run, train

    data = folder_of_folders(tmp_path / "sounds", {"music": 3, "speech": 3, "noise": 3, "silence": 2}, seconds=2.0)
    files, digest, layout = discover(data)
    assert layout == "folders" and {f.label for f in files} == {"music", "speech", "noise", "silence"}
    assert all(any(f.label == lab and f.split == "valid" for f in files) for lab in ("music", "speech", "noise"))

    def cfg(out):
        return ClassifierTrainConfig(data=data, out=out, steps=12, batch_size=8, valid_every=6, checkpoint_every=3, torch_threads=1)

    whole = train(cfg(tmp_path / "whole"), progress=False)
    assert whole["completed"] and whole["steps"] == 12 and whole["labels"] == ["music", "speech", "noise", "silence"]
    assert whole["best_accuracy"] is not None
    rows = (tmp_path / "whole" / "log.jsonl").read_text().splitlines()
    assert len(rows) == 2 and (tmp_path / "whole" / "loss.png").stat().st_size > 1000
    # interrupted at step 5 and continued: the same weights as the uninterrupted run
    part = train(cfg(tmp_path / "resumed"), progress=False, stop_at=5)
    assert part["steps"] == 5 and not part["completed"]
    train(cfg(tmp_path / "resumed"), progress=False)
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)["model"]  # plain types and tensors only
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a changed setting is refused in one line
    with pytest.raises(UserError, match="trained with"):
        train(ClassifierTrainConfig(data=data, out=tmp_path / "whole", steps=13, batch_size=8, torch_threads=1), progress=False)
    # export: small, float16, metadata, loads back with the same outputs (to float16 rounding)
    meta = export_run(tmp_path / "whole", tmp_path / "mine.pt")
    assert meta["bytes"] < 5 * 1024 * 1024 and os.path.getsize(tmp_path / "mine.pt") == meta["bytes"]
    assert meta["data_manifest_hash"] == digest and meta["training_steps"] in (6, 12) and meta["labels"] == ["music", "speech", "noise"]
    net = load_classifier(tmp_path / "mine.pt")
    assert net.labels == ("music", "speech", "noise") and net.source.startswith("file")
    ref = ClassifierNet(net.config)
    ref.load_state_dict(torch.load(meta["source"], weights_only=True)["model"])
    x = torch.from_numpy(log_mel_frames(example("speech", 1.5, 4), 16000)[0][-50:][None])
    with torch.no_grad():
        np.testing.assert_allclose(torch.softmax(net(x), 1).numpy(), torch.softmax(ref.eval()(x), 1).numpy(), atol=2e-2)


def test_training_data_errors_are_one_line(tmp_path):
    from noisyneuron.models.classifier_training import discover

    with pytest.raises(UserError, match="no such folder"):
        discover(tmp_path / "missing")
    folder_of_folders(tmp_path / "one", {"music": 2})
    with pytest.raises(UserError, match="at least two"):
        discover(tmp_path / "one")
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(UserError, match="cannot read classifier weights"):
        load_classifier(tmp_path / "bad.pt")


# ----- calibration ----------------------------------------------------------------------------
def _laptop_mic(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A cheap microphone: band-limited to 300-3400 Hz, a resonance, hiss at -50 dBFS."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / 16000)
    shape = 1 / np.sqrt(1 + (300 / np.maximum(f, 1)) ** 4) / np.sqrt(1 + (f / 3400) ** 4) * (1 + 2 * np.exp(-0.5 * ((f - 1200) / 150) ** 2))
    y = np.fft.irfft(spec * shape, len(x)) * 0.3
    return y + rng.standard_normal(len(x)) * 10 ** (-50 / 20)


def test_calibrate_from_a_folder_reports_and_does_not_lose_accuracy(tiny, tmp_path):
    from noisyneuron.models.classifier import default_profile_path
    from noisyneuron.models.classifier_calibration import calibrate, recordings_from_folder

    folder = folder_of_folders(tmp_path / "mine", {"music": 2, "speech": 2, "noise": 2, "silence": 1}, seconds=6.0, colour=_laptop_mic)
    recs = recordings_from_folder(folder)
    assert {r.label for r in recs} == {"music", "speech", "noise", "silence"}
    profile = default_profile_path()
    assert str(profile).startswith(str(tmp_path / "config"))  # $XDG_CONFIG_HOME is respected
    r = calibrate(tiny, recs, profile)
    assert 0.0 <= r["before"]["accuracy"] <= 1.0 and r["after"]["accuracy"] >= r["before"]["accuracy"]
    assert r["before"]["windows"] == r["after"]["windows"] > 10
    assert set(r["after"]["per_label"]) == {"music", "speech", "noise", "silence"}
    # the gate moved above the hissy "silence" of this microphone, and silence is now recognised
    silence = next(x for x in recs if x.label == "silence").audio
    assert r["gate_after"] > 10 * np.log10(np.mean(silence.astype(np.float64) ** 2)) > r["gate_before"]
    assert r["after"]["per_label"]["silence"] > r["before"]["per_label"]["silence"]
    net = load_classifier()  # the profile is now preferred over the shipped weights
    assert net.source == f"profile {profile}" and net.export_meta["profile"]["accuracy_after"] == r["after"]["accuracy"]
    assert net.export_meta["stream"]["silence_dbfs"] == r["gate_after"]
    assert not load_classifier(tiny.path, use_profile=True).source.startswith("profile")  # an explicit file wins
    # the frozen part did not move
    for (k, a), (_, b) in zip(tiny.features.state_dict().items(), net.features.state_dict().items()):
        assert torch.equal(a, b), k
    with pytest.raises(UserError, match="not the model's"):
        calibrate(tiny, [type(recs[0])("birds", recs[0].audio, 16000, "x")], tmp_path / "p.pt")


# ----- evaluation -----------------------------------------------------------------------------
def test_ours_is_evaluated_beside_the_peers(tiny, tmp_path, monkeypatch):
    from noisyneuron.evaluation.classifier import CLASSIFIER_SYSTEMS, evaluate_classifiers
    from noisyneuron.datasets.classification import make_fixture_clips

    assert "ours" in CLASSIFIER_SYSTEMS
    monkeypatch.setenv("NOISYNEURON_CLASSIFIER_WEIGHTS", str(tiny.path))
    data = tmp_path / "fx"
    make_fixture_clips(data, seed=1, per_split=2, seconds=2.0)
    report = evaluate_classifiers(data, ["ours", "energy-baseline"], "test", tmp_path / "report", progress=False)
    ours = report["systems"]["ours"]
    assert ours["classes"] == ["music", "speech", "noise", "silence"] and ours["hop"] == 1600
    assert 0.0 <= ours["accuracy"] <= 1.0 and ours["realtime_factor"] > 0
    assert ours["per_class"]["silence"]["recall"] == 1.0  # the gate
    assert (tmp_path / "report" / "confusion-ours.png").is_file()


class _RunsCodeWhenUnpickled:
    """What a hostile checkpoint holds: unpickling it (weights_only=False) creates a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_checkpoints_load_with_weights_only_so_a_checkpoint_cannot_run_code(tmp_path):
    """Resume and export read checkpoints with torch.load(weights_only=True): a file holding more
    than tensors and plain types is refused in one line and nothing in it runs."""
    from noisyneuron.models.classifier_options import ClassifierTrainConfig
    from noisyneuron.models.classifier_training import CHECKPOINT_FORMAT, export_run, train

    data = folder_of_folders(tmp_path / "sounds", {"music": 2, "speech": 2}, seconds=1.0)
    run = tmp_path / "run"
    run.mkdir()
    marker = tmp_path / "code-ran"
    torch.save({"format": CHECKPOINT_FORMAT, "step": 1, "payload": _RunsCodeWhenUnpickled(marker)}, run / "checkpoint.pt")
    cfg = ClassifierTrainConfig(data=data, out=run, steps=2, batch_size=4, torch_threads=1)
    for attempt in (lambda: train(cfg, progress=False), lambda: export_run(run, tmp_path / "x.pt")):
        with pytest.raises(UserError) as info:
            attempt()
        assert "checkpoint.pt" in str(info.value) and "\n" not in str(info.value)
        assert not marker.exists(), "loading the checkpoint ran code from it"
