"""OSC control over real UDP on 127.0.0.1: set, query, list, feedback, robustness, allow-list,
round trip; and, with the chain running live on the JACK dummy server, set-to-audible latency
and a flood of 10,000 valid and malformed messages."""

from __future__ import annotations

import math
import os
import pickle
import random
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from noisyneuron.control.osc import (
    RCVBUF_BYTES,
    REJECT_REASONS,
    OscClient,
    OscError,
    OscLimits,
    OscServer,
    bench_osc_roundtrip,
    start_osc,
)
from noisyneuron.control.osc_wire import encode_bundle, encode_message, parse_packet
from noisyneuron.control.surface import ControlSurface
from noisyneuron.realtime.chain import Chain
from noisyneuron.realtime.parameters import Parameter
from noisyneuron.realtime.processor import Processor
from noisyneuron.realtime.processors.centre_cut import CentreCutKaraoke

VOCALS = "/noisyneuron/karaoke/vocals"
BYPASS = "/noisyneuron/karaoke/bypass"
MIX = "/noisyneuron/chain/mix"


@pytest.fixture
def surface():
    return ControlSurface(Chain([CentreCutKaraoke()], name="karaoke"))


@pytest.fixture
def server(surface):
    with OscServer(surface, port=0, feedback_hz=30) as s:
        yield s


@pytest.fixture
def client(server):
    with OscClient("127.0.0.1", server.port, timeout=1.0) as c:
        yield c


def _settle(server, received: int, timeout: float = 5.0) -> None:
    """Wait until the server has taken ``received`` messages and finished handling them."""
    def handled(s) -> bool:
        return s.received >= received and s.received == (
            s.applied + s.queries + s.commands + s.ignored + s.rejected_total)

    deadline = time.monotonic() + timeout
    while not handled(server.stats()) and time.monotonic() < deadline:
        time.sleep(0.002)


