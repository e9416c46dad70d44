"""Config file and presets: where they live, reading, command-line overrides, one-line errors,
atomic writes."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from noisyneuron.cli import build_parser
from noisyneuron.control.live import LiveSpec
from noisyneuron.control.config import (
    Config,
    ConfigError,
    apply_chain_parameters,
    atomic_write_text,
    config_dir,
    default_config_path,
    list_presets,
    load_config,
    load_preset,
    presets_dir,
    save_config,
    save_preset,
)
from noisyneuron.control.surface import ControlSurface
from noisyneuron.realtime.chains import build_chain

FULL = """
[devices]
input = "USB"
output = 3
samplerate = 44100
blocksize = 128
buffer_blocks = 3

[chain]
name = "centre-cut"

[chain.parameters]
"karaoke.vocals" = -12.0
"karaoke.width" = 40
"chain.mix" = "off"

[osc]
host = "0.0.0.0"
port = 9100
allow = ["192.168.1.0/24"]
feedback_hz = 15

[midi]
inputs = ["nanoKONTROL2"]
virtual = true
feedback = "virtual"

[[midi.mappings.cc]]
control = "karaoke.vocals"
cc = 7
"""


@pytest.fixture
def xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


def test_config_dir_respects_xdg(xdg, monkeypatch):
    assert config_dir() == xdg / "noisyneuron"
    assert default_config_path() == xdg / "noisyneuron" / "config.toml"
    assert presets_dir() == xdg / "noisyneuron" / "presets"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert config_dir() == Path.home() / ".config" / "noisyneuron"


def test_missing_default_file_gives_defaults_but_a_named_file_must_exist(xdg, tmp_path):
    config = load_config()
    assert config.path is None and config.devices.blocksize is None and not config.osc.enabled
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


def test_full_file_is_read(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(FULL)
    c = load_config(path)
    assert (c.devices.input, c.devices.output, c.devices.samplerate, c.devices.blocksize, c.devices.buffer_blocks) == (
        "USB", 3, 44100, 128, 3)
    assert c.chain.name == "centre-cut"
    assert c.chain.parameters["karaoke.vocals"] == -12.0 and c.chain.parameters["chain.mix"] == -math.inf
    assert c.osc.enabled and c.osc.host == "0.0.0.0" and c.osc.port == 9100 and c.osc.allow == ["192.168.1.0/24"]
    assert c.osc.feedback_hz == 15
    assert c.midi.enabled and c.midi.inputs == ["nanoKONTROL2"] and c.midi.virtual and c.midi.feedback == "virtual"
    from noisyneuron.control.midi_map import MidiMap

    mapping = MidiMap.from_dict(c.midi.mappings)
    assert mapping.cc[0].control == "karaoke.vocals" and mapping.cc[0].cc == 7


def test_unquoted_dotted_parameter_keys_work_too(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[chain.parameters]\nkaraoke.vocals = -6\n")
    assert load_config(path).chain.parameters == {"karaoke.vocals": -6.0}


@pytest.mark.parametrize("text,key", [
    ("[devices]\nblocksize = \"big\"\n", "devices.blocksize"),
    ("[devices]\nblocksize = 4\n", "devices.blocksize"),
    ("[devices]\nblocksze = 256\n", "devices.blocksze"),
    ("[osc]\nport = 70000\n", "osc.port"),
    ("[osc]\nallow = 5\n", "osc.allow"),
    ("[midi]\nvirtual = \"yes\"\n", "midi.virtual"),
    ("[chain]\nname = \"nope\"\n", "chain.name"),
    ("[chain.parameters]\n\"karaoke.vocals\" = true\n", "chain.parameters.karaoke.vocals"),
    ("[mystery]\nx = 1\n", "mystery"),
    ("devices = 3\n", "devices"),
])
def test_bad_file_is_one_line_naming_file_and_key(tmp_path, text, key):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}:"), message


def test_bad_toml_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[devices]\nblocksize = = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: not valid TOML") and "line 2" in str(info.value)


def test_cli_flags_override_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(FULL)
    parser = build_parser()
    args = parser.parse_args(["live", "--config", str(path)])
    spec = LiveSpec.resolve(args, load_config(path))
    assert (spec.chain, spec.blocksize, spec.buffer_blocks, spec.sample_rate, spec.input, spec.output) == (
        "centre-cut", 128, 3, 44100, "USB", "3")
    args = parser.parse_args(["live", "--config", str(path), "--chain", "separator", "-b", "512", "-i", "mic"])
    spec = LiveSpec.resolve(args, load_config(path))
    assert (spec.chain, spec.blocksize, spec.input) == ("separator", 512, "mic")


def test_defaults_without_any_file(xdg):
    args = build_parser().parse_args(["live"])
    spec = LiveSpec.resolve(args, load_config(None))
    assert (spec.chain, spec.blocksize, spec.buffer_blocks, spec.input) == ("karaoke", 256, 2, None)


def test_chain_parameters_then_set_on_the_command_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(FULL)
    config = load_config(path)
    chain = build_chain("centre-cut")
    surface = ControlSurface(chain)
    assert apply_chain_parameters(surface, config, "centre-cut")
    assert surface.get("karaoke.vocals").value == -12.0 and surface.get("chain.mix").value == 0.0
    # another chain: the file's parameters are for centre-cut, so they are left out
    assert not apply_chain_parameters(ControlSurface(build_chain("centre-cut")), config, "separator")
    path.write_text('[chain]\nname = "centre-cut"\n[chain.parameters]\n"karaoke.nope" = 1\n')
    with pytest.raises(ConfigError) as info:
        apply_chain_parameters(ControlSurface(build_chain("centre-cut")), load_config(path), "centre-cut")
    assert str(info.value).startswith(f"{path}: chain.parameters.karaoke.nope: no such control")


def test_save_and_read_back(tmp_path):
    path = tmp_path / "sub" / "config.toml"
    config = Config()
    config.devices.blocksize = 512
    config.devices.output = "USB"
    config.chain.name = "separator"
    config.chain.parameters = {"separator.vocals": -60.0, "separator.drums": -math.inf}
    config.osc.enabled = True
    config.osc.port = 9200
    config.midi.mappings = {"cc": [{"control": "separator.vocals", "channel": 1, "cc": 7}]}
    assert save_config(config, path) == path
    back = load_config(path)
    assert back.devices.blocksize == 512 and back.devices.output == "USB" and back.chain.name == "separator"
    assert back.chain.parameters == {"separator.vocals": -60.0, "separator.drums": -math.inf}
    assert back.osc.enabled and back.osc.port == 9200
    assert back.midi.mappings == config.midi.mappings
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temporary file left


def test_saving_keeps_the_users_comments_and_layout(tmp_path):
    """The TUI saves the config the user wrote by hand: comments, order and untouched values stay."""
    path = tmp_path / "config.toml"
    path.write_text("# my studio\n" + FULL.replace("blocksize = 128", "blocksize = 128  # low latency for the booth")
                    .replace("[osc]", "# REAPER talks to us here\n[osc]"))
    config = load_config(path)
    config.devices.blocksize = 256
    config.chain.parameters["karaoke.vocals"] = -20.0
    save_config(config, path)
    text = path.read_text()
    assert text.startswith("# my studio\n")
    assert "# REAPER talks to us here\n[osc]" in text
    assert "blocksize = 256" in text and "# low latency for the booth" in text
    assert text.index("[devices]") < text.index("[chain]") < text.index("[osc]") < text.index("[midi]")
    back = load_config(path)
    assert back.devices.blocksize == 256 and back.chain.parameters["karaoke.vocals"] == -20.0
    assert back.chain.parameters["chain.mix"] == -math.inf and back.osc.port == 9100
    assert back.midi.mappings == config.midi.mappings


def test_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text("[devices]\nblocksize = 128\n")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    config = Config()
    config.devices.blocksize = 1024
    with pytest.raises(OSError):
        save_config(config, path)
    assert path.read_text() == "[devices]\nblocksize = 128\n"  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # the temporary file is gone
    monkeypatch.undo()
    atomic_write_text(path, "x = 1\n")
    assert path.read_text() == "x = 1\n"


def test_presets_round_trip(tmp_path):
    directory = tmp_path / "presets"
    assert list_presets(directory) == []
    values = {"karaoke.vocals": -12.0, "karaoke.bypass": 1.0, "chain.mix": 80.0}
    path = save_preset("Quiet vox / live", values, "centre-cut", directory)
    assert path.parent == directory and path.name == "Quiet vox _ live.toml"
    assert list_presets(directory) == ["Quiet vox _ live"]
    preset = load_preset("Quiet vox / live", directory)
    assert preset.name == "Quiet vox / live" and preset.chain == "centre-cut" and preset.values == values
    assert load_preset(path).values == values  # by path too
    with pytest.raises(ConfigError, match="no such preset.*saved presets: Quiet vox _ live"):
        load_preset("other", directory)
    bad = directory / "bad.toml"
    bad.write_text('[parameters]\n"karaoke.vocals" = "loud"\n')
    with pytest.raises(ConfigError) as info:
        load_preset("bad", directory)
    assert str(info.value).startswith(f"{bad}: parameters.karaoke.vocals:")


def test_live_reports_a_bad_config_in_one_line(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "bad.toml"
    path.write_text("[osc]\nport = \"x\"\n")
    r = subprocess.run([sys.executable, "-m", "noisyneuron", "live", "--config", str(path), "--headless"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == f"noisyneuron: error: {path}: osc.port: must be an integer, got a string 'x'"


def test_config_profile_and_caches_follow_one_platform_rule(monkeypatch, tmp_path):
    """The config file, the classifier's calibration profile and the caches all come from
    noisyneuron.paths (platformdirs): on Linux $XDG_CONFIG_HOME / $XDG_CACHE_HOME, and
    $NOISYNEURON_CACHE_DIR moves the cache."""
    from noisyneuron import paths
    from noisyneuron.control.config import config_dir, default_config_path
    from noisyneuron.models.classifier import PROFILE_ENV, default_profile_path
    from noisyneuron.datasets.sources import source_cache_dir

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    monkeypatch.delenv(paths.CACHE_ENV, raising=False)
    monkeypatch.delenv("NOISYNEURON_SOURCE_CACHE", raising=False)
    assert config_dir() == paths.config_dir() == tmp_path / "cfg" / "noisyneuron"
    assert default_config_path().parent == default_profile_path().parent == config_dir()
    assert source_cache_dir() == tmp_path / "cache" / "noisyneuron" / "sources"
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert paths.cache_dir() == tmp_path / "elsewhere"
    assert source_cache_dir() == tmp_path / "elsewhere" / "sources"
