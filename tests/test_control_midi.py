"""MIDI control over real JACK MIDI ports: CC (7 and 14 bit), soft takeover, learn, notes, junk,
feedback out, a JACK server going away and coming back; and the TOML map format.

The controller opens its virtual input (a JACK MIDI port); the test sends from its own JACK MIDI
port (python-rtmidi, raw bytes so that malformed messages can be sent too) wired with JACK-Client,
and polls the control surface until the change lands.
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import time

import mido
import pytest

from noisyneuron.control.midi import MidiController, open_backend
from noisyneuron.control.midi_map import CCMapping, MidiMap, MidiMapError, NoteMapping
from noisyneuron.control.surface import ControlSurface
from noisyneuron.errors import UserError
from noisyneuron.realtime.chains import build_chain

_names = itertools.count(1)


def wait_for(predicate, timeout: float = 2.0, interval: float = 0.003):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


@pytest.fixture
def surface():
    return ControlSurface(build_chain("centre-cut"))  # processor "karaoke": the DSP centre cut


@pytest.fixture(scope="module")
def jack_client(jack_server):
    import jack

    client = jack.Client("nn-midi-test", no_start_server=True)
    yield client
    client.close()


class Sender:
    """A JACK MIDI output wired to a controller's virtual input; sends raw bytes."""

    def __init__(self, client, target_client: str, name: str) -> None:
        import rtmidi

        self.rt = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=name)
        self.rt.open_virtual_port("out")
        client.connect(f"{name}:out", f"{target_client}:{target_client}")
        time.sleep(0.03)  # the connection is in the graph from the next period (5.3 ms)

    def send(self, *data: int) -> None:
        self.rt.send_message(list(data))

    def msg(self, kind: str, **kw) -> None:
        self.send(*mido.Message(kind, **kw).bytes())

    def cc(self, control: int, value: int, channel: int = 0) -> None:
        self.msg("control_change", channel=channel, control=control, value=value)

    def close(self) -> None:
        self.rt.close_port()
        self.rt.delete()


@pytest.fixture
def rig(jack_client, surface):
    """make(mapping, **kw) -> (controller, sender): a started controller and a wired sender."""
    made = []

    def make(mapping: MidiMap, target=None, **kw):
        n = next(_names)
        name = f"nntest{n}"
        kw.setdefault("poll_interval", 0.001)
        controller = MidiController(target or surface, virtual=True, mapping=mapping, api="jack",
                                    virtual_name=name, feedback_name=f"{name} feedback", **kw).start()
        made.append(controller)
        sender = Sender(jack_client, name, f"nnsend{n}")
        made.append(sender)
        return controller, sender

    yield make
    for thing in reversed(made):
        if isinstance(thing, MidiController):
            st = thing.status()
            assert st.errors == 0 and st.running
            thing.stop()
        else:
            thing.close()


def received(controller, n: int) -> bool:
    return wait_for(lambda: controller.status().received >= n)


# ----- CC ------------------------------------------------------------------------------------------------
@pytest.mark.jack
def test_7bit_cc_sets_the_normalised_value(rig, surface):
    controller, sender = rig(MidiMap([CCMapping("karaoke.width", 0, 7, takeover="jump")]))
    width = surface.find("karaoke.width").parameter
    for value in (64, 127, 0, 100):
        sender.cc(7, value)
        assert wait_for(lambda: abs(width.value - value / 127 * 100) < 1e-9), (value, width.value)
    st = controller.status()
    assert (st.received, st.applied, st.ignored) == (4, 4, 0)
    assert st.api == "JACK" and str(st.inputs[0]).endswith("(virtual)")


@pytest.mark.jack
def test_14bit_cc_lands_within_one_step_of_16383(rig, surface):
    controller, sender = rig(MidiMap([CCMapping("karaoke.high_cut", 0, 1, bits=14, takeover="jump")]))
    high_cut = surface.find("karaoke.high_cut").parameter
    span = high_cut.maximum - high_cut.minimum
    value = 12345  # (96 << 7) | 57: between two 7-bit steps
    assert min(abs(value / 16383 - k / 127) for k in range(128)) > 10 / 16383
    sender.cc(1, value >> 7)
    sender.cc(33, value & 0x7F)
    assert wait_for(lambda: abs(high_cut.normalized - value / 16383) < 1 / 16383), high_cut.value
    assert abs(high_cut.value - (high_cut.minimum + span * value / 16383)) < 1e-6
    assert controller.status().applied == 1  # the MSB waited for its LSB: one change, not two
    # an LSB alone (controllers that send the MSB only when it changes) uses the last MSB
    sender.cc(33, 100)
    assert wait_for(lambda: abs(high_cut.normalized - ((96 << 7) | 100) / 16383) < 1e-9)
    # an MSB alone is applied after msb_timeout with the LSB reset to 0
    sender.cc(1, 20)
    assert wait_for(lambda: abs(high_cut.normalized - (20 << 7) / 16383) < 1e-9)