def _eventually(check, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def _invariant(stats) -> None:
    assert stats.received == stats.applied + stats.queries + stats.commands + stats.ignored + stats.rejected_total, stats


# ----- set and query ---------------------------------------------------------------------------------
def test_set_normalised_unit_plain_and_string_values(surface, client):
    p = surface.find(VOCALS).parameter  # -60..+6 dB
    client.send(VOCALS + "/n", 0.5)
    assert client.query(VOCALS)["f"] == pytest.approx(p.minimum + 0.5 * (p.maximum - p.minimum))
    client.send(VOCALS + "/f", -12.0)
    assert client.query(VOCALS) == {"n": pytest.approx(48 / 66), "f": -12.0, "s": "-12.0 dB"}
    client.send(VOCALS, -20.0)  # plain address, float: unit value
    assert client.query(VOCALS)["f"] == -20.0
    client.send(VOCALS, -30)  # int: unit value too
    assert client.query(VOCALS + "/f")["f"] == -30.0  # a query on the /f form answers the same
    client.send(VOCALS + "/s", "-6 dB")
    assert client.query(VOCALS)["f"] == -6.0
    client.send(VOCALS, "off")
    assert client.query(VOCALS)["s"] == "off"
    client.send(MIX + "/n", 0.25)
    assert client.query(MIX)["f"] == 25.0
    assert surface.get(MIX).value == 25.0  # through the surface, the one path


def test_query_command_list_info_and_ping(surface, client):
    client.send("/noisyneuron/query", MIX)
    got = {m.address: m.args for m in client.receive(until=MIX + "/s")}
    assert got[MIX + "/f"] == (100.0,) and got[MIX + "/n"] == (1.0,) and got[MIX + "/s"] == ("100.0 %",)
    client.send("/noisyneuron/list")
    (listing,) = client.receive(until="/noisyneuron/list")
    assert list(listing.args) == list(surface.controls)
    client.send("/noisyneuron/info", VOCALS)
    (info,) = client.receive(until="/noisyneuron/info")
    assert info.args[:6] == (VOCALS, "dB", -60.0, 6.0, -60.0, 0)
    client.send("/noisyneuron/ping", 7, "x")
    assert [(m.address, m.args) for m in client.receive(until="/noisyneuron/pong")] == [("/noisyneuron/pong", (7, "x"))]


def test_bypass_toggles_accept_int_float_bool_and_a_toggle_button(surface, server, client):
    client.send(BYPASS, 1)
    assert client.query(BYPASS)["f"] == 1.0
    client.send(BYPASS, False)
    assert client.query(BYPASS)["f"] == 0.0
    client.send(BYPASS + "/toggle")  # press
    client.send(BYPASS + "/toggle", 0)  # release: ignored
    assert client.query(BYPASS)["f"] == 1.0
    client.send(BYPASS + "/toggle", 1.0)
    assert client.query(BYPASS)["f"] == 0.0
    client.send(BYPASS, 0.7)  # a stepped control rounds
    assert client.query(BYPASS)["f"] == 1.0
    stats = server.stats()
    assert stats.applied == 5 and stats.ignored == 1 and stats.rejected_total == 0
    _invariant(stats)


def test_out_of_range_is_clamped_applied_and_counted(surface, server, client):
    client.send(VOCALS + "/f", 40.0)
    assert client.query(VOCALS)["f"] == 6.0
    client.send(VOCALS + "/n", -3.0)
    assert client.query(VOCALS)["f"] == -60.0
    client.send(VOCALS + "/f", float("-inf"))  # -inf in the unit is "off", like --set vocals=-inf
    assert client.query(VOCALS)["s"] == "off"
    stats = server.stats()
    assert stats.applied == 3 and stats.clamped == 2


def test_bundles_apply_in_order_within_the_limit(surface, server, client):
    inner = [encode_message(MIX + "/f", float(v)) for v in (10.0, 20.0, 30.0)]
    client.send_raw(encode_bundle(inner[0], encode_bundle(inner[1], inner[2])))  # nested
    assert client.query(MIX)["f"] == 30.0
    assert server.stats().applied == 3


# ----- feedback --------------------------------------------------------------------------------------
def _listener(server) -> OscClient:
    """A second socket that registers for feedback from the first (a reply port, as TouchOSC uses)."""
    return OscClient("127.0.0.1", server.port, timeout=1.0)


def test_register_feedback_of_changes_coalesced_at_a_bounded_rate(surface, server, client):
    with _listener(server) as feedback:
        client.send("/noisyneuron/register", feedback.local_port)  # from one port, feedback to another
        # the registering socket answers the server's /noisyneuron/confirm (its copy of the request;
        # see test_feedback_starts_only_after_the_nonce_comes_back_from_that_host)
        assert client.receive(1.0, until="/noisyneuron/registered")
        first = feedback.receive(0.3)
        assert first[0].address == "/noisyneuron/registered" and first[0].args == (feedback.local_port, 60.0)
        assert {m.address for m in first} >= {c.address + s for c in surface for s in ("/n", "/f", "/s")}
        assert server.clients() == [("127.0.0.1", feedback.local_port)]
        # replies to the registered sender go to its reply port
        client.send(VOCALS)
        assert [m.address for m in feedback.receive(0.3, until=VOCALS + "/s")][-1] == VOCALS + "/s"
        # 200 changes in ~0.2 s from this client and one from the UI: at most one /f per tick
        t0 = time.monotonic()
        for k in range(200):
            client.send(MIX + "/f", float(k % 100))
            time.sleep(0.001)
        surface.set(VOCALS, -18.0, source="tui")  # another source: echoed too
        client.send(MIX + "/f", 42.0)
        seen = feedback.receive(0.4)
        elapsed = time.monotonic() - t0
        mix_f = [m.args[0] for m in seen if m.address == MIX + "/f"]
        assert 0 < len(mix_f) <= math.ceil(elapsed * server.feedback_hz) + 1, (len(mix_f), elapsed)
        assert mix_f[-1] == 42.0  # the latest value wins
        assert [m.args for m in seen if m.address == VOCALS + "/s"] == [("-18.0 dB",)]
        # a value already sent is not sent again (no loops with clients that echo)
        client.send(MIX + "/f", 42.0)
        assert not [m for m in feedback.receive(0.2) if m.address.startswith(MIX)]
        client.send("/noisyneuron/unregister", feedback.local_port)
        assert feedback.receive(0.3)[-1].address == "/noisyneuron/unregistered"
        assert server.clients() == []
        surface.set(VOCALS, -10.0)
        assert feedback.receive(0.15) == []


@dataclass(frozen=True)
class _Reading:
    label: str
    confidences: dict
    level_dbfs: float
    sequence: int
    time_seconds: float


class _FakeClassifier(Processor):
    """Stands in for the classifier processor's reading() (duck-typed, like the real one)."""

    kind = "classifier"

    def __init__(self) -> None:
        super().__init__()
        self.current = None

    def process(self, block) -> None:
        pass

    def reading(self):
        return self.current


def test_meters_engine_figures_and_classifier_readings_to_clients():
    """Readings as :func:`poll_readings` gives them (an engine stand-in: meters, stats, a reading)."""
    from noisyneuron.dsp.meters import LevelMeter
    from noisyneuron.realtime.engine import EngineStats

    classifier = _FakeClassifier()
    chain = Chain([CentreCutKaraoke(), classifier], name="karaoke")
    meters = [LevelMeter(2, 48000), LevelMeter(2, 48000)]
    tone = (0.5 * np.sin(np.arange(512) / 10.0)).astype(np.float32)
    meters[1].update(np.stack([tone, 0.1 * tone], axis=1))
    engine = SimpleNamespace(chain=chain, input_meter=meters[0], output_meter=meters[1], latency_seconds=0.0427,
                             stats=lambda: EngineStats(xruns=2, late_blocks=1, processing_load_mean=0.05))
    with OscServer(ControlSurface(chain), engine, port=0, feedback_hz=50) as server, _listener(server) as fb:
        classifier.current = _Reading("music", {"music": 0.75, "speech": 0.2, "noise": 0.05}, -20.0, 1, 0.5)
        fb.send("/noisyneuron/register")
        seen = fb.receive(0.5)
        classifier.current = _Reading("speech", {"music": 0.1, "speech": 0.85, "noise": 0.05}, -22.0, 2, 1.0)
        seen2 = fb.receive(0.3)
    by = {}
    for m in seen:
        by.setdefault(m.address, []).append(m.args)
    peak = by["/noisyneuron/meter/output/peak"][-1]
    assert peak[0] == pytest.approx(20 * math.log10(0.5), abs=0.1) and peak[1] < peak[0]
    assert by["/noisyneuron/meter/input/peak"][-1] == (-120.0, -120.0)
    assert by["/noisyneuron/meter/output/peak/n"][-1][0] == pytest.approx((20 * math.log10(0.5) + 60) / 60, abs=0.01)
    assert 10 <= len(by["/noisyneuron/meter/output/rms"]) <= 0.5 * 50 + 2  # every tick, bounded
    assert by["/noisyneuron/engine/latency"] == [(pytest.approx(42.7),)]  # once: only changes
    assert by["/noisyneuron/engine/xruns"] == [(2,)] and by["/noisyneuron/engine/late_blocks"] == [(1,)]
    assert by["/noisyneuron/classifier/label"] == [("music",)]
    assert by["/noisyneuron/classifier/confidence/music"] == [(0.75,)]
    assert by["/noisyneuron/classifier/level"] == [(-20.0,)]
    changed = {m.address: m.args for m in seen2}
    assert changed["/noisyneuron/classifier/label"] == ("speech",)
    assert changed["/noisyneuron/classifier/confidence/speech"] == (pytest.approx(0.85),)
    assert "/noisyneuron/classifier/confidence/noise" not in changed  # unchanged: not re-sent


# ----- robustness ------------------------------------------------------------------------------------
def _bad_packets() -> list[tuple[bytes, str, int]]:
    """(datagram, reason expected, messages it counts as)."""
    good = encode_message(VOCALS + "/f", -12.0)
    big = encode_bundle(*[encode_message(MIX + "/f", 50.0)] * 65)
    deep = encode_message(MIX + "/f", 50.0)
    for _ in range(5):
        deep = encode_bundle(deep)
    return [
        (b"\xff\x00garbage", "malformed", 1),
        (b"", "malformed", 1),
        (good[:-2], "malformed", 1),  # truncated float
        (b"/noisyneuron/karaoke/vocals\x00,x\x00\x00\x00\x00\x00\x01", "malformed", 1),  # unknown type tag
        (b"/noisyneuron/\xc3\x28\x00\x00,f\x00\x00\x00\x00\x00\x00", "malformed", 1),  # not UTF-8
        (b"/noisyneuron/karaoke/vocals/f", "malformed", 1),  # no terminating NUL
        (b"#bundle\x00" + b"\x00" * 8 + b"\x00\x00\x01\x00", "malformed", 1),  # element past the end
        (big, "bundle_too_large", 1),
        (deep, "bundle_too_large", 1),
        (encode_message(VOCALS, "x" * 20000), "too_large", 1),
        (encode_message("/noisyneuron/karaoke/nope", 1.0), "unknown_address", 1),
        (encode_message("/other/thing", 1.0), "unknown_address", 1),
        (encode_message("/noisyneuron/karaoke/*", 1.0), "unknown_address", 1),  # no wildcards
        (encode_message(VOCALS, "loud"), "wrong_type", 1),
        (encode_message(VOCALS, b"\x01\x02"), "wrong_type", 1),
        (encode_message(VOCALS, True), "wrong_type", 1),  # T/F only for toggles
        (encode_message(VOCALS, 1.0, 2.0), "wrong_arguments", 1),
        (encode_message("/noisyneuron/query"), "wrong_arguments", 1),
        (encode_message("/noisyneuron/register", 70000), "wrong_type", 1),
        (encode_message(VOCALS, float("nan")), "nonfinite", 1),
        (encode_message(VOCALS + "/f", float("inf")), "nonfinite", 1),
        (encode_message(VOCALS + "/n", float("-inf")), "nonfinite", 1),
        (b"/noisyneuron/karaoke/vocals\x00,I\x00\x00", "nonfinite", 1),  # OSC infinitum
        (encode_bundle(encode_message(MIX + "/f", 10.0), encode_message(MIX + "/f", float("nan"))), "nonfinite", 2),
    ]


def test_malformed_input_is_rejected_counted_and_the_server_keeps_answering(surface, server, client):
    before = surface.snapshot()
    expected = dict.fromkeys(REJECT_REASONS, 0)
    total = 0
    for data, reason, count in _bad_packets():
        client.send_raw(data)
        expected[reason] += 1
        total += count
    _settle(server, total)
    stats = server.stats()
    assert stats.rejected == expected
    assert stats.received == total and stats.applied == 1  # the good half of the last bundle
    _invariant(stats)
    assert {k: v for k, v in surface.snapshot().items() if k != "chain.mix"} == {
        k: v for k, v in before.items() if k != "chain.mix"}
    assert surface.get(MIX).value == 10.0
    client.receive(0.2)  # the error replies (rate-limited)
    client.send(VOCALS + "/f", -3.0)
    assert client.query(VOCALS)["f"] == -3.0  # still answering
    assert server.running


def test_error_replies_name_the_reason_and_are_rate_limited(server, client):
    for _ in range(100):
        client.send("/noisyneuron/karaoke/nope", 1.0)
    errors = [m for m in client.receive(0.5) if m.address == "/noisyneuron/error"]
    assert errors[0].args == ("unknown_address", "/noisyneuron/karaoke/nope")
    assert len(errors) <= 2 * 20  # at most 20 a second (the burst may straddle a second)
    assert server.stats().rejected["unknown_address"] == 100


def test_allow_list_is_enforced_and_required_off_loopback(surface):
    with OscServer(surface, port=0, allow=["10.1.2.3", "192.168.0.0/16"]) as server, \
            OscClient("127.0.0.1", server.port) as c:
        c.send(VOCALS + "/f", -6.0)
        c.send(VOCALS)
        assert c.receive(0.3) == []  # no reply either: refused senders learn nothing
        stats = server.stats()
        assert stats.rejected["not_allowed"] == 2 and stats.applied == 0
    assert surface.get(VOCALS).value == -60.0
    with OscServer(surface, port=0, allow="127.0.0.0/8") as server, OscClient("127.0.0.1", server.port) as c:
        c.send(VOCALS + "/f", -6.0)
        assert c.query(VOCALS)["f"] == -6.0
    with pytest.raises(OscError) as info:
        OscServer(surface, host="0.0.0.0", port=0)
    assert "allow-list" in str(info.value) and "\n" not in str(info.value)
    with OscServer(surface, host="0.0.0.0", port=0, allow=["127.0.0.1"]) as server, \
            OscClient("127.0.0.1", server.port) as c:
        assert c.query(VOCALS)["f"] == -6.0


def test_port_zero_reports_the_port_busy_port_is_one_line_and_rcvbuf_is_raised(surface):
    with start_osc(surface, port=0) as server:
        assert server.port > 0 and str(server.port) in server.describe()
        if os.geteuid() == 0 or _rmem_max() >= RCVBUF_BYTES:
            assert server.rcvbuf_bytes >= RCVBUF_BYTES, server.rcvbuf_bytes
        with pytest.raises(OscError) as info:
            start_osc(surface, port=server.port)
        assert "\n" not in str(info.value) and str(server.port) in str(info.value)
    assert not server.running


def _rmem_max() -> int:
    try:
        with open("/proc/sys/net/core/rmem_max") as f:
            return int(f.read())
    except OSError:
        return 0


def test_burst_of_5000_messages_is_received_whole(surface, server, client):
    """With the 4 MB receive buffer a burst sent as fast as possible loses nothing (208 KB loses most)."""
    data = [encode_message(MIX + "/f", float(k % 100)) for k in range(5000)]
    for d in data:
        client.send_raw(d)
    _settle(server, 5000)
    assert server.stats().applied == 5000
    assert surface.get(MIX).value == 4999 % 100


def test_our_encoding_is_python_oscs_and_back():
    from pythonosc.osc_bundle import OscBundle
    from pythonosc.osc_message import OscMessage as PyOscMessage

    data = encode_message("/a/b", 1, 2.5, "x", True, False, None, b"\x01\x02\x03", 2**40)
    assert PyOscMessage(data).params == [1, 2.5, "x", True, False, None, b"\x01\x02\x03", 2**40]
    bundle = OscBundle(encode_bundle(data, encode_message("/c")))
    assert [m.address for m in bundle] == ["/a/b", "/c"]
    built = OscClient.build("/x/y", 1.5, 3, "s", True)
    assert parse_packet(built)[0].args == (1.5, 3, "s", True)


# ----- registration: not a reflector ---------------------------------------------------------------
REGISTER, CONFIRM, REGISTERED = "/noisyneuron/register", "/noisyneuron/confirm", "/noisyneuron/registered"


def _silent(host: str = "127.0.0.1") -> socket.socket:
    """A UDP socket that never answers (a forged sender's victim, or REAPER's listen port)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    return s


def _datagrams(sock: socket.socket, seconds: float) -> list[bytes]:
    """Every datagram that reaches ``sock`` within ``seconds``."""
    out = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            out.append(sock.recv(65536))
        except (TimeoutError, socket.timeout):
            break
    return out


def _wait_for(sock: socket.socket, address: str, args: tuple, timeout: float) -> bool:
    """True once ``address args`` reaches ``sock`` (within ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except (TimeoutError, socket.timeout):
            return False
        if any(m.address == address and m.args == args for m in parse_packet(data)):
            return True
    return False


def _messages(datagrams: list[bytes]) -> list:
    return [m for d in datagrams for m in parse_packet(d)]


def _confirmed(server, address, timeout: float = 3.0) -> bool:
    return _eventually(lambda: tuple(address) in server.clients(), timeout)


def test_forged_register_and_dump_flood_sends_no_feedback(surface):
    """10,000 /register and /dump datagrams from a socket that never answers the nonce, half of
    them aiming feedback at another port on its host: that port gets a few confirmation requests
    (bounded by the per-host limit) and never a value, a meter or /registered; the sender gets
    a few requests and error replies. Before the handshake the first one alone started ~180
    datagrams a second to the victim, and each /dump returned 18 (732 B for 24 B)."""
    limits = OscLimits()
    with OscServer(surface, port=0, feedback_hz=50, limits=limits) as server, _silent() as victim, \
            _silent() as forger:
        to = ("127.0.0.1", server.port)
        register = encode_message(REGISTER, victim.getsockname()[1])
        register_self, dump = encode_message(REGISTER), encode_message("/noisyneuron/dump")
        t0 = time.monotonic()
        for k in range(10000):
            forger.sendto((register, dump, register_self, dump)[k % 4], to)
            if k % 500 == 0:
                surface.set(MIX, float(k % 100))  # changes that a registered client would be sent
        _settle(server, 10000, timeout=15)
        elapsed = time.monotonic() - t0
        surface.set(VOCALS, -20.0)
        at_victim, at_forger = _datagrams(victim, 0.3), _datagrams(forger, 0.05)
        stats = server.stats()
    victim_messages, forger_messages = _messages(at_victim), _messages(at_forger)
    assert {m.address for m in victim_messages} <= {CONFIRM}, victim_messages[:5]
    assert {m.address for m in forger_messages} <= {CONFIRM, "/noisyneuron/error"}, forger_messages[:5]
    # one request per confirm-request token, to the registered port and (a copy) to the sender
    most_requests = limits.confirm_request_burst + limits.confirm_requests_per_s * (elapsed + 0.5)
    assert len(victim_messages) <= most_requests
    most_errors = limits.error_burst + limits.errors_per_s * (elapsed + 0.5)
    assert sum(m.address == "/noisyneuron/error" for m in forger_messages) <= most_errors
    sent_bytes = sum(map(len, at_victim + at_forger))
    assert sent_bytes < 0.01 * 10000 * len(dump), sent_bytes  # under 1 % of what came in
    assert server.clients() == [] and stats.confirmed == 0
    assert stats.rejected["not_registered"] + stats.rejected["rate_limited"] >= 9900
    _invariant(stats)


def test_feedback_starts_only_after_the_nonce_comes_back_from_that_host(surface, server):
    with OscClient("127.0.0.1", server.port, auto_confirm=False) as c, _silent("127.0.0.2") as other_host:
        c.send(REGISTER)
        (request,) = c.receive(0.3)
        assert request.address == CONFIRM and len(request.args) == 1 and len(request.args[0]) == 16
        assert server.pending_registrations() == [("127.0.0.1", c.local_port)] and server.clients() == []
        surface.set(MIX, 40.0)
        assert c.receive(0.2) == []  # pending: no feedback
        c.send(CONFIRM, "0123456789abcdef")  # a wrong nonce
        other_host.sendto(encode_message(CONFIRM, request.args[0]), ("127.0.0.1", server.port))  # another host
        errors = c.receive(0.2)
        assert [(m.address, m.args[0]) for m in errors] == [("/noisyneuron/error", "bad_confirm")]
        assert server.clients() == [] and server.stats().rejected["bad_confirm"] == 2
        c.send(CONFIRM, request.args[0])  # the message sent back as it came
        got = c.receive(0.3)
        assert got[0].address == REGISTERED and got[0].args == (c.local_port, 60.0)
        assert {m.address for m in got} >= {ctl.address + s for ctl in surface for s in ("/n", "/f", "/s")}
        assert server.clients() == [("127.0.0.1", c.local_port)] and server.pending_registrations() == []
        surface.set(MIX, 60.0)
        assert [m.args for m in c.receive(0.2) if m.address == MIX + "/f"] == [(60.0,)]
        c.send(REGISTER)  # again: renews, and says so; no second confirmation
        assert [m.address for m in c.receive(0.2)] == [REGISTERED]
        c.send("/noisyneuron/dump")  # registered clients may dump
        assert len([m for m in c.receive(0.3) if m.address.endswith("/s")]) == len(list(surface))


def test_a_reply_port_that_cannot_answer_is_confirmed_by_the_registering_socket(surface, server):
    """REAPER listens on a port and cannot echo a nonce: the socket that sent /register gets a
    copy of the request and answers it (OscClient does by itself), from the same host."""
    with _silent() as reaper, OscClient("127.0.0.1", server.port) as helper:
        port = reaper.getsockname()[1]
        helper.send(REGISTER, port)
        assert [m.args for m in helper.receive(1.0, until=REGISTERED)] == [(port, 60.0)]  # to the helper too
        assert _confirmed(server, ("127.0.0.1", port))
        surface.set(MIX, 30.0)
        got = _messages(_datagrams(reaper, 0.3))
        assert got[0].address == CONFIRM and got[1].address == REGISTERED  # the request it ignored, then feedback
        assert (MIX + "/f", (30.0,)) in [(m.address, m.args) for m in got]
        helper.send(VOCALS)  # the helper's replies go to the port it registered
        assert [m.address for m in _messages(_datagrams(reaper, 0.3))][-1] == VOCALS + "/s"


def test_an_osc_client_does_not_confirm_a_registration_it_did_not_ask_for(surface, server):
    """A /register naming the port of an OscClient that never registered (forged in its name)
    stays pending: the client takes the request and does not answer it."""
    with OscClient("127.0.0.1", server.port) as bystander, _silent() as forger:
        forger.sendto(encode_message(REGISTER, bystander.local_port), ("127.0.0.1", server.port))
        assert bystander.receive(0.3) == []
        assert server.clients() == [] and server.pending_registrations() == [("127.0.0.1", bystander.local_port)]


@pytest.mark.parametrize("float_port", [True, False], ids=["float", "string"])
def test_register_takes_a_whole_number_float_port_and_refuses_others(surface, server, float_port):
    """TouchOSC buttons send floats: 9001.0 is port 9001; 9001.5, 0, 70000, NaN, true are not."""
    with _silent() as listener, OscClient("127.0.0.1", server.port, auto_confirm=False) as c:
        port = listener.getsockname()[1]
        c.send(REGISTER, float(port) if float_port else str(port))
        assert [m.address for m in _messages(_datagrams(listener, 0.3))] == [CONFIRM]
        assert server.pending_registrations() == [("127.0.0.1", port)]
        for bad in (port + 0.5, 0.0, 70000.0, -1.0, float("nan"), float("inf"), True, "12ab"):
            c.send(REGISTER, bad)
        errors = [m for m in c.receive(0.3) if m.address == "/noisyneuron/error"]
        assert [m.args for m in errors] == [("wrong_type", REGISTER)] * 8
        assert server.pending_registrations() == [("127.0.0.1", port)]


def test_registrations_expire_unless_renewed(surface):
    limits = OscLimits(registration_lifetime_s=0.4, confirm_timeout_s=0.3)
    with OscServer(surface, port=0, feedback_hz=50, limits=limits) as server, \
            OscClient("127.0.0.1", server.port, auto_renew=False) as quiet, \
            OscClient("127.0.0.1", server.port, auto_renew=False) as talker, \
            OscClient("127.0.0.1", server.port) as renewer, \
            OscClient("127.0.0.1", server.port, auto_confirm=False) as never:
        for c in (quiet, talker, renewer):
            c.send(REGISTER)
            assert c.receive(1.0, until=REGISTERED)
        never.send(REGISTER)
        assert _eventually(lambda: server.pending_registrations() == [("127.0.0.1", never.local_port)])
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5:  # over 3 lifetimes
            talker.send(MIX + "/f", 50.0)  # any message renews
            renewer.receive(0.1)  # OscClient re-registers every third of the lifetime
        clients = set(server.clients())
        assert clients == {("127.0.0.1", talker.local_port), ("127.0.0.1", renewer.local_port)}
        assert server.pending_registrations() == []  # never confirmed: forgotten after 0.3 s
        assert server.stats().expired == 1
        quiet.receive(0.2)  # drain: then nothing more comes to the expired one
        surface.set(VOCALS, -30.0)
        assert [m.address for m in renewer.receive(0.3, until=VOCALS + "/s")][-1] == VOCALS + "/s"
        assert quiet.receive(0.2) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ICMP errors reach UDP sockets via IP_RECVERR (Linux)")
def test_a_client_that_went_away_is_dropped_after_send_errors(surface):
    """Register a port, confirm from it, close it: ICMP port unreachable comes back for the
    feedback; after 3 such errors the client is dropped (long before it would expire). Another
    client is not affected."""
    with OscServer(surface, port=0, feedback_hz=100) as server, OscClient("127.0.0.1", server.port) as stays:
        gone = OscClient("127.0.0.1", server.port)
        for c in (gone, stays):
            c.send(REGISTER)
            assert c.receive(1.0, until=REGISTERED)
        gone_address = ("127.0.0.1", gone.local_port)
        assert gone_address in server.clients()
        gone.close()
        k = 0

        def dropped() -> bool:
            nonlocal k
            k += 1
            surface.set(MIX, float(k % 100))  # feedback to send
            time.sleep(0.01)
            return gone_address not in server.clients()

        assert _eventually(dropped, timeout=3.0), server.stats()
        stats = server.stats()
        assert stats.unreachable == 1 and stats.send_errors >= 3 and stats.expired == 0
        assert server.clients() == [("127.0.0.1", stays.local_port)]
        stays.receive(0.1)
        surface.set(VOCALS, -33.0)
        assert [m.args for m in stays.receive(0.5, until=VOCALS + "/s") if m.address == VOCALS + "/f"] == [(-33.0,)]


def test_feedback_bytes_per_client_and_in_all_are_capped(surface):
    """Two confirmed clients, changes on every control as fast as possible for 1 s: each
    gets at most client_bytes_per_s (bursts of 1 s), both together at most total_bytes_per_s;
    what the cap held back is sent later, so the last values arrive."""
    per_client, total = 3000.0, 4500.0
    limits = OscLimits(client_bytes_per_s=per_client, total_bytes_per_s=total)
    controls = list(surface)
    with OscServer(surface, port=0, feedback_hz=100, limits=limits) as server, \
            _silent() as a, _silent() as b, OscClient("127.0.0.1", server.port) as helper:
        for s in (a, b):
            helper.send(REGISTER, s.getsockname()[1])
            assert helper.receive(1.0, until=REGISTERED)  # the helper answers the confirm
            assert _confirmed(server, s.getsockname())
        for s in (a, b):
            _datagrams(s, 0.05)  # the registration's state, sent under the cap
        sent_before = server.stats().sent_bytes
        t0 = time.monotonic()
        k = 0
        while time.monotonic() - t0 < 1.0:
            for control in controls:
                p = control.parameter
                surface.set(control, p.minimum + (p.maximum - p.minimum) * ((k % 7) / 7))
            helper.send(VOCALS)  # replies to a client count too
            k += 1
            time.sleep(0.002)
        elapsed = time.monotonic() - t0
        received = {s: sum(map(len, _datagrams(s, 0.05))) for s in (a, b)}
        surface.set(VOCALS, -7.0)
        late = {s: _wait_for(s, VOCALS + "/f", (-7.0,), 3.0) for s in (a, b)}
        stats = server.stats()
    burst = 1.0  # the buckets hold one second's worth
    for s in (a, b):
        assert 0 < received[s] <= per_client * (elapsed + burst + 0.1), (received, elapsed)
        assert late[s], "the value held back by the cap never arrived"
    assert sum(received.values()) <= total * (elapsed + burst + 0.1), (received, elapsed)
    assert stats.capped > 0
    assert stats.sent_bytes - sent_before <= total * (time.monotonic() - t0 + burst + 0.1)


def test_queries_dumps_and_error_replies_are_limited_per_host(surface):
    limits = OscLimits(queries_per_s=5.0, query_burst=5, bulk_per_s=0.5, bulk_burst=2, errors_per_s=1.0,
                       error_burst=3, max_error_replies_per_s=1000.0)
    with OscServer(surface, port=0, limits=limits) as server, OscClient("127.0.0.1", server.port) as c:
        c.send(REGISTER)
        assert c.receive(1.0, until=REGISTERED)
        c.receive(0.2)  # the registration's state
        t0 = time.monotonic()
        for _ in range(50):
            c.send(VOCALS)
            c.send("/noisyneuron/dump")
            c.send("/noisyneuron/karaoke/nope")
        got = c.receive(0.5)
        elapsed = time.monotonic() - t0
        stats = server.stats()
    answers = sum(m.address == VOCALS + "/s" for m in got)  # a query's last reply, or a dump's
    dumps = sum(m.address == MIX + "/s" for m in got)
    errors = sum(m.address == "/noisyneuron/error" for m in got)
    assert dumps <= 2 + 0.5 * elapsed + 1 and 5 <= answers - dumps <= 5 + 5 * elapsed + 1, (answers, dumps, elapsed)
    assert 3 <= errors <= 3 + 1 * elapsed + 1
    assert stats.rejected["rate_limited"] == 100 - answers
    assert stats.rejected["unknown_address"] == 50 and stats.errors_suppressed == 50 - errors


def test_registration_tables_are_bounded(surface):
    limits = OscLimits(max_pending=4, max_clients=2, max_registrants_per_client=2, max_tracked_hosts=8,
                       confirm_request_burst=100)
    with OscServer(surface, port=0, limits=limits) as server:
        silent = [_silent() for _ in range(10)]
        with OscClient("127.0.0.1", server.port, auto_confirm=False) as c:
            for s in silent:
                c.send(REGISTER, s.getsockname()[1])
            _settle(server, 10)
        assert server.pending_registrations() == [s.getsockname() for s in silent[-4:]]  # the oldest made room
        clients = [OscClient("127.0.0.1", server.port) for _ in range(3)]
        for c in clients[:2]:
            c.send(REGISTER)
            assert c.receive(1.0, until=REGISTERED)
        clients[2].send(REGISTER)
        assert [m.args for m in clients[2].receive(0.3)] == [("too_many_clients", REGISTER)]
        assert len(server.clients()) == 2
        # many sockets of one host registering the same port: replies of the newest go there
        senders = [OscClient("127.0.0.1", server.port) for _ in range(5)]
        for s in senders:
            s.send(REGISTER, clients[0].local_port)
        _settle(server, 10 + 3 + 2 + 5)
        target = ("127.0.0.1", clients[0].local_port)
        assert len(server._table.clients[target].registrants) == 2  # internal: the bound itself
        # rate-limit state for at most max_tracked_hosts hosts (127.0.0.0/8 is all this machine)
        for i in range(2, 30):
            with _silent(f"127.0.0.{i}") as h:
                h.sendto(encode_message("/noisyneuron/ping"), ("127.0.0.1", server.port))
        _settle(server, 10 + 3 + 2 + 5 + 28)
        assert len(server._hosts) == 8
        for s in [*silent, *clients, *senders]:
            s.close()


# ----- round trip ------------------------------------------------------------------------------------
def test_round_trip_set_and_query_p99():
    """The 2 ms target is `noisyneuron bench live`'s (bench_osc_roundtrip); a test on a shared
    2-core machine only asserts a generous bound."""
    result = bench_osc_roundtrip(1000)
    print(f"\nOSC set+query round trip: p50 {result['p50_ms']:.3f} ms, p99 {result['p99_ms']:.3f} ms, "
          f"max {result['max_ms']:.3f} ms over {result['n']}")
    assert result["p50_ms"] < 5.0 and result["p99_ms"] < 20.0, result


# ----- command line ------------------------------------------------------------------------------------
def _osc_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "noisyneuron.control.osc", *args],
                          capture_output=True, text=True, timeout=30)


