"""Who the OSC server may send to, and how much: the feedback registrations and their limits.

The OSC server (:mod:`noisyneuron.control.osc`) speaks UDP, where a sender's address can be
forged. So that one forged datagram cannot aim its replies and its feedback at somebody else, the
server keeps three things here, all bounded:

- :class:`ClientTable`: registrations. ``/noisyneuron/register`` only creates a *pending* one
  and sends a random nonce to the address being registered; it becomes a *confirmed* feedback
  client when the nonce comes back from that host. A confirmed client expires
  ``registration_lifetime_s`` after the last datagram from it, and is dropped after
  ``max_send_errors`` send errors (ICMP unreachable) with no datagram from it in between.
- :class:`HostLimiter`: a token bucket per sending host (IP) for queries, bulk replies
  (``/list``, ``/dump``), confirmation requests and error replies.
- :class:`TokenBucket` byte caps: per confirmed client, for everything sent to addresses that are
  not confirmed clients, and for everything the server sends.

:class:`OscLimits` holds every number (and their defaults). Nothing here touches a socket.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass, field, fields

__all__ = ["ClientTable", "FeedbackClient", "HostLimiter", "OscLimits", "PendingRegistration", "TokenBucket"]

Address = tuple[str, int]


@dataclass(frozen=True)
class OscLimits:
    """The OSC server's limits (pass ``OscServer(..., limits=OscLimits(...))``).

    Rates are per second and per sending host (IP address, any port) unless said otherwise; a
    bucket starts full and holds at most its burst.

    Attributes:
        registration_lifetime_s: a confirmed client is dropped this many seconds after the last
            datagram from it (from its registered address or an address that registered it);
            re-sending ``/noisyneuron/register`` renews it (default 60).
        confirm_timeout_s: seconds a registration waits for its nonce to come back (default 10).
        max_clients: confirmed feedback clients at most (default 16).
        max_pending: registrations waiting for their nonce at most; a new one pushes out the
            oldest (default 16).
        max_registrants_per_client: addresses whose replies go to one client's address at most
            (default 4; more push out the oldest).
        max_send_errors: send errors (ICMP port/host unreachable, or the OS refusing the
            datagram) to a client with no datagram from it in between, after which it is dropped
            (default 3).
        client_bytes_per_s: bytes per second to one confirmed client (replies and feedback), in
            bursts of at most one second's worth (default 128 KiB/s).
        unconfirmed_bytes_per_s: bytes per second to every address that is not a confirmed
            client, together (query replies, confirmation requests, errors; default 64 KiB/s).
        total_bytes_per_s: bytes per second the server sends in all (default 1 MiB/s).
        queries_per_s, query_burst: queries (a control's value, ``/query``, ``/info``,
            ``/ping``) answered per host (default 100/s, burst 100).
        bulk_per_s, bulk_burst: ``/list`` and ``/dump`` answered per host (default 1/s, burst 4).
        confirm_requests_per_s, confirm_request_burst: registrations (confirmation requests
            sent) per host (default 1/s, burst 4).
        errors_per_s, error_burst: ``/noisyneuron/error`` replies per host (default 2/s, burst 10).
        max_error_replies_per_s: ``/noisyneuron/error`` replies per second in all (default 20).
        max_tracked_hosts: hosts with rate-limit state at most (the least recently seen is
            forgotten first; default 1024).
    """

    registration_lifetime_s: float = 60.0
    confirm_timeout_s: float = 10.0
    max_clients: int = 16
    max_pending: int = 16
    max_registrants_per_client: int = 4
    max_send_errors: int = 3
    client_bytes_per_s: float = 128 * 1024
    unconfirmed_bytes_per_s: float = 64 * 1024
    total_bytes_per_s: float = 1024 * 1024
    queries_per_s: float = 100.0
    query_burst: int = 100
    bulk_per_s: float = 1.0
    bulk_burst: int = 4
    confirm_requests_per_s: float = 1.0
    confirm_request_burst: int = 4
    errors_per_s: float = 2.0
    error_burst: int = 10
    max_error_replies_per_s: float = 20.0
    max_tracked_hosts: int = 1024

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"OSC limit {f.name} must be a positive number, got {value!r}")


class TokenBucket:
    """``rate`` tokens per second, holding at most ``capacity``; starts full.

    Times are :func:`time.monotonic` seconds, passed in (so that one clock reading serves a
    whole datagram).
    """

    __slots__ = ("rate", "capacity", "tokens", "stamp")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = float(rate)
        self.capacity = float(capacity)
        self.tokens = float(capacity)
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def has(self, amount: float, now: float) -> bool:
        self._refill(now)
        return self.tokens >= amount

    def take(self, amount: float, now: float) -> bool:
        """Take ``amount`` tokens if there are that many (True), else take none (False)."""
        self._refill(now)
        if self.tokens < amount:
            return False
        self.tokens -= amount
        return True


class _HostBuckets:
    __slots__ = ("query", "bulk", "confirm_request", "error")

    def __init__(self, limits: OscLimits, now: float) -> None:
        self.query = TokenBucket(limits.queries_per_s, limits.query_burst, now)
        self.bulk = TokenBucket(limits.bulk_per_s, limits.bulk_burst, now)
        self.confirm_request = TokenBucket(limits.confirm_requests_per_s, limits.confirm_request_burst, now)
        self.error = TokenBucket(limits.errors_per_s, limits.error_burst, now)


class HostLimiter:
    """Per-host token buckets (``query``, ``bulk``, ``confirm_request``, ``error``), at most
    ``limits.max_tracked_hosts`` hosts (the least recently seen is forgotten first)."""

    def __init__(self, limits: OscLimits) -> None:
        self.limits = limits
        self._hosts: OrderedDict[str, _HostBuckets] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hosts)

    def take(self, host: str, kind: str, now: float) -> bool:
        """One token of ``kind`` for ``host``: True when there was one."""
        buckets = self._hosts.get(host)
        if buckets is None:
            if len(self._hosts) >= self.limits.max_tracked_hosts:
                self._hosts.popitem(last=False)
            buckets = self._hosts[host] = _HostBuckets(self.limits, now)
        else:
            self._hosts.move_to_end(host)
        return getattr(buckets, kind).take(1, now)


@dataclass
class PendingRegistration:
    """A registration waiting for its nonce to come back from ``address``'s host."""

    address: Address
    nonce: str
    created: float
    #: senders of the /register (their replies go to ``address`` once confirmed), oldest first
    registrants: list[Address] = field(default_factory=list)