@pytest.mark.jack
def test_soft_takeover_waits_for_the_knob_to_reach_the_value(rig, surface):
    controller, sender = rig(MidiMap([CCMapping("karaoke.width", 0, 10)]))
    width = surface.find("karaoke.width").parameter
    surface.set("karaoke.width", 50.0, source="tui")
    for value in (10, 20, 30):  # the knob far below the value: nothing moves
        sender.cc(10, value)
    received(controller, 3)
    assert width.value == 50.0 and controller.status().held == 3
    sender.cc(10, 70)  # crosses 50 % between two messages: picks up
    assert wait_for(lambda: abs(width.value - 70 / 127 * 100) < 1e-9)
    sender.cc(10, 80)  # and follows
    assert wait_for(lambda: abs(width.value - 80 / 127 * 100) < 1e-9)
    surface.set("karaoke.width", 20.0, source="osc")  # someone else moves it: the knob lets go
    sender.cc(10, 81)
    received(controller, 6)
    assert width.value == 20.0
    sender.cc(10, 26)  # within 2 % of 20 %: picks up without crossing
    assert wait_for(lambda: abs(width.value - 26 / 127 * 100) < 1e-9)
    st = controller.status()
    assert (st.held, st.applied, st.ignored) == (4, 3, 0)


# ----- learn -----------------------------------------------------------------------------------------------
@pytest.mark.jack
def test_midi_learn_maps_7bit_and_14bit_ccs_and_replaces(rig, surface):
    controller, sender = rig(MidiMap())
    learned = []
    controller.on_learn(learned.append)
    width = surface.find("karaoke.width").parameter
    state = controller.learn("karaoke.width")
    assert state.armed == "karaoke.width" and "karaoke.width" in state.message
    sender.cc(21, 5, channel=3)
    assert wait_for(lambda: controller.learn_state().armed is None)
    assert controller.learn_state().last == CCMapping("karaoke.width", 3, 21, 7)
    assert learned == [CCMapping("karaoke.width", 3, 21, 7)]
    assert width.value == 60.0  # learning does not move the control
    sender.cc(21, 100, channel=3)  # from 4 % across 60 %: picks up
    assert wait_for(lambda: abs(width.value - 100 / 127 * 100) < 1e-9)

    controller.learn("/noisyneuron/karaoke/high_cut")  # an address works too
    sender.cc(2, 50)
    sender.cc(34, 3)
    assert wait_for(lambda: controller.learn_state().armed is None)
    assert controller.learn_state().last == CCMapping("karaoke.high_cut", 0, 2, 14)

    controller.learn("karaoke.low_cut")  # CC 21 again: the width mapping goes
    sender.cc(21, 7, channel=3)
    assert wait_for(lambda: controller.learn_state().armed is None)
    assert controller.learn_state().replaced == (CCMapping("karaoke.width", 3, 21, 7),)
    assert [m.control for m in controller.mapping.cc] == ["karaoke.high_cut", "karaoke.low_cut"]

    controller.learn("karaoke.bypass")  # a pad: a note mapping, toggle for on/off controls
    sender.msg("note_on", channel=9, note=40, velocity=90)
    assert wait_for(lambda: controller.learn_state().armed is None)
    assert controller.learn_state().last == NoteMapping("karaoke.bypass", 9, 40, "toggle")

    controller.learn("karaoke.vocals")
    controller.cancel_learn()
    assert controller.learn_state().armed is None and "cancelled" in controller.learn_state().message
    assert len(controller.mapping) == 3