def test_cli_send_query_and_monitor(surface, server):
    port = str(server.port)
    r = _osc_cli("send", "--port", port, VOCALS + "/f", "--", "-9")
    assert r.returncode == 0, r.stderr
    _settle(server, 1)
    assert _eventually(lambda: surface.get(VOCALS).value == -9.0)
    r = _osc_cli("send", "--port", port, VOCALS)
    assert r.stdout.splitlines() == [f"{VOCALS}/n 0.772727", f"{VOCALS}/f -9", f"{VOCALS}/s '-9.0 dB'"], r.stdout
    r = _osc_cli("monitor", "--port", port, "--seconds", "0.5")
    assert r.returncode == 0 and r.stdout.startswith("/noisyneuron/registered "), r
    assert f"{MIX}/f 100" in r.stdout.splitlines()
    assert server.clients() == []  # it unregistered on its way out
    with _silent() as reaper:  # `osc register PORT` confirms for a port that cannot (REAPER's)
        reaper_port = reaper.getsockname()[1]
        r = _osc_cli("register", "--port", port, str(reaper_port), "--seconds", "0.5")
        assert r.returncode == 0 and r.stdout.splitlines()[0] == f"/noisyneuron/registered {reaper_port} 60", r
        got = [m.address for m in _messages(_datagrams(reaper, 0.2))]
        assert got[:2] == [CONFIRM, REGISTERED] and f"{MIX}/f" in got and got[-1] == "/noisyneuron/unregistered"
    assert server.clients() == [] and server.stats().confirmed == 2