@dataclass
class FeedbackClient:
    """A confirmed feedback client: it proved it receives at ``address``'s host."""

    address: Address
    nonce: str
    expires: float
    bytes: TokenBucket
    registrants: list[Address] = field(default_factory=list)
    #: send errors reported for ``address`` since the last datagram from this client
    send_errors: int = 0
    #: feedback address -> the datagram last sent to this client (not sent again while unchanged)
    last: dict[str, bytes] = field(default_factory=dict)
    #: True while some control's state has not reached this client (byte cap): sent next tick
    resync: bool = True


def _add_bounded(items: list[Address], item: Address, most: int) -> None:
    if item in items:
        return
    items.append(item)
    del items[:-most]


class ClientTable:
    """Pending and confirmed registrations, both bounded; see the module docstring.

    ``clients`` is replaced, never changed in place, so other threads may read it.
    """

    def __init__(self, limits: OscLimits) -> None:
        self.limits = limits
        self.clients: dict[Address, FeedbackClient] = {}
        self.pending: OrderedDict[Address, PendingRegistration] = OrderedDict()
        self._pending_by_nonce: dict[str, Address] = {}
        self._reply_to: dict[Address, Address] = {}

    # ----- look-ups ------------------------------------------------------------------------------
    def client_for(self, sender: Address) -> FeedbackClient | None:
        """The confirmed client that ``sender`` is (its address or one that registered it)."""
        client = self.clients.get(sender)
        if client is None:
            target = self._reply_to.get(sender)
            if target is not None:
                client = self.clients.get(target)
        return client

    # ----- changes -------------------------------------------------------------------------------
    def renew(self, client: FeedbackClient, now: float) -> None:
        client.expires = now + self.limits.registration_lifetime_s
        client.send_errors = 0

    def add_registrant(self, client: FeedbackClient, sender: Address) -> None:
        if sender == client.address or sender in client.registrants:
            return
        _add_bounded(client.registrants, sender, self.limits.max_registrants_per_client)
        self._rebuild_reply_to()

    def add_pending(self, address: Address, registrant: Address, now: float) -> PendingRegistration:
        """The pending registration of ``address`` (a new nonce, or the one already asked for;
        the oldest pending one makes room when the table is full)."""
        pending = self.pending.get(address)
        if pending is None:
            while len(self.pending) >= self.limits.max_pending:
                _, oldest = self.pending.popitem(last=False)
                self._pending_by_nonce.pop(oldest.nonce, None)
            pending = PendingRegistration(address, secrets.token_hex(8), now)
            self.pending[address] = pending
            self._pending_by_nonce[pending.nonce] = address
        if registrant != address:
            _add_bounded(pending.registrants, registrant, self.limits.max_registrants_per_client)
        return pending

    def confirm(self, nonce: str, sender: Address, now: float) -> tuple[str, FeedbackClient | None]:
        """Take a nonce that came back from ``sender``.

        Returns:
            ``("confirmed", client)`` for a new client; ``("renewed", client)`` for a nonce
            that client already confirmed (a second copy); ``("bad_confirm", None)`` for an
            unknown or expired nonce, or one from another host; ``("too_many_clients", None)``.
        """
        address = self._pending_by_nonce.get(nonce)
        if address is None:
            for client in self.clients.values():
                if client.nonce == nonce and client.address[0] == sender[0]:
                    return "renewed", client
            return "bad_confirm", None
        if address[0] != sender[0]:
            return "bad_confirm", None
        pending = self.pending.pop(address)
        del self._pending_by_nonce[nonce]
        if len(self.clients) >= self.limits.max_clients:
            return "too_many_clients", None
        client = FeedbackClient(
            address, nonce, now + self.limits.registration_lifetime_s,
            TokenBucket(self.limits.client_bytes_per_s, self.limits.client_bytes_per_s, now),
        )
        for registrant in [*pending.registrants, sender]:
            if registrant != address:
                _add_bounded(client.registrants, registrant, self.limits.max_registrants_per_client)
        self.clients = {**self.clients, address: client}
        self._rebuild_reply_to()
        return "confirmed", client

    def remove(self, address: Address) -> FeedbackClient | PendingRegistration | None:
        """Forget the registration of ``address`` (confirmed or pending); returns it, or None."""
        client = self.clients.get(address)
        if client is not None:
            self.clients = {k: v for k, v in self.clients.items() if k != address}
            self._rebuild_reply_to()
            return client
        pending = self.pending.pop(address, None)
        if pending is not None:
            self._pending_by_nonce.pop(pending.nonce, None)
        return pending

    def expire(self, now: float) -> list[FeedbackClient]:
        """Drop pending registrations older than ``confirm_timeout_s`` and clients past their
        lifetime; returns the clients dropped."""
        timeout = self.limits.confirm_timeout_s
        while self.pending:
            address, oldest = next(iter(self.pending.items()))
            if now - oldest.created < timeout:
                break
            self.pending.popitem(last=False)
            self._pending_by_nonce.pop(oldest.nonce, None)
        gone = [c for c in self.clients.values() if c.expires <= now]
        for client in gone:
            self.remove(client.address)
        return gone

    def count_send_error(self, address: Address) -> FeedbackClient | None:
        """Count a send error to ``address``; returns the client when that drops it."""
        client = self.clients.get(address)
        if client is None:
            return None
        client.send_errors += 1
        if client.send_errors >= self.limits.max_send_errors:
            self.remove(address)
            return client
        return None

    def _rebuild_reply_to(self) -> None:
        self._reply_to = {r: c.address for c in self.clients.values() for r in c.registrants}
