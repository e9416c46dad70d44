"""OSC control of a running chain: set and query every control, feedback to registered clients.

Start it with :func:`start_osc` (or :class:`OscServer` and ``start()``/``stop()``)::

    server = start_osc(surface, engine)              # 127.0.0.1:9000, feedback at 30 Hz
    ...
    server.stop()

It listens on UDP ``127.0.0.1:9000`` by default (``port=0`` picks a free port: read
:attr:`OscServer.port`). Bound to any other address (``host="0.0.0.0"`` for the network), it
refuses to start without an allow-list of client addresses (IPs or networks such as
``192.168.1.0/24``), and then ignores every datagram from anyone else (counted as
``not_allowed``). An allow-list given on loopback is enforced too.

Address space
-------------
Every control of the :class:`~noisyneuron.control.surface.ControlSurface` is
``/noisyneuron/<processor>/<param>``: each processor parameter (``/noisyneuron/karaoke/vocals``,
``/noisyneuron/separator/drums``), each processor's ``bypass`` and the chain's ``/noisyneuron/chain/mix``.
``noisyneuron osc send /noisyneuron/list`` prints them for the running chain. REAPER's conventions
decide what a value means; the address suffix says it, else the argument's type:

============================================  =========================================================
message (one argument)                        meaning
============================================  =========================================================
``/noisyneuron/separator/vocals/n 0.5``       normalised 0..1 over the control's range
``/noisyneuron/separator/vocals/f -12``       unit value (dB, %, Hz, 0/1 for toggles)
``/noisyneuron/separator/vocals -12``         plain address, int or float: unit value
``/noisyneuron/separator/vocals "-12 dB"``    a string (plain or ``/s``): a number in the unit, or
                                              ``off`` / ``-inf`` (the minimum); ``on`` for toggles
``/noisyneuron/separator/bypass 1``           toggles: 0/1 as int, float or OSC ``T``/``F``
``/noisyneuron/separator/bypass/toggle``      flip (no argument, or non-zero: a button's press;
                                              0, its release, is ignored)
============================================  =========================================================

Out-of-range values are clamped to the range and applied (counted as ``clamped``); ``-inf`` as a
unit value is the minimum (``off`` for levels), like ``--set vocals=-inf``; NaN, ``+inf`` and an
infinite normalised value are rejected. Addresses are literal: OSC wildcards are not expanded.

Queries and commands (replies go to the sender's address, or, once it is a confirmed feedback
client, to the address it registered; see "Registration" below):

- ``/noisyneuron/<processor>/<param>`` (also with ``/n``, ``/f``, ``/s``) with no argument, or
  ``/noisyneuron/query <address>``: replies ``<address>/n`` (float), ``<address>/f`` (float) and
  ``<address>/s`` (display string, e.g. ``"-12.0 dB"``, ``"off"``), in that order.
- ``/noisyneuron/list``: replies ``/noisyneuron/list`` with every control address (strings).
- ``/noisyneuron/info <address>``: replies ``/noisyneuron/info address unit min max default
  toggle(0/1) description``.
- ``/noisyneuron/dump``: replies the n/f/s of every control; to confirmed clients only (others
  get ``not_registered``).
- ``/noisyneuron/register [port]``, ``/noisyneuron/confirm <nonce>``: see below.
- ``/noisyneuron/unregister [port]``: stop feedback (replies ``/noisyneuron/unregistered port``).
- ``/noisyneuron/ping ...``: replies ``/noisyneuron/pong`` with the same arguments.
- A rejected message from an allowed sender gets ``/noisyneuron/error <reason> <address>``
  (rate-limited: see :class:`~noisyneuron.control.osc_clients.OscLimits`).

Registration (UDP senders can be forged, so feedback starts only once the address that will
receive it has shown that it wants it):

1. ``/noisyneuron/register [port]`` (port: int, or a whole-number float as TouchOSC sends;
   default: the port it came from) asks for feedback at the sender's host and ``port``. The
   server sends ``/noisyneuron/confirm <nonce>`` (one string, 16 hex digits) to that address
   and, if the register came from another port, to that port too. Nothing else is sent yet.
2. The client sends the same message, ``/noisyneuron/confirm <nonce>``, back from that host
   (from either port) within ``confirm_timeout_s`` (10 s). It is then a confirmed client: the
   server replies ``/noisyneuron/registered port lifetime_s`` (to the registered address and to
   the confirming one) and the n/f/s of every control, then feedback. Replies to the address
   that registered it go to the registered port from then on.
3. The registration lasts ``registration_lifetime_s`` (60 s) after the last datagram from the
   client (from its registered address or from the one that registered it): any message
   renews it, and so does ``/noisyneuron/register`` again (replies ``/noisyneuron/registered``,
   nothing more). It is dropped after ``max_send_errors`` (3) send errors (ICMP port or host
   unreachable: the client went away) with nothing from it in between.

:class:`OscClient` (and so ``noisyneuron osc``) answers the nonce and renews by itself.
Per host there are token buckets for queries, ``/list`` and ``/dump``, confirmation requests and
error replies; per client, for everything else a cap on bytes per second; all limits and their
defaults are :class:`~noisyneuron.control.osc_clients.OscLimits`. A request over its limit is
rejected as ``rate_limited`` (with no reply). So a forged datagram gets at most what a query
gets (three short messages) or one confirmation request, within its host's limits and
``unconfirmed_bytes_per_s`` for all such addresses together, sent to the address it claims, and
never feedback.

Feedback, to every confirmed client, at most ``feedback_hz`` times a second (default 30):

- control changes from any source (OSC, MIDI, the TUI, presets): ``<address>/n``, ``/f``, ``/s``,
  coalesced: the latest value per address per tick, and only what that client has not been
  sent yet. A change made by client X is echoed to every client, X included (the value applied,
  after clamping; a fader that is being touched can ignore it). Since a value already sent is
  never sent again, two-way feedback (REAPER echoing back what it received) cannot loop.
- meters, every tick: ``/noisyneuron/meter/input/peak``, ``.../input/rms``,
  ``.../output/peak``, ``.../output/rms`` (dBFS, one float per channel; -120 is silence) and
  the same with ``/n`` (one float 0..1: the loudest channel, -60 dBFS -> 0, 0 dBFS -> 1, for
  meter widgets);
- engine figures when they change: ``/noisyneuron/engine/latency`` (ms), ``.../load`` and
  ``.../load_p99`` (processing time per block / block duration, 0..1), ``.../xruns`` and
  ``.../late_blocks`` (int);
- analysis readings (a processor with ``reading()``, e.g. the classifier) when they change:
  ``/noisyneuron/<processor>/label`` (string), ``/noisyneuron/<processor>/confidence/<label>``
  (one float 0..1 per label) and ``/noisyneuron/<processor>/level`` (dBFS) where present.

Bundles are accepted up to ``max_bundle_messages`` messages (nested at most 4 deep); their
time tags are ignored (applied on arrival). A larger bundle is rejected whole.

Robustness: every datagram is parsed completely before anything is applied; malformed packets,
unknown addresses, wrong types or argument counts, NaN/inf, oversized packets or bundles and
non-allowed senders are rejected and counted by reason in :class:`OscStats`; nothing raises out
of the server thread and nothing touches the audio thread: values go through
:meth:`ControlSurface.set` (a lock-free store the audio thread ramps toward).

Threads: one thread owns the socket. It waits in ``select`` for datagrams and for the next
feedback tick; replies and feedback are non-blocking ``sendto`` calls from that thread (a full
socket buffer drops the datagram and counts ``send_errors``). On Linux the socket asks for
``IP_RECVERR``, so that ICMP errors (an unconnected UDP socket otherwise never sees them) are
read from its error queue with the address they concern; elsewhere a client that went away
expires instead. The surface listener that marks a
control changed only stores into a dict, so setters (the TUI, MIDI) never wait on the network.
Measured on loopback (2-core VM, :func:`bench_osc_roundtrip`): set + query round trip p50 0.09 ms,
p99 0.15-0.3 ms while the machine has a core to spare (several ms when both cores are busy
with other work); python-osc's servers measured 0.15 ms (asyncio, blocking) to 0.5 ms
(threading) p50 in the same runs, the threading one up to 8 ms p99.
The socket's receive buffer is raised to 4 MB (:attr:`OscServer.rcvbuf_bytes` says what the OS
granted; with the default 208 KB a burst of 1000 messages loses most of them).
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import math
import re
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from noisyneuron.control.osc_clients import ClientTable, FeedbackClient, HostLimiter, OscLimits, TokenBucket
from noisyneuron.control.osc_wire import OscMessage, OscParseError, encode_message, parse_packet
from noisyneuron.control.values import BadValue, parse_value
from noisyneuron.errors import UserError

if TYPE_CHECKING:  # keep `noisyneuron osc ...` start-up free of numpy/numba
    from noisyneuron.control.surface import Control, ControlSurface

__all__ = [
    "DEFAULT_FEEDBACK_HZ",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "REJECT_REASONS",
    "OscClient",
    "OscError",
    "OscLimits",
    "OscServer",
    "OscStats",
    "add_cli_arguments",
    "bench_osc_roundtrip",
    "cli_main",
    "start_osc",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000
DEFAULT_FEEDBACK_HZ = 30.0
#: socket receive buffer asked for (ENVIRONMENT: the 208 KB default loses 70 % of a 1000-message burst)
RCVBUF_BYTES = 4 * 1024 * 1024
PREFIX = "/noisyneuron"

#: why a message was rejected (keys of :attr:`OscStats.rejected`)
REJECT_REASONS = (
    "malformed",  # not OSC (bad padding, unknown type tag, not UTF-8, truncated...)
    "too_large",  # datagram over max_packet_bytes
    "bundle_too_large",  # more than max_bundle_messages messages, or nested too deep
    "not_allowed",  # sender not on the allow-list
    "unknown_address",  # no control or command at that address
    "wrong_type",  # an argument that cannot mean a value for that control
    "wrong_arguments",  # too many arguments, or a command missing its argument
    "nonfinite",  # NaN, +inf, or an infinite normalised value
    "too_many_clients",  # register beyond max_clients
    "not_registered",  # /dump from a sender that is not a confirmed feedback client
    "bad_confirm",  # /confirm with an unknown or expired nonce, or from another host
    "rate_limited",  # over a per-host limit (OscLimits): refused, with no reply
    "internal_error",  # a bug in the server (counted, never raised)
)

#: Linux socket options (not in Python's socket module before 3.12): queue ICMP errors with the
#: address they concern, so that an unconnected UDP socket sees them at all
_IP_RECVERR = 11
_IPV6_RECVERR = 25
#: errno values a send can report for an earlier datagram's ICMP error (the address is in the
#: error queue) or for the destination itself
_UNREACHABLE_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "ENETDOWN")
    if hasattr(errno, name))
_METER_FLOOR_N = -60.0  # dBFS shown as 0.0 by the /n meter messages
_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class OscError(UserError):
    """The OSC server cannot start as asked (port in use, no allow-list off loopback...)."""


@dataclass
class OscStats:
    """Counters of an OSC server (a snapshot from :meth:`OscServer.stats`).

    ``received == applied + queries + commands + ignored + rejected_total`` always holds.

    Attributes:
        packets: datagrams received.
        received: messages received (each message of a bundle counts; a datagram that could not
            be parsed or was refused counts as one).
        applied: set messages applied (including clamped ones).
        clamped: applied values that were outside the range and clamped.
        queries: query messages answered.
        commands: register, unregister, list, info, dump, ping.
        ignored: messages that ask for nothing (a toggle button's release, value 0).
        rejected: reason (see :data:`REJECT_REASONS`) -> count.
        sent: datagrams sent (replies and feedback).
        sent_bytes: bytes of those datagrams.
        send_errors: datagrams the OS refused to send (dropped) and ICMP errors reported for
            datagrams sent.
        capped: datagrams not sent because a byte cap (per client, unconfirmed, total) was reached.
        errors_suppressed: ``/noisyneuron/error`` replies not sent (their rate limits).
        confirm_requests: ``/noisyneuron/confirm`` requests sent.
        confirmed: registrations confirmed.
        expired: confirmed clients dropped because nothing came from them for their lifetime.
        unreachable: confirmed clients dropped after ``max_send_errors`` send errors.
        feedback_ticks: feedback rounds run.
        feedback_errors: exceptions while gathering feedback (a bug; counted, never raised).
    """

    packets: int = 0
    received: int = 0
    applied: int = 0
    clamped: int = 0
    queries: int = 0
    commands: int = 0
    ignored: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECT_REASONS, 0))
    sent: int = 0
    sent_bytes: int = 0
    send_errors: int = 0
    capped: int = 0
    errors_suppressed: int = 0
    confirm_requests: int = 0
    confirmed: int = 0
    expired: int = 0
    unreachable: int = 0
    feedback_ticks: int = 0
    feedback_errors: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def as_dict(self) -> dict:
        d = {k: v for k, v in vars(self).items() if k != "rejected"}
        d["rejected"] = dict(self.rejected)
        d["rejected_total"] = self.rejected_total
        return d

    def summary(self) -> str:
        """One line, e.g. ``OSC: 120 received, 100 applied (3 clamped), 2 queries, 18 rejected (unknown_address 18)``."""
        reasons = ", ".join(f"{k} {v}" for k, v in self.rejected.items() if v)
        text = (
            f"OSC: {self.received} received, {self.applied} applied ({self.clamped} clamped), "
            f"{self.queries} queries, {self.commands} commands, {self.rejected_total} rejected"
        )
        return text + (f" ({reasons})" if reasons else "")


class _Reject(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OscServer:
    """The OSC server of one control surface (and, for meters and readings, its engine).

    Args:
        surface: the controls (every change goes through :meth:`ControlSurface.set`).
        engine: a running :class:`~noisyneuron.realtime.engine.Engine` for meters, engine
            figures and analysis readings (None: control feedback only).
        host: address to bind (default ``127.0.0.1``; ``0.0.0.0`` or ``::`` for all).
        port: UDP port (default 9000; 0 picks a free one, see :attr:`port`).
        allow: client addresses allowed to send (IPs, networks like ``192.168.1.0/24``, host
            names); required when ``host`` is not a loopback address; None or empty: anyone
            (loopback only).
        feedback_hz: feedback rounds per second (0: no feedback; at most 1000).
        limits: registration lifetime, table sizes, rate limits and byte caps
            (:class:`~noisyneuron.control.osc_clients.OscLimits`; None: its defaults).
        max_bundle_messages: messages in one bundle at most (a larger bundle is rejected whole).
        max_packet_bytes: larger datagrams are rejected unread.
    """

    def __init__(
        self,
        surface: ControlSurface,
        engine=None,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        allow=None,
        feedback_hz: float = DEFAULT_FEEDBACK_HZ,
        limits: OscLimits | None = None,
        max_bundle_messages: int = 64,
        max_packet_bytes: int = 16384,
    ) -> None:
        if not 0 <= int(port) <= 65535:
            raise OscError(f"OSC port {port} out of range: use 1..65535 (0 picks a free one)")
        feedback_hz = float(feedback_hz)
        if not (0.0 <= feedback_hz <= 1000.0):
            raise OscError(f"OSC feedback rate {feedback_hz} Hz out of range: use 0..1000 (0: no feedback)")
        self.surface = surface
        self.engine = engine
        self.feedback_hz = feedback_hz
        self.limits = limits if limits is not None else OscLimits()
        self.max_bundle_messages = int(max_bundle_messages)
        self.max_packet_bytes = int(max_packet_bytes)
        self._family, self._bind = _resolve_bind(host, int(port))
        self.host = self._bind[0]
        self._requested_port = int(port)
        bind_ip = ipaddress.ip_address(self.host.split("%")[0])
        self._allowed = _parse_allow(allow)
        if self._allowed is None and not bind_ip.is_loopback:
            raise OscError(
                f"OSC on {host} can be reached from other machines: give an allow-list of client "
                "addresses (IPs or networks, e.g. 192.168.1.20 or 192.168.1.0/24)"
            )
        self._allow_cache: dict[str, bool] = {}
        self._stats = OscStats()
        now = time.monotonic()
        self._table = ClientTable(self.limits)
        self._hosts = HostLimiter(self.limits)
        lim = self.limits  # byte buckets hold one second's worth
        self._unconfirmed_bytes = TokenBucket(lim.unconfirmed_bytes_per_s, lim.unconfirmed_bytes_per_s, now)
        self._total_bytes = TokenBucket(lim.total_bytes_per_s, lim.total_bytes_per_s, now)
        self._error_replies = TokenBucket(lim.max_error_replies_per_s, lim.max_error_replies_per_s, now)
        self._dirty: dict[str, Control] = {}
        self._dirty_lock = threading.Lock()
        self._outbox: list[tuple[bytes, tuple[str, int]]] = []  # replies to the message being handled
        self._welcome: list[FeedbackClient] = []  # confirmed by the message being handled
        self._sock: socket.socket | None = None
        self._has_error_queue = False
        self._thread: threading.Thread | None = None
        self._unsubscribe = None
        self._stopping = False
        self._wake_r = self._wake_w = None
        #: the receive buffer size the OS reports after asking for 4 MB (Linux reports double
        #: what it grants: the extra is its bookkeeping)
        self.rcvbuf_bytes = 0
        self._routes = self._build_routes()
        self._commands = {
            f"{PREFIX}/query": self._cmd_query,
            f"{PREFIX}/list": self._cmd_list,
            f"{PREFIX}/info": self._cmd_info,
            f"{PREFIX}/dump": self._cmd_dump,
            f"{PREFIX}/register": self._cmd_register,
            f"{PREFIX}/confirm": self._cmd_confirm,
            f"{PREFIX}/unregister": self._cmd_unregister,
            f"{PREFIX}/ping": self._cmd_ping,
        }

    # ----- life cycle ----------------------------------------------------------------------------
    def start(self) -> "OscServer":
        """Bind the socket and start the server thread. Returns self.

        Raises:
            OscError: the address cannot be bound (port in use, no such address).
        """
        if self._thread is not None:
            return self
        sock = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            if self._family == socket.AF_INET6 and self.host in ("::", "::0"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            self.rcvbuf_bytes = _raise_rcvbuf(sock, RCVBUF_BYTES)
            sock.bind(self._bind)
        except OSError as exc:
            sock.close()
            raise OscError(
                f"cannot open OSC on {self.host}:{self._requested_port}: {exc.strerror or exc} "
                "(choose another port; port 0 picks a free one)"
            ) from None
        sock.setblocking(False)
        self._has_error_queue = _ask_for_icmp_errors(sock, self._family)
        self._sock = sock
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._stopping = False
        if self.feedback_hz > 0:
            self._unsubscribe = self.surface.subscribe(self._on_change)
        self._thread = threading.Thread(target=self._loop, name="noisyneuron-osc", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close the socket. Safe to call twice."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stopping = True
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for s in (self._sock, self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        self._sock = self._wake_r = self._wake_w = None

    def __enter__(self) -> "OscServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def port(self) -> int:
        """The bound port (the one picked when ``port=0`` was asked for)."""
        if self._sock is None:
            return self._requested_port
        return self._sock.getsockname()[1]

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def stats(self) -> OscStats:
        """A snapshot of the counters (any thread)."""
        return replace(self._stats, rejected=dict(self._stats.rejected))

    def clients(self) -> list[tuple[str, int]]:
        """The confirmed feedback clients, as (host, port) (any thread)."""
        return list(self._table.clients)

    def pending_registrations(self) -> list[tuple[str, int]]:
        """The addresses registered but not confirmed yet, as (host, port)."""
        return list(self._table.pending)

    def describe(self) -> str:
        """One line for status displays, e.g. ``OSC 127.0.0.1:9000 | 1 client | 30 Hz feedback``."""
        n = len(self._table.clients)
        text = f"OSC {self.host}:{self.port} | {n} client{'s' if n != 1 else ''}"
        text += f" | {self.feedback_hz:g} Hz feedback" if self.feedback_hz > 0 else " | no feedback"
        if self._allowed is not None:
            text += f" | allow {', '.join(str(n) for n in self._allowed)}"
        if self.rcvbuf_bytes and self.rcvbuf_bytes < RCVBUF_BYTES:
            text += (f" | receive buffer {self.rcvbuf_bytes // 1024} KB (asked {RCVBUF_BYTES // 1024} KB: "
                     "raise net.core.rmem_max)")
        return text

    # ----- routing -------------------------------------------------------------------------------
    def _build_routes(self) -> dict[str, tuple[Control, str]]:
        routes: dict[str, tuple[Control, str]] = {}
        for a, control in [(c.address, c) for c in self.surface] + list(self.surface.aliases.items()):
            routes[a] = (control, "plain")
            routes[a + "/n"] = (control, "n")
            routes[a + "/f"] = (control, "f")
            routes[a + "/s"] = (control, "s")
            routes[a + "/toggle"] = (control, "toggle")
        return routes

    # ----- the server thread ---------------------------------------------------------------------
    def _loop(self) -> None:
        sock, wake = self._sock, self._wake_r
        period = 1.0 / self.feedback_hz if self.feedback_hz > 0 else None
        limits = self.limits
        housekeeping = max(0.01, min(0.25, limits.registration_lifetime_s / 4, limits.confirm_timeout_s / 4))
        now = time.monotonic()
        next_tick = now + (period or 0.0)
        next_housekeeping = now + housekeeping
        while not self._stopping:
            due = next_housekeeping if period is None else min(next_tick, next_housekeeping)
            try:
                readable, _, _ = select.select([sock, wake], [], [], max(0.0, due - time.monotonic()))
            except (OSError, ValueError):  # closed under us
                break
            if sock in readable:
                self._drain(sock)
            now = time.monotonic()
            if now >= next_housekeeping:
                self._expire(now)
                next_housekeeping = now + housekeeping
            if period is not None and now >= next_tick:
                self._tick()
                next_tick += period
                if next_tick <= now:  # fell behind (a flood): no burst of catch-up ticks
                    next_tick = now + period

    def _drain(self, sock: socket.socket) -> None:
        for i in range(256):  # then let a due feedback tick run
            try:
                data, sender = sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                if i == 0:  # readable with nothing to read: an ICMP error waits in the error queue
                    self._read_error_queue()
                return
            except OSError as exc:
                if exc.errno in _UNREACHABLE_ERRNOS:  # an ICMP error for a datagram we sent
                    self._read_error_queue()
                    continue
                return
            try:
                self._on_datagram(data, sender)
            except Exception:  # noqa: BLE001 - a bug here must not stop the server
                self._reject("internal_error")

    def _on_datagram(self, data: bytes, sender) -> None:
        stats = self._stats
        stats.packets += 1
        sender = (sender[0], sender[1])
        if self._allowed is not None and not self._is_allowed(sender[0]):
            stats.received += 1
            self._reject("not_allowed")
            return
        client = self._table.client_for(sender)
        if client is not None:  # anything from a confirmed client renews it
            self._table.renew(client, time.monotonic())
        if len(data) > self.max_packet_bytes:
            stats.received += 1
            self._reject("too_large", sender, "", client)
            return
        try:
            messages = parse_packet(data, max_messages=self.max_bundle_messages)
        except OscParseError as exc:
            stats.received += 1
            self._reject(exc.reason, sender, "", client)
            return
        stats.received += len(messages)
        for message in messages:
            try:
                self._handle(message, sender, client)
            except _Reject as exc:
                self._outbox.clear()
                self._welcome.clear()
                self._reject(exc.reason, sender, message.address, client)
            except Exception:  # noqa: BLE001
                self._outbox.clear()
                self._welcome.clear()
                self._reject("internal_error", sender, message.address, client)
            self._flush()  # replies leave after the counters are updated
            if self._welcome:
                for new in self._welcome:
                    new.last.clear()
                    self._send_state(new, self._all_state())
                self._welcome.clear()
            client = self._table.client_for(sender)  # a confirm or unregister may have changed it

    def _is_allowed(self, host: str) -> bool:
        ok = self._allow_cache.get(host)
        if ok is None:
            try:
                ip = ipaddress.ip_address(host.split("%")[0])
                if ip.version == 6 and ip.ipv4_mapped is not None:
                    ip = ip.ipv4_mapped
                ok = any(ip in net for net in self._allowed)
            except ValueError:
                ok = False
            if len(self._allow_cache) > 4096:
                self._allow_cache.clear()
            self._allow_cache[host] = ok
        return ok

    def _reject(self, reason: str, sender=None, address: str | None = None,
                client: FeedbackClient | None = None) -> None:
        """Count a rejected message; reply ``/noisyneuron/error`` within the error limits (never
        for ``rate_limited``, nor to senders that are not allowed)."""
        self._stats.rejected[reason] += 1
        if sender is None or reason == "rate_limited":
            return
        now = time.monotonic()
        if not self._error_replies.has(1, now) or not self._hosts.take(sender[0], "error", now):
            self._stats.errors_suppressed += 1
            return
        self._error_replies.take(1, now)
        self._reply(encode_message(f"{PREFIX}/error", reason, address or ""), self._reply_address(sender, client))
        self._flush()

    def _limit(self, sender: tuple[str, int], kind: str) -> None:
        """Take one ``kind`` token of ``sender``'s host, or reject the message as rate_limited."""
        if not self._hosts.take(sender[0], kind, time.monotonic()):
            raise _Reject("rate_limited")

    @staticmethod
    def _reply_address(sender: tuple[str, int], client: FeedbackClient | None) -> tuple[str, int]:
        return sender if client is None else client.address

    def _reply(self, data: bytes, address: tuple[str, int]) -> None:
        """Queue a reply to the message being handled (sent by :meth:`_flush`)."""
        self._outbox.append((data, address))

    def _flush(self) -> None:
        for data, address in self._outbox:
            self._send(data, address)
        self._outbox.clear()

    def _send(self, data: bytes, address: tuple[str, int], client: FeedbackClient | None = None) -> bool:
        """Send one datagram now if the byte caps allow it; True when the OS took it."""
        now = time.monotonic()
        size = len(data)
        if client is None:
            client = self._table.clients.get(address)
        bucket = self._unconfirmed_bytes if client is None else client.bytes
        if not (bucket.has(size, now) and self._total_bytes.has(size, now)):
            self._stats.capped += 1
            return False
        bucket.take(size, now)
        self._total_bytes.take(size, now)
        for attempt in range(2):
            try:
                self._sock.sendto(data, address)
                self._stats.sent += 1
                self._stats.sent_bytes += size
                return True
            except OSError as exc:  # buffer full, unreachable: drop, never wait
                if attempt == 0 and exc.errno in _UNREACHABLE_ERRNOS and self._read_error_queue():
                    continue  # the error was an earlier datagram's (now read): send this one
                self._stats.send_errors += 1
                if exc.errno in _UNREACHABLE_ERRNOS:
                    self._count_send_error(address)
                return False
        return False

    def _read_error_queue(self) -> bool:
        """Read the ICMP errors queued on the socket (Linux ``IP_RECVERR``), each counted against
        the address it concerns; True when there was any."""
        if not self._has_error_queue:
            return False
        found = False
        for _ in range(1024):
            try:
                _, _, _, address = self._sock.recvmsg(1, 512, socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            found = True
            self._stats.send_errors += 1
            if address:
                self._count_send_error((address[0], address[1]))
        return found

    def _count_send_error(self, address: tuple[str, int]) -> None:
        if self._table.count_send_error(address) is not None:
            self._stats.unreachable += 1

    def _expire(self, now: float) -> None:
        self._stats.expired += len(self._table.expire(now))

    # ----- messages ------------------------------------------------------------------------------
    def _handle(self, message: OscMessage, sender: tuple[str, int], client: FeedbackClient | None) -> None:
        route = self._routes.get(message.address)
        if route is None:
            command = self._commands.get(message.address)
            if command is None:
                raise _Reject("unknown_address")
            command(message.args, sender, client)
            self._stats.commands += 1
            return
        control, mode = route
        args = message.args
        if mode == "toggle":
            if len(args) > 1:
                raise _Reject("wrong_arguments")
            if args:
                press = _number(args[0])
                if press is None:
                    raise _Reject("wrong_type")
                if math.isnan(press):
                    raise _Reject("nonfinite")
                if press == 0:
                    self._stats.ignored += 1
                    return
            self.surface.toggle(control, source="osc")
            self._stats.applied += 1
            return
        if not args:
            self._limit(sender, "query")
            self._reply_state(control, self._reply_address(sender, client))
            self._stats.queries += 1
            return
        if len(args) != 1:
            raise _Reject("wrong_arguments")
        value, normalized, clamped = _convert(control, mode, args[0])
        self.surface.set(control, value, normalized=normalized, source="osc")
        self._stats.applied += 1
        if clamped:
            self._stats.clamped += 1

    def _state_messages(self, control: Control) -> list[tuple[str, bytes]]:
        s = control.state()
        a = control.address
        return [
            (a + "/n", encode_message(a + "/n", float(s.normalized))),
            (a + "/f", encode_message(a + "/f", float(s.value))),
            (a + "/s", encode_message(a + "/s", s.display)),
        ]

    def _all_state(self) -> list[tuple[str, bytes]]:
        return [item for control in self.surface for item in self._state_messages(control)]

    def _reply_state(self, control: Control, to: tuple[str, int]) -> None:
        for _, data in self._state_messages(control):
            self._reply(data, to)

    def _control_for(self, args: tuple) -> Control:
        if len(args) != 1:
            raise _Reject("wrong_arguments")
        if not isinstance(args[0], str):
            raise _Reject("wrong_type")
        route = self._routes.get(args[0])
        if route is None:
            raise _Reject("unknown_address")
        return route[0]

    def _cmd_query(self, args: tuple, sender, client) -> None:
        control = self._control_for(args)
        self._limit(sender, "query")
        self._reply_state(control, self._reply_address(sender, client))

    def _cmd_list(self, args: tuple, sender, client) -> None:
        if args:
            raise _Reject("wrong_arguments")
        self._limit(sender, "bulk")
        self._reply(encode_message(f"{PREFIX}/list", *self.surface.controls), self._reply_address(sender, client))

    def _cmd_info(self, args: tuple, sender, client) -> None:
        c = self._control_for(args)
        self._limit(sender, "query")
        p = c.parameter
        self._reply(
            encode_message(f"{PREFIX}/info", c.address, p.unit, float(p.minimum), float(p.maximum),
                           float(p.default), int(c.is_toggle), p.description),
            self._reply_address(sender, client),
        )

    def _cmd_dump(self, args: tuple, sender, client) -> None:
        if args:
            raise _Reject("wrong_arguments")
        if client is None:
            raise _Reject("not_registered")
        self._limit(sender, "bulk")
        for control in self.surface:
            self._reply_state(control, client.address)

    def _cmd_register(self, args: tuple, sender, client) -> None:
        target = (sender[0], _port_arg(args, sender))
        now = time.monotonic()
        existing = self._table.clients.get(target)
        if existing is not None:  # already confirmed: a renewal
            self._table.renew(existing, now)
            self._table.add_registrant(existing, sender)
            if self._hosts.take(sender[0], "query", now):  # a forged renewal must not be an echo
                self._reply(self._registered_message(target), target)
            return
        if len(self._table.clients) >= self.limits.max_clients:
            raise _Reject("too_many_clients")
        self._limit(sender, "confirm_request")
        pending = self._table.add_pending(target, sender, now)
        request = encode_message(f"{PREFIX}/confirm", pending.nonce)
        self._reply(request, target)
        if sender != target:
            self._reply(request, sender)
        self._stats.confirm_requests += 1

    def _cmd_confirm(self, args: tuple, sender, client) -> None:
        if not args:
            raise _Reject("wrong_arguments")
        if not isinstance(args[0], str):
            raise _Reject("wrong_type")
        outcome, confirmed = self._table.confirm(args[0], sender, time.monotonic())
        if outcome == "renewed":
            return  # the second copy of a nonce already answered
        if confirmed is None:
            raise _Reject(outcome)
        self._stats.confirmed += 1
        registered = self._registered_message(confirmed.address)
        self._reply(registered, confirmed.address)
        if sender != confirmed.address:
            self._reply(registered, sender)
        self._welcome.append(confirmed)  # the whole state, after /registered; then changes only

    def _registered_message(self, target: tuple[str, int]) -> bytes:
        return encode_message(f"{PREFIX}/registered", target[1], float(self.limits.registration_lifetime_s))

    def _cmd_unregister(self, args: tuple, sender, client) -> None:
        if args:
            target = (sender[0], _port_arg(args, sender))
        else:
            target = self._reply_address(sender, client)
        was_client = target in self._table.clients
        if not was_client:  # the reply goes to the sender: a query's limit
            self._limit(sender, "query")
        self._table.remove(target)
        self._reply(encode_message(f"{PREFIX}/unregistered", target[1]), target if was_client else sender)

    def _cmd_ping(self, args: tuple, sender, client) -> None:
        self._limit(sender, "query")
        try:
            data = encode_message(f"{PREFIX}/pong", *args)
        except TypeError:  # arrays, MIDI...: answer without them
            data = encode_message(f"{PREFIX}/pong")
        self._reply(data, self._reply_address(sender, client))

    # ----- feedback ------------------------------------------------------------------------------
    def _on_change(self, control: Control, value: float, source: str) -> None:
        """Surface listener (runs on the setter's thread): remember the control, nothing else."""
        with self._dirty_lock:
            self._dirty[control.address] = control

    def _send_state(self, client: FeedbackClient, state: list[tuple[str, bytes]]) -> None:
        """Send ``client`` what it has not been sent of ``state``; what a byte cap holds back
        is sent on a later tick (``client.resync``)."""
        last = client.last
        complete = True
        for address, data in state:
            if last.get(address) != data:
                if self._send(data, client.address, client):
                    last[address] = data
                else:
                    complete = False
        client.resync = not complete

    def _tick(self) -> None:
        self._stats.feedback_ticks += 1
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, {}
        clients = list(self._table.clients.values())
        if not clients:
            return
        try:
            state: list[tuple[str, bytes]] = []
            for control in dirty.values():
                state.extend(self._state_messages(control))
            controls_end = len(state)
            stream: list[bytes] = []
            if self.engine is not None:
                self._engine_feedback(state, stream)
            # a client still owed some state (a byte cap held it back) gets every control's
            # current state (only what it lacks leaves), and the engine's
            everything = self._all_state() + state[controls_end:] if any(c.resync for c in clients) else None
        except Exception:  # noqa: BLE001 - a reading that breaks must not stop the server
            self._stats.feedback_errors += 1
            return
        for client in clients:
            if client.address not in self._table.clients:  # dropped by a send error meanwhile
                continue
            self._send_state(client, everything if client.resync else state)
            for data in stream:
                self._send(data, client.address, client)

    def _engine_feedback(self, state: list, stream: list) -> None:
        from noisyneuron.control.readings import poll_readings

        r = poll_readings(self.engine)
        for name, meter in (("input", r.input), ("output", r.output)):
            if meter is None:
                continue
            for kind, values in (("peak", meter.peak_dbfs), ("rms", meter.rms_dbfs)):
                base = f"{PREFIX}/meter/{name}/{kind}"
                stream.append(encode_message(base, *(float(v) for v in values)))
                loudest = max(values) if values else -120.0
                stream.append(encode_message(base + "/n", _meter_normalized(loudest)))
        s = r.stats
        figures = (
            ("latency", float(round(r.latency_ms, 2))),
            ("load", float(round(s.processing_load_mean, 3))),
            ("load_p99", float(round(s.processing_load_p99, 3))),
            ("xruns", int(s.xruns)),
            ("late_blocks", int(s.late_blocks)),
        )
        for name, value in figures:
            address = f"{PREFIX}/engine/{name}"
            state.append((address, encode_message(address, value)))
        for processor, reading in r.analysis.items():
            base = f"{PREFIX}/{processor}"
            label = getattr(reading, "label", None)
            if label is not None:
                state.append((base + "/label", encode_message(base + "/label", str(label))))
            confidences = getattr(reading, "confidences", None)
            if confidences:
                for name, value in dict(confidences).items():
                    address = f"{base}/confidence/{_LABEL_UNSAFE.sub('_', str(name))}"
                    state.append((address, encode_message(address, float(value))))
            level = getattr(reading, "level_dbfs", None)
            if level is not None and math.isfinite(float(level)):
                state.append((base + "/level", encode_message(base + "/level", float(level))))


# ----- values -------------------------------------------------------------------------------------
def _number(arg) -> float | None:
    """A numeric argument as float (bools as 0/1), numeric strings too; None when not a number."""
    if isinstance(arg, bool):
        return 1.0 if arg else 0.0
    if isinstance(arg, (int, float)):
        return float(arg)
    if isinstance(arg, str):
        m = _NUMBER.match(arg)
        return float(m.group(1)) if m else None
    return None


def _port_arg(args: tuple, sender: tuple[str, int]) -> int:
    """The port of ``/register`` and ``/unregister``: an int, a whole-number float (TouchOSC
    sends floats) or a string of digits, 1..65535; none: the sender's port."""
    if len(args) > 1:
        raise _Reject("wrong_arguments")
    if not args:
        return sender[1]
    arg = args[0]
    if isinstance(arg, bool):
        raise _Reject("wrong_type")
    if isinstance(arg, str) and re.fullmatch(r"\s*\d+(\.0*)?\s*", arg):
        arg = float(arg)
    if not isinstance(arg, (int, float)) or not math.isfinite(arg) or arg != int(arg) or not 1 <= arg <= 65535:
        raise _Reject("wrong_type")
    return int(arg)


def _convert(control: Control, mode: str, arg) -> tuple[float, bool, bool]:
    """(value, normalized, clamped) for one set argument, or raise _Reject."""
    p = control.parameter
    if isinstance(arg, bool):
        if not control.is_toggle:
            raise _Reject("wrong_type")
        return (1.0 if arg else 0.0), False, False
    if isinstance(arg, (int, float)):
        x = float(arg)
    elif isinstance(arg, str):
        try:  # the one value parser: numbers, "-12 dB", "off" / "-inf", "on" for toggles
            x = parse_value(arg, p.unit, control.is_toggle)
        except BadValue:
            raise _Reject("wrong_type") from None
    else:
        raise _Reject("wrong_type")
    if math.isnan(x):
        raise _Reject("nonfinite")
    if mode == "n":
        if math.isinf(x):
            raise _Reject("nonfinite")
        return x, True, not 0.0 <= x <= 1.0
    if x == math.inf:
        raise _Reject("nonfinite")
    if x == -math.inf:
        return p.minimum, False, False
    return x, False, not p.minimum <= x <= p.maximum


def _meter_normalized(dbfs: float) -> float:
    return float(min(1.0, max(0.0, (dbfs - _METER_FLOOR_N) / -_METER_FLOOR_N)))


# ----- set-up helpers -----------------------------------------------------------------------------
def _resolve_bind(host: str, port: int):
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise OscError(f"cannot use OSC host {host!r}: {exc.strerror}") from None
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def _parse_allow(allow) -> list | None:
    if allow is None:
        return None
    if isinstance(allow, str):
        allow = [a for a in re.split(r"[,\s]+", allow) if a]
    nets = []
    for entry in allow:
        entry = str(entry).strip()
        try:
            nets.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(entry, None, type=socket.SOCK_DGRAM)
        except socket.gaierror:
            raise OscError(f"OSC allow-list: {entry!r} is not an IP address, a network or a known host name") from None
        for info in infos:
            nets.append(ipaddress.ip_network(info[4][0].split("%")[0]))
    return nets or None


def _ask_for_icmp_errors(sock: socket.socket, family: int) -> bool:
    """Ask Linux to queue ICMP errors (port/host unreachable) on ``sock`` with the address
    they concern (``IP_RECVERR``); True when it will. Elsewhere an unconnected UDP socket is not
    told, and a client that went away expires instead."""
    if not sys.platform.startswith("linux") or not hasattr(socket, "MSG_ERRQUEUE"):
        return False
    ok = False
    options = [(socket.IPPROTO_IP, _IP_RECVERR)]
    if family == socket.AF_INET6:
        options.insert(0, (socket.IPPROTO_IPV6, _IPV6_RECVERR))  # IPv4 too for a dual-stack socket
    for level, option in options:
        try:
            sock.setsockopt(level, option, 1)
            ok = True
        except OSError:
            pass
    return ok


def _raise_rcvbuf(sock: socket.socket, size: int) -> int:
    """Ask for a ``size`` byte receive buffer (privileged override where plain asking is capped)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    except OSError:
        pass
    got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    if got < size and force is not None:  # Linux caps at net.core.rmem_max unless privileged
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)
            got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        except OSError:
            pass
    return got


def start_osc(
    surface: ControlSurface,
    engine=None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    allow=None,
    feedback_hz: float = DEFAULT_FEEDBACK_HZ,
    limits: OscLimits | None = None,
) -> OscServer:
    """Start an OSC server for ``surface`` (and ``engine``'s meters and readings); returns it running.

    ``allow``: None, a list of client addresses/networks, or one comma-separated string.
    ``limits``: :class:`~noisyneuron.control.osc_clients.OscLimits` (None: the defaults).
    Stop it with :meth:`OscServer.stop` (before the engine stops, or after: either is fine).

    Raises:
        OscError: one line: port in use, bad host, or no allow-list off loopback.
    """
    return OscServer(surface, engine, host=host, port=port, allow=allow, feedback_hz=feedback_hz,
                     limits=limits).start()


# ----- a small client -----------------------------------------------------------------------------
class OscClient:
    """A small OSC client for scripts, tests and ``noisyneuron osc``: python-osc builds the
    messages; replies come back to this client's own socket.

    It keeps its feedback registrations alive by itself while :meth:`receive` runs: it answers
    ``/noisyneuron/confirm <nonce>`` with the same message (``auto_confirm``; only within
    :attr:`CONFIRM_WINDOW_S` of its own ``/noisyneuron/register``, so that a register forged in
    its name is not confirmed; the confirm messages are not returned) and, for every
    ``/noisyneuron/registered port lifetime_s`` it
    gets, sends ``/noisyneuron/register port`` again each third of the lifetime
    (``auto_renew``) until ``/noisyneuron/unregistered port`` (or this client's own
    ``/noisyneuron/unregister``).

    Args:
        host, port: the server.
        timeout: default seconds to wait for replies.
        auto_confirm: answer the server's confirmation requests.
        auto_renew: renew registrations before they expire.
    """

    #: seconds after its own /register during which the client answers /noisyneuron/confirm
    CONFIRM_WINDOW_S = 10.0

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, timeout: float = 1.0, *,
                 auto_confirm: bool = True, auto_renew: bool = True) -> None:
        family, self.server = _resolve_bind(host, port)
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
        _raise_rcvbuf(self.sock, RCVBUF_BYTES)
        self.timeout = timeout
        self.auto_confirm = auto_confirm
        self.auto_renew = auto_renew
        #: registered port -> (renewal period in seconds, time.monotonic() of the next renewal)
        self._renewals: dict[int, tuple[float, float]] = {}
        #: time.monotonic() until which a /noisyneuron/confirm is answered
        self._confirm_until = -math.inf

    @property
    def local_port(self) -> int:
        return self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "OscClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def build(address: str, *args) -> bytes:
        """One message as bytes (python-osc's builder: float -> f, int -> i, str -> s, bool -> T/F)."""
        from pythonosc.osc_message_builder import OscMessageBuilder

        builder = OscMessageBuilder(address)
        for a in args:
            builder.add_arg(a)
        return builder.build().dgram

    def send(self, address: str, *args) -> None:
        if address == f"{PREFIX}/register":
            self._confirm_until = time.monotonic() + self.CONFIRM_WINDOW_S
        elif address == f"{PREFIX}/unregister":
            port = args[0] if args and isinstance(args[0], (int, float)) else self.local_port
            self._renewals.pop(int(port), None)
        self.sock.sendto(self.build(address, *args), self.server)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def _keep_registered(self, m: OscMessage) -> bool:
        """Act on the registration messages; True for one not to return (a confirm answered)."""
        if m.address == f"{PREFIX}/confirm" and self.auto_confirm:
            if m.args and isinstance(m.args[0], str) and time.monotonic() < self._confirm_until:
                self.send(f"{PREFIX}/confirm", m.args[0])
            return True
        if m.address == f"{PREFIX}/registered" and self.auto_renew and len(m.args) >= 2:
            port, lifetime = m.args[0], m.args[1]
            if isinstance(port, int) and isinstance(lifetime, (int, float)) and lifetime > 0:
                period = float(lifetime) / 3.0
                self._renewals[port] = (period, time.monotonic() + period)
        elif m.address == f"{PREFIX}/unregistered" and m.args and isinstance(m.args[0], int):
            self._renewals.pop(m.args[0], None)
        return False

    def _renew_due(self, now: float) -> float:
        """Send the renewals that are due; returns when the next one is (inf: none)."""
        soonest = math.inf
        for port, (period, due) in list(self._renewals.items()):
            if due <= now:
                try:
                    self.send(f"{PREFIX}/register", port)
                except OSError:
                    pass
                due = now + period
                self._renewals[port] = (period, due)
            soonest = min(soonest, due)
        return soonest

    def receive(self, timeout: float | None = None, *, until: str | None = None) -> list[OscMessage]:
        """Messages that arrive within ``timeout`` seconds; with ``until``, stop early once a
        message with that address has arrived."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        out: list[OscMessage] = []
        while True:
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                return out
            if self._renewals:
                left = min(left, max(0.001, self._renew_due(now) - now))
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65536)
            except (TimeoutError, socket.timeout):
                continue
            try:
                messages = parse_packet(data)
            except OscParseError:
                continue
            messages = [m for m in messages if not self._keep_registered(m)]
            out.extend(messages)
            if until is not None and any(m.address == until for m in messages):
                return out

    def query(self, address: str, timeout: float | None = None) -> dict[str, object]:
        """The control's value as ``{"n": float, "f": float, "s": str}`` (``address``: a control's,
        with or without its ``/n``, ``/f``, ``/s`` suffix).

        Raises:
            TimeoutError: no complete reply within ``timeout``.
        """
        self.send(address)
        base = address[:-2] if address[-2:] in ("/n", "/f", "/s") else address
        got = {}
        for m in self.receive(timeout, until=base + "/s"):
            for suffix in ("n", "f", "s"):
                if m.address == f"{base}/{suffix}" and m.args:
                    got[suffix] = m.args[0]
        if len(got) != 3:
            raise TimeoutError(f"no reply to {address} from {self.server[0]}:{self.server[1]}")
        return got


# ----- benchmark ----------------------------------------------------------------------------------
def bench_osc_roundtrip(n: int = 2000, *, warmup: int = 100) -> dict[str, float]:
    """Set + query round trip on loopback, ``n`` times: send ``/noisyneuron/karaoke/vocals/f v``
    (a DSP centre-cut chain: no model to load, the OSC path is what is measured) and then the
    query, wait for the ``/s`` reply (the last of three), check the value applied.

    Returns:
        ``{"n", "p50_ms", "p99_ms", "max_ms", "mean_ms"}``; the target is p99 < 2 ms.
    """
    import statistics

    from noisyneuron.control.surface import ControlSurface
    from noisyneuron.realtime.chain import Chain
    from noisyneuron.realtime.processors.centre_cut import CentreCutKaraoke

    surface = ControlSurface(Chain([CentreCutKaraoke()], name="karaoke"))
    control = surface.find("vocals")
    p = control.parameter
    times: list[float] = []
    # the round trip is measured, not the rate limits: a query every ~0.1 ms is far over them
    unlimited = OscLimits(queries_per_s=1e9, query_burst=10**9, unconfirmed_bytes_per_s=1e12, total_bytes_per_s=1e12)
    with OscServer(surface, host="127.0.0.1", port=0, limits=unlimited) as server, \
            OscClient("127.0.0.1", server.port) as client:
        for i in range(warmup + n):
            value = p.minimum + (p.maximum - p.minimum) * ((i % 7) + 1) / 8
            t0 = time.perf_counter()
            client.send(control.address + "/f", float(value))
            reply = client.query(control.address)
            dt = time.perf_counter() - t0
            if abs(float(reply["f"]) - value) > 1e-3 * max(1.0, abs(value)):
                raise RuntimeError(f"round trip returned {reply['f']} for {value}")
            if i >= warmup:
                times.append(dt * 1000.0)
    times.sort()
    return {
        "n": n,
        "p50_ms": times[len(times) // 2],
        "p99_ms": times[min(len(times) - 1, int(0.99 * len(times)))],
        "max_ms": times[-1],
        "mean_ms": statistics.fmean(times),
    }


# ----- command line: `noisyneuron osc send|monitor` --------------------------------------------------
def add_cli_arguments(subparsers) -> argparse.ArgumentParser:
    """Add the ``osc`` command (``send``, ``monitor``) to ``noisyneuron``'s subparsers."""
    p = subparsers.add_parser(
        "osc", help="send OSC to a running NoisyNeuron, or watch its feedback",
        description="Talk OSC to a running `noisyneuron live` (see the README's OSC section).",
    )
    osc_sub = p.add_subparsers(dest="osc_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--host", default=DEFAULT_HOST, help=f"server address (default {DEFAULT_HOST})")
        q.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"server port (default {DEFAULT_PORT})")

    q = osc_sub.add_parser(
        "send", help="send one message and print the replies",
        description=(
            "Send one OSC message. Arguments are typed by their look: 12 is an int, -12.5 a float, "
            "anything else a string; force a type with i:, f: or s: (f:1 sends 1.0). With no "
            "arguments a control address is a query: its n, f and s values are printed."
        ),
        epilog=(
            "examples:\n"
            "  noisyneuron osc send /noisyneuron/karaoke/vocals/f -- -12\n"
            "  noisyneuron osc send /noisyneuron/karaoke/vocals\n"
            "  noisyneuron osc send /noisyneuron/list\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(q)
    q.add_argument("address", help="OSC address, e.g. /noisyneuron/karaoke/vocals/n")
    q.add_argument("args", nargs="*", help="arguments (put -- before negative numbers)")
    q.add_argument("--wait", type=float, default=None,
                   help="seconds to wait for replies (default: 1 when no arguments, else 0.2)")
    q = osc_sub.add_parser(
        "monitor", help="register for feedback and print every message",
        description="Register with a running NoisyNeuron and print what it sends (Ctrl-C stops).",
    )
    common(q)
    q.add_argument("--seconds", type=float, default=None, help="stop after this long")
    q.add_argument("--no-meters", action="store_true", help="hide the meter messages (30 a second)")
    q = osc_sub.add_parser(
        "register", help="keep feedback going to a port on this machine (for REAPER)",
        description=(
            "Register PORT on this machine for feedback on behalf of an application that cannot "
            "answer the server's /noisyneuron/confirm itself (REAPER): answer it, renew the "
            "registration before it expires, and unregister on the way out (Ctrl-C stops)."
        ),
    )
    common(q)
    q.add_argument("feedback_port", type=int, metavar="PORT", help="the port feedback goes to (REAPER's listen port)")
    q.add_argument("--seconds", type=float, default=None, help="stop after this long")
    p.set_defaults(func=cli_main)
    return p


def _typed(text: str):
    for prefix, kind in (("i:", int), ("f:", float), ("s:", str)):
        if text.startswith(prefix):
            try:
                return kind(text[2:])
            except ValueError:
                raise UserError(f"bad OSC argument {text!r}") from None
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def _format(m: OscMessage) -> str:
    return " ".join([m.address, *(f"{a:.6g}" if isinstance(a, float) else repr(a) if isinstance(a, str) else str(a)
                                  for a in m.args)])


def cli_main(args: argparse.Namespace) -> int:
    """Run ``noisyneuron osc send|monitor|register``."""
    with OscClient(args.host, args.port) as client:
        if args.osc_command == "send":
            values = [_typed(a) for a in args.args]
            client.send(args.address, *values)
            wait = args.wait if args.wait is not None else (1.0 if not values else 0.2)
            replies = client.receive(wait)
            for m in replies:
                print(_format(m), flush=True)
            return 0
        port = getattr(args, "feedback_port", None) if args.osc_command == "register" else None
        if port is not None and not 1 <= port <= 65535:
            raise UserError(f"port {port} out of range: use 1..65535")
        port_args = () if port is None else (port,)
        client.send(f"{PREFIX}/register", *port_args)  # the client answers the confirm and renews
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        hide_meters = getattr(args, "no_meters", False)
        try:
            while deadline is None or time.monotonic() < deadline:
                left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                for m in client.receive(max(0.0, left)):
                    if hide_meters and m.address.startswith(f"{PREFIX}/meter/"):
                        continue
                    print(_format(m), flush=True)
        except KeyboardInterrupt:
            pass
        finally:
            try:
                client.send(f"{PREFIX}/unregister", *port_args)
            except OSError:
                pass
        return 0


def _main(argv: list[str] | None = None) -> int:  # python -m noisyneuron.control.osc send|monitor ...
    parser = argparse.ArgumentParser(prog="python -m noisyneuron.control.osc")
    sub = parser.add_subparsers(dest="command", required=True)
    add_cli_arguments(sub)
    args = parser.parse_args(["osc", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except UserError as exc:
        print(f"noisyneuron: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(_main())