# ----- live on the JACK dummy server --------------------------------------------------------------------
class _Tone(Processor):
    """Test source: a constant level (a smoothed parameter, like any gain) on both channels."""

    kind = "tone"

    def __init__(self) -> None:
        super().__init__()
        self.level = self.add_parameter(Parameter("level", 0.0, 1.0, 0.0, "x", "output level"))

    def process(self, block) -> None:
        ramp = self.level.ramp(len(block))
        block[:, 0] = ramp
        block[:, 1] = ramp


@pytest.mark.jack
def test_set_to_audible_within_two_blocks_plus_smoothing(jack_server):
    """An OSC set reaches the chain's output within 2 blocks, and its full value after the
    parameter's smoothing time (counted in blocks the chain processed after the message was sent).
    The device path then adds the engine's constant, reported latency."""
    from noisyneuron.realtime.engine import Engine

    tone = _Tone()
    chain = Chain([tone], name="tone")
    engine = Engine(chain, blocksize=256)
    first = np.zeros(4096, dtype=np.float32)
    last = np.zeros(4096, dtype=np.float32)
    count = [0]

    def on_block(block):
        k = count[0] % 4096
        first[k], last[k] = block[0, 0], block[-1, 0]
        count[0] += 1

    engine.on_block = on_block
    surface = ControlSurface(chain)
    results = []
    with engine, OscServer(surface, engine, port=0) as server, OscClient("127.0.0.1", server.port) as client, \
            OscClient("127.0.0.1", server.port) as meters:
        meters.send("/noisyneuron/register")
        assert meters.receive(5.0, until="/noisyneuron/registered"), "not registered"  # it answers the confirm
        deadline = time.monotonic() + 10
        while count[0] < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert count[0] >= 50, "the engine is not processing"
        for target in (1.0, 0.0, 0.25, 0.75, 0.5):
            sent_at = count[0]
            client.send("/noisyneuron/tone/level/f", target)
            time.sleep(0.15)
            assert count[0] - sent_at < 4000
            before = last[(sent_at - 1) % 4096]
            blocks = [(k, first[k % 4096], last[k % 4096]) for k in range(sent_at, count[0])]
            started = next(k for k, _, end in blocks if end != before) - sent_at
            arrived = next(k for k, _, end in blocks if end == pytest.approx(target, abs=1e-6)) - sent_at
            results.append((started, arrived))
        # and the output meter that OSC clients see went from silence to the tone (at least -6 dBFS:
        # the last level is 0.5; the peak meter falls slowly from the earlier 1.0)
        peaks = [m.args[0] for m in meters.receive(0.1) if m.address == "/noisyneuron/meter/output/peak"]
        assert peaks[0] == -120.0 and 20 * math.log10(0.5) - 0.05 <= peaks[-1] <= 0.0, peaks
    smoothing_blocks = math.ceil(tone.level.smoothing_seconds * engine.sample_rate / engine.blocksize)
    block_ms = 1000 * engine.blocksize / engine.sample_rate
    print(f"\nOSC set to chain output: first change after {[s for s, _ in results]} blocks, full value after "
          f"{[a for _, a in results]} blocks ({block_ms:.2f} ms each; smoothing {smoothing_blocks} blocks)")
    # the typical trial (the median of 5: one that the shared machine delayed does not decide)
    assert sorted(s for s, _ in results)[2] <= 2 and sorted(a for _, a in results)[2] <= 2 + smoothing_blocks, results
    assert max(a - s for s, a in results) <= smoothing_blocks, results  # the ramp itself never drags
    assert engine.stats().errors == 0