# ----- notes -----------------------------------------------------------------------------------------------
@pytest.mark.jack
def test_notes_toggle_bypass_mute_and_solo(rig):
    separator = ControlSurface(build_chain("separator"))
    mapping = MidiMap(notes=[
        NoteMapping("separator.bypass", 9, 36, "toggle"),
        NoteMapping("separator.vocals", 9, 37, "mute"),
        NoteMapping("separator.solo", 9, 38, "solo", value=2),
        NoteMapping("separator.bypass", 9, 39, "toggle", momentary=True),
    ])
    controller, sender = rig(mapping, target=separator)
    bypass = separator.find("separator.bypass").parameter
    vocals = separator.find("separator.vocals").parameter
    solo = separator.find("separator.solo").parameter
    separator.set("separator.vocals", -12.0, source="preset")

    def note(n, velocity=100, kind="note_on"):
        sender.msg(kind, channel=9, note=n, velocity=velocity)

    note(36)
    assert wait_for(lambda: bypass.value == 1.0)
    note(36, kind="note_off")
    note(36, velocity=0)  # note on with velocity 0 is a note off
    received(controller, 3)
    assert bypass.value == 1.0
    note(36)
    assert wait_for(lambda: bypass.value == 0.0)
    note(37)
    assert wait_for(lambda: vocals.value == vocals.minimum)
    note(37)
    assert wait_for(lambda: vocals.value == -12.0)  # back to the level it had
    note(38)
    assert wait_for(lambda: solo.value == 2.0)
    note(38)
    assert wait_for(lambda: solo.value == 0.0)
    note(39)
    assert wait_for(lambda: bypass.value == 1.0)  # held...
    note(39, kind="note_off")
    assert wait_for(lambda: bypass.value == 0.0)  # ...released
    st = controller.status()
    assert st.ignored_by == {"note_off": 2} and st.applied == 8


# ----- junk ---------------------------------------------------------------------------------------------------
@pytest.mark.jack
def test_malformed_and_unmapped_messages_are_counted_never_raised(rig, surface):
    controller, sender = rig(MidiMap([CCMapping("karaoke.width", 0, 7, takeover="jump")]))
    sender.send(0xB0, 0x80, 1)  # data byte out of range
    sender.send(0x90, 60)  # too short
    sender.send(0xF0, 1, 2, 3, 0xF7)  # sysex
    sender.msg("program_change", program=5)
    sender.msg("pitchwheel", pitch=100)
    sender.cc(99, 1)  # unmapped
    sender.cc(7, 1, channel=5)  # mapped, but on channel 1
    sender.msg("note_on", note=60)  # no note mappings
    assert received(controller, 8)
    st = controller.status()
    assert st.ignored_by == {"malformed": 2, "sysex": 1, "unsupported": 2, "unmapped": 2, "wrong_channel": 1}
    assert (st.ignored, st.applied) == (8, 0)
    rng = random.Random(6)
    for i in range(200):  # random bytes: whatever the parser makes of them, nothing breaks
        junk = [rng.randrange(256) for _ in range(rng.randint(1, 3))]
        if junk[0] == 0xF0:
            junk.append(0xF7)
        if i % 10 == 0:  # rtmidi sends longer messages only as sysex; junk inside, but terminated
            # (RtMidi's JACK input holds an unterminated sysex open until some event ends in F7)
            junk = [0xF0] + [rng.randrange(256) for _ in range(rng.randint(1, 5))] + [0xF7]
        sender.send(*junk)
        if i % 25 == 24:
            time.sleep(0.01)
    time.sleep(0.1)
    sender.cc(7, 127)
    assert wait_for(lambda: surface.find("karaoke.width").parameter.value == 100.0)
    st = controller.status()
    assert st.errors == 0 and st.running and st.ignored > 8


# ----- feedback ---------------------------------------------------------------------------------------------
@pytest.mark.jack
def test_feedback_sends_changes_from_other_sources(rig, surface, jack_client):
    import rtmidi

    mapping = MidiMap(
        [CCMapping("karaoke.width", 0, 7), CCMapping("karaoke.high_cut", 1, 3, bits=14)],
        [NoteMapping("karaoke.bypass", 9, 36, "toggle")],
    )
    controller, sender = rig(mapping, feedback=True)
    name = controller.virtual_name + " feedback"
    listener = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name="nnfbtest")
    listener.open_virtual_port("in")
    try:
        jack_client.connect(f"{name}:{name}", "nnfbtest:in")
        time.sleep(0.03)

        def collect(n, timeout=2.0):
            got = []
            deadline = time.monotonic() + timeout
            while len(got) < n and time.monotonic() < deadline:
                item = listener.get_message()
                if item is None:
                    time.sleep(0.002)
                else:
                    got.append(item[0])
            return got

        collect(10, timeout=0.05)  # what was sent at start, if the connection was quick enough
        controller.resync_feedback()  # everything mapped, as at start
        high_cut = surface.find("karaoke.high_cut").parameter
        raw = round(high_cut.normalized * 16383)
        assert sorted(collect(4)) == sorted([[0xB0, 7, round(0.6 * 127)], [0xB1, 3, raw >> 7], [0xB1, 35, raw & 0x7F],
                                             [0x99, 36, 0]])
        surface.set("karaoke.width", 25.0, source="osc")
        assert collect(1) == [[0xB0, 7, round(0.25 * 127)]]
        surface.set("karaoke.high_cut", 0.3, normalized=True, source="tui")
        raw = round(high_cut.normalized * 16383)
        assert collect(2) == [[0xB1, 3, raw >> 7], [0xB1, 35, raw & 0x7F]]
        surface.toggle("karaoke.bypass", source="tui")
        assert collect(1) == [[0x99, 36, 127]]
        sender.cc(7, 32)  # the knob that made a change is not echoed (25 % -> 32/127: picked up)
        assert wait_for(lambda: controller.status().applied == 1)
        assert collect(1, timeout=0.1) == []
        st = controller.status()
        assert st.feedback.state == "open" and st.sent >= 8
    finally:
        listener.close_port()
        listener.delete()