class _ServerXruns:
    """Counts the JACK server's xruns from when it is entered (a JACK client with only an xrun
    callback). Activating a client changes the graph: enter it before the steady state."""

    def __enter__(self):
        import jack

        self.count = 0
        self._client = jack.Client("osc-xruncounter", no_start_server=True)
        self._client.set_xrun_callback(self._xrun)
        self._client.activate()
        return self

    def _xrun(self, delay) -> None:
        self.count += 1

    def __exit__(self, *exc) -> None:
        self._client.deactivate()
        self._client.close()


_SENDER = r"""
import pickle, socket, sys, time
datagrams = pickle.load(open(sys.argv[1], "rb"))
port, seconds = int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
chunk = 50
period = seconds * chunk / len(datagrams)
t0 = time.perf_counter()
for i in range(0, len(datagrams), chunk):
    for d in datagrams[i:i + chunk]:
        s.sendto(d, ("127.0.0.1", port))
    wait = t0 + (i // chunk + 1) * period - time.perf_counter()
    if wait > 0:
        time.sleep(wait)
print(f"{time.perf_counter() - t0:.3f}")
"""


def _flood(address: str, parameter, n: int = 10000, seed: int = 0):
    """``n`` datagrams, valid and malformed; returns (datagrams, valid messages, messages counted,
    rejected by reason, the value the last valid message sets)."""
    rng = random.Random(seed)
    lo, hi = parameter.minimum, parameter.maximum
    datagrams, valid, counted = [], 0, 0
    rejected = dict.fromkeys(REJECT_REASONS, 0)
    final = None
    huge = encode_bundle(*[encode_message(address + "/f", -1.0)] * 80)

    def unit(v):  # multiples of 0.25: exact in float32
        return min(hi, max(lo, v))

    for i in range(n):
        kind = i % 20 if i < n - 1 else 0
        if kind < 10:
            v = rng.randrange(int(lo * 4) - 40, int(hi * 4) + 40) / 4  # some out of range (clamped)
            datagrams.append(encode_message(address + "/f", v))
            valid, counted, final = valid + 1, counted + 1, unit(v)
        elif kind < 12:
            x = rng.randrange(-8, 72) / 64  # exact in float32, some out of 0..1
            datagrams.append(encode_message(address + "/n", x))
            valid, counted, final = valid + 1, counted + 1, lo + min(1.0, max(0.0, x)) * (hi - lo)
        elif kind == 12:
            v = rng.randrange(int(lo), int(hi) + 1)
            datagrams.append(encode_message(address, v))
            valid, counted, final = valid + 1, counted + 1, unit(float(v))
        elif kind == 13:
            vs = [rng.randrange(int(lo * 4), int(hi * 4) + 1) / 4 for _ in range(3)]
            datagrams.append(encode_bundle(*[encode_message(address + "/f", v) for v in vs]))
            valid, counted, final = valid + 3, counted + 3, unit(vs[-1])
        else:
            data, reason = {
                14: (b"\xff" + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))), "malformed"),
                15: (encode_message(address + "/nope", 1.0), "unknown_address"),
                16: (encode_message(address, "loud"), "wrong_type"),
                17: (encode_message(address + "/f", float("nan")), "nonfinite"),
                18: (huge, "bundle_too_large"),
                19: (encode_message(address + "/f", 1.0)[:-2], "malformed"),
            }[kind]
            datagrams.append(data)
            rejected[reason] += 1
            counted += 1
    return datagrams, valid, counted, rejected, final


def _audio_glitches(engine, server_xruns: _ServerXruns, fn):
    """Run ``fn()``; returns (its result, {"engine xruns", "late blocks", "server xruns"} meanwhile)."""
    before, xruns_before = engine.stats(), server_xruns.count
    result = fn()
    after = engine.stats()
    return result, {"engine xruns": after.xruns - before.xruns, "late blocks": after.late_blocks - before.late_blocks,
                    "server xruns": server_xruns.count - xruns_before}


def _drain(client: OscClient) -> list:
    """Everything waiting on ``client``'s socket (until 10 ms pass with nothing new)."""
    out = []
    while True:
        got = client.receive(0.01)
        if not got:
            return out
        out.extend(got)


def _delta(after, before) -> dict:
    d = {k: getattr(after, k) - getattr(before, k) for k in ("received", "applied", "queries", "commands",
                                                               "ignored", "clamped")}
    d["rejected"] = {k: after.rejected[k] - before.rejected[k] for k in after.rejected}
    return d


@pytest.mark.jack
def test_flood_of_10000_messages_with_audio_running(jack_server, tmp_path):
    """10,000 datagrams in about a second from another process (valid sets of every kind, bundles,
    and malformed ones) to the OSC server of the karaoke chain running live on the JACK dummy
    server, with a client registered for feedback: nothing crashes, every valid message is applied
    and every other one rejected under its reason, the last valid value stands, the engine has no
    error, and the audio no xrun or late block.

    The chain is the DSP centre cut (the karaoke chain of HEAD): what is measured is what OSC
    costs the audio; the neural separator's own real-time margin is test_engine_jack's. Glitches
    are judged as in tests/test_engine_jack.py: if the flood window has any, the same engine is
    measured for as long with no OSC traffic; if it glitches too, the machine cannot measure this
    now (skip, saying so); otherwise one more flood window must be clean."""
    from noisyneuron.realtime.engine import Engine

    chain = Chain([CentreCutKaraoke()], name="karaoke")
    surface = ControlSurface(chain)
    control = surface.find("vocals")
    engine = Engine(chain, blocksize=256)
    glitches = []
    # the watcher stays registered for the whole test (without renewals, which would be counted
    # among the messages received during a flood window)
    limits = OscLimits(registration_lifetime_s=600.0)
    with engine, _ServerXruns() as server_xruns, OscServer(surface, engine, port=0, limits=limits) as server, \
            OscClient("127.0.0.1", server.port, auto_renew=False) as watcher:
        watcher.send("/noisyneuron/register")  # feedback keeps flowing during the flood
        assert watcher.receive(5.0, until="/noisyneuron/registered"), "not registered"  # it answers the confirm
        time.sleep(1.0)  # steady state (starting a client and connecting ports are graph changes)
        _drain(watcher)
        drained_at = time.monotonic()
        for attempt in range(2):
            datagrams, valid, counted, rejected, final = _flood(control.address, control.parameter, seed=attempt)
            path = tmp_path / f"flood-{attempt}.pkl"
            path.write_bytes(pickle.dumps(datagrams))
            before = server.stats()

            def run():
                t0 = time.monotonic()
                sender = subprocess.run([sys.executable, "-c", _SENDER, str(path), str(server.port), "1.0"],
                                        capture_output=True, text=True, timeout=60)
                assert sender.returncode == 0, sender.stderr
                _settle(server, before.received + counted, timeout=15)
                time.sleep(0.2)
                return float(sender.stdout), time.monotonic() - t0

            (send_seconds, window), glitch = _audio_glitches(engine, server_xruns, run)
            stats = server.stats()
            d = _delta(stats, before)
            print(f"\nflood: {len(datagrams)} datagrams ({counted} messages) sent in {send_seconds:.2f} s, all "
                  f"handled after {window:.2f} s: {d['applied']} applied ({d['clamped']} clamped), rejected "
                  f"{ {k: v for k, v in d['rejected'].items() if v} }; audio glitches {glitch}")
            assert d["received"] == counted, "datagrams were lost"
            assert d["applied"] == valid
            assert d["rejected"] == rejected
            assert surface.get(control).value == pytest.approx(final, abs=1e-4)
            _invariant(stats)
            assert engine.stats().errors == 0 and server.running
            # meter feedback kept flowing during the flood, at no more than the feedback rate
            feedback = _drain(watcher)
            peaks = sum(m.address == "/noisyneuron/meter/output/peak" for m in feedback)
            elapsed, drained_at = time.monotonic() - drained_at, time.monotonic()
            assert 0 < peaks <= math.ceil(elapsed * server.feedback_hz) + 1, (peaks, elapsed)
            if not any(glitch.values()):
                return
            glitches.append(glitch)
            _, idle = _audio_glitches(engine, server_xruns, lambda: time.sleep(window))
            if any(idle.values()):
                pytest.skip(f"the machine is glitching on its own: the engine with no OSC traffic had {idle} "
                            f"xruns or late blocks in {window:.1f} s (the flood window: {glitch})")
    pytest.fail(f"xruns or late blocks in both flood windows ({glitches}) and none without OSC traffic")