# ----- ports going away ---------------------------------------------------------------------------------------
@pytest.mark.jack
def test_jack_server_stopping_and_coming_back(jack_server, surface, monkeypatch):
    import jack

    name = f"nn-midi-restart-{os.getpid()}"
    monkeypatch.setenv("JACK_DEFAULT_SERVER", name)

    def start_server():
        proc = subprocess.Popen(["jackd", "-n", name, "-d", "dummy", "-r", "48000", "-p", "256"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["jack_wait", "-w", "-t", "10"], check=True, capture_output=True)
        return proc

    proc = start_server()
    controller = None
    try:
        controller = MidiController(surface, mapping=MidiMap([CCMapping("karaoke.width", 0, 7, takeover="jump")]),
                                    api="jack", virtual_name="nnrestart", watch_interval=0.1,
                                    poll_interval=0.001).start()
        proc.terminate()
        proc.wait(10)
        assert wait_for(lambda: controller.status().inputs[0].state == "lost", timeout=3.0)
        st = controller.status()
        assert "JACK server stopped" in st.error and st.running and st.errors == 0
        proc = start_server()
        assert wait_for(lambda: controller.status().inputs[0].state == "open", timeout=3.0), controller.status()
        assert controller.status().error == ""
        client = jack.Client("nn-midi-restart-conn", no_start_server=True)
        try:
            sender = Sender(client, "nnrestart", "nnrestartsend")
            sender.cc(7, 127)
            assert wait_for(lambda: surface.find("karaoke.width").parameter.value == 100.0)
            sender.close()
        finally:
            client.close()
        assert controller.status().errors == 0
    finally:
        if controller is not None:
            controller.stop()
        proc.terminate()
        proc.wait(10)


@pytest.mark.jack
def test_port_errors_are_one_line(jack_server, surface, capfd):
    controller = MidiController(surface, inputs=["no such controller"], virtual=False, api="jack")
    with pytest.raises(UserError) as err:
        controller.start()
    assert "no MIDI input port matches 'no such controller'; available:" in str(err.value)
    assert "\n" not in str(err.value) and not controller.running
    with pytest.raises(UserError, match="unknown MIDI API"):
        open_backend("nope")


def test_no_midi_system_is_one_line(monkeypatch, capfd):
    if os.path.exists("/dev/snd/seq"):
        pytest.skip("this machine has an ALSA sequencer")
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "nn-no-such-server")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    monkeypatch.delenv("MIDO_BACKEND", raising=False)
    monkeypatch.delenv("NOISYNEURON_MIDI_API", raising=False)
    with pytest.raises(UserError, match=r"^no MIDI system: start JACK or load snd-seq"):
        open_backend()
    assert capfd.readouterr().err == ""  # libjack's complaints are kept off the terminal


# ----- the TOML map ---------------------------------------------------------------------------------------
def test_map_round_trips_through_toml_and_dict(tmp_path, surface):
    mapping = MidiMap(
        [CCMapping("karaoke.vocals", 0, 7), CCMapping("/noisyneuron/karaoke/high_cut", 15, 1, 14, "jump")],
        [NoteMapping("karaoke.bypass", 9, 36, "toggle", momentary=True), NoteMapping("karaoke.vocals", 9, 37, "mute")],
    )
    path = mapping.save(tmp_path / "sub" / "midi.toml")
    assert MidiMap.load(path) == mapping
    assert MidiMap.from_dict(mapping.to_dict()) == mapping
    assert mapping.to_dict()["cc"][1] == {"control": "/noisyneuron/karaoke/high_cut", "channel": 16, "cc": 1,
                                          "bits": 14, "takeover": "jump"}
    config = tmp_path / "config.toml"  # the config file's form: [[midi.mappings.cc]]
    config.write_text('[midi]\nenabled = true\n\n' + mapping.to_toml(table="midi.mappings"))
    assert MidiMap.load(config) == mapping
    as_list = [*mapping.to_dict()["cc"], *mapping.to_dict()["note"]]  # a list of tables works too
    assert MidiMap.from_dict(as_list) == mapping
    bound = mapping.bind(surface)
    assert len(bound.cc) == 2 and len(bound.notes) == 2 and not bound.skipped
    other = MidiMap([CCMapping("separator.drums", 0, 8)]).bind(surface)  # another chain's control: skipped
    assert other.skipped and not other.cc


@pytest.mark.parametrize("text, message", [
    ("[[cc]]\ncontrol = 'karaoke.vocals'\ncc = 200\n", r"\[\[cc\]\] entry 1: cc 200 is out of range 0..127"),
    ("[[cc]]\ncontrol = 'a.b'\ncc = 1\n\n[[cc]]\ncontrol = 'a.c'\ncc = 40\nbits = 14\n",
     r"\[\[cc\]\] entry 2: cc 40 is out of range 0..31"),
    ("[[cc]]\ncontrol = 'a.b'\ncc = 1\nbits = 14\n\n[[cc]]\ncontrol = 'a.c'\ncc = 33\n",
     r"\[\[cc\]\] entry 2: CC 33 on channel 1 is already used by entry 1"),
    ("[[cc]]\ncontrl = 'a.b'\ncc = 1\n", r"entry 1: unknown key 'contrl'"),
    ("[[cc]]\ncc = 1\n", r"entry 1: missing control"),
    ("[[cc]]\ncontrol = 'a.b'\ncc = 1\nchannel = 0\n", r"channel 0 is out of range 1..16"),
    ("[[note]]\ncontrol = 'a.b'\nnote = 1\naction = 'solo'\n", r"\[\[note\]\] entry 1: action \"solo\" needs a value"),
    ("[[note]]\ncontrol = 'a.b'\nnote = 1\naction = 'flip'\n", r"action must be one of toggle, mute, solo"),
    ("cc = 3\n", r"cc must be written as \[\[cc\]\] tables"),
    ("[[cc]\n", r"not valid TOML"),
])
def test_bad_map_files_give_one_line_naming_file_and_entry(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(MidiMapError, match=message) as err:
        MidiMap.load(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_actions_must_suit_their_controls(tmp_path, surface):
    path = tmp_path / "m.toml"
    MidiMap(notes=[NoteMapping("karaoke.vocals", 0, 1, "toggle")]).save(path)
    with pytest.raises(MidiMapError, match=r"m.toml: \[\[note\]\] entry 1: toggle needs an on/off control"):
        MidiController(surface, virtual=False, mapping=path)
    with pytest.raises(MidiMapError, match="no such MIDI map file"):
        MidiMap.load(tmp_path / "missing.toml")


@pytest.mark.jack
def test_cli_lists_ports(jack_server, surface, capsys):
    import argparse

    from noisyneuron.control import midi

    parser = argparse.ArgumentParser()
    midi.add_cli_arguments(parser)
    with MidiController(surface, mapping=None, api="jack", virtual_name="nnclitest"):
        assert midi.cli_main(parser.parse_args(["ports", "--api", "jack", "--json"])) == 0
    import json

    listed = json.loads(capsys.readouterr().out)
    assert listed["api"] == "JACK" and "nnclitest:nnclitest" in listed["outputs"]


@pytest.mark.jack
def test_named_input_that_goes_away_is_reopened_when_it_comes_back(jack_client, surface):
    import rtmidi

    def source():
        rt = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="nnunplug")
        rt.open_virtual_port("out")
        return rt

    out = source()
    controller = MidiController(surface, inputs=["nnunplug"], virtual=False, api="jack", watch_interval=0.05,
                                mapping=MidiMap([CCMapping("karaoke.width", 0, 7, takeover="jump")])).start()
    width = surface.find("karaoke.width").parameter
    try:
        assert str(controller.status().inputs[0]) == "nnunplug:out"
        time.sleep(0.03)
        out.send_message([0xB0, 7, 0])
        assert wait_for(lambda: width.value == 0.0)
        out.close_port()
        out.delete()  # the controller is unplugged
        assert wait_for(lambda: controller.status().inputs[0].state == "lost")
        out = source()  # and plugged in again
        assert wait_for(lambda: controller.status().inputs[0].state == "open")
        time.sleep(0.03)
        out.send_message([0xB0, 7, 127])
        assert wait_for(lambda: width.value == 100.0)
        assert controller.status().errors == 0
    finally:
        controller.stop()
        out.close_port()
        out.delete()
