"""OSC 1.0 packets to and from bytes, for a server that takes datagrams from anyone.

The OSC server (:mod:`noisyneuron.control.osc`) parses with this module instead of python-osc's
parser because every datagram is untrusted input: python-osc's parser logs a warning per unknown
type tag (a flood of them would flood stderr), skips such tags without knowing their size (so it
misreads the rest), lets a ``UnicodeDecodeError`` escape, and walks bundles of any size and depth.
Here a packet either parses completely, within the limits given, or raises :class:`OscParseError`
naming why; nothing else is raised. The encoder writes what python-osc (and REAPER, TouchOSC)
read; the tests check that with python-osc's own parser.

Argument types read: ``i`` int32, ``h`` int64, ``f`` float32, ``d`` float64, ``s``/``S`` string,
``b`` blob (bytes), ``T``/``F`` (True/False), ``N`` (None), ``I`` (infinitum: ``math.inf``),
``c`` char (str), ``t`` time tag (int), ``r`` RGBA and ``m`` MIDI (4-byte tuples), ``[ ]``
arrays (tuples). Anything else makes the packet malformed.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

__all__ = [
    "BUNDLE_TAG",
    "OscMessage",
    "OscParseError",
    "encode_bundle",
    "encode_message",
    "parse_packet",
]

BUNDLE_TAG = b"#bundle\x00"
#: time tag meaning "immediately"
IMMEDIATELY = 1

_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_MAX_ARGS = 256
_MAX_ARRAY_DEPTH = 4


class OscParseError(ValueError):
    """A packet that is not valid OSC, or exceeds a limit.

    Attributes:
        reason: ``"malformed"`` or ``"bundle_too_large"`` (too many messages, or nested too deep).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OscMessage:
    """One OSC message: its address and its arguments as Python values."""

    address: str
    args: tuple

    def __str__(self) -> str:
        return " ".join([self.address, *(repr(a) for a in self.args)])


def _padded(n: int) -> int:
    """``n`` rounded up to a multiple of 4."""
    return (n + 3) & ~3


def _read_string(data: bytes, pos: int, end: int) -> tuple[str, int]:
    nul = data.find(b"\x00", pos, end)
    if nul < 0:
        raise OscParseError("malformed", "unterminated string")
    nxt = pos + _padded(nul - pos + 1)
    if nxt > end:
        raise OscParseError("malformed", "string padding runs past the end")
    try:
        return data[pos:nul].decode("utf-8"), nxt
    except UnicodeDecodeError:
        raise OscParseError("malformed", "string is not UTF-8") from None


def _need(pos: int, size: int, end: int) -> None:
    if pos + size > end:
        raise OscParseError("malformed", "argument runs past the end")


def parse_message(data: bytes, pos: int = 0, end: int | None = None) -> OscMessage:
    """Parse one OSC message from ``data[pos:end]``. Raises :class:`OscParseError`."""
    end = len(data) if end is None else end
    if pos >= end or data[pos] != 0x2F:  # '/'
        raise OscParseError("malformed", "an OSC message starts with '/'")
    address, pos = _read_string(data, pos, end)
    if pos >= end:  # no type tag string: no arguments (old senders omit ",")
        return OscMessage(address, ())
    if data[pos] != 0x2C:  # ','
        raise OscParseError("malformed", "type tag string must start with ','")
    tags, pos = _read_string(data, pos, end)
    if len(tags) - 1 > _MAX_ARGS:
        raise OscParseError("malformed", f"more than {_MAX_ARGS} arguments")
    stack: list[list] = [[]]
    for tag in tags[1:]:
        if tag == "i":
            _need(pos, 4, end)
            value = _I32.unpack_from(data, pos)[0]
            pos += 4
        elif tag == "f":
            _need(pos, 4, end)
            value = _F32.unpack_from(data, pos)[0]
            pos += 4
        elif tag == "s" or tag == "S":
            value, pos = _read_string(data, pos, end)
        elif tag == "d":
            _need(pos, 8, end)
            value = _F64.unpack_from(data, pos)[0]
            pos += 8
        elif tag == "h":
            _need(pos, 8, end)
            value = _I64.unpack_from(data, pos)[0]
            pos += 8
        elif tag == "T":
            value = True
        elif tag == "F":
            value = False
        elif tag == "N":
            value = None
        elif tag == "I":
            value = math.inf
        elif tag == "b":
            _need(pos, 4, end)
            size = _I32.unpack_from(data, pos)[0]
            if size < 0:
                raise OscParseError("malformed", "negative blob size")
            _need(pos + 4, _padded(size), end)
            value = bytes(data[pos + 4 : pos + 4 + size])
            pos += 4 + _padded(size)
        elif tag == "t":
            _need(pos, 8, end)
            value = _U64.unpack_from(data, pos)[0]
            pos += 8
        elif tag == "c":
            _need(pos, 4, end)
            code = _I32.unpack_from(data, pos)[0]
            if not 0 <= code <= 0x10FFFF:
                raise OscParseError("malformed", "bad char")
            value = chr(code)
            pos += 4
        elif tag == "r" or tag == "m":
            _need(pos, 4, end)
            value = tuple(data[pos : pos + 4])
            pos += 4
        elif tag == "[":
            if len(stack) > _MAX_ARRAY_DEPTH:
                raise OscParseError("malformed", "arrays nested too deep")
            stack.append([])
            continue
        elif tag == "]":
            if len(stack) < 2:
                raise OscParseError("malformed", "']' without '['")
            inner = stack.pop()
            stack[-1].append(tuple(inner))
            continue
        else:
            raise OscParseError("malformed", f"unknown type tag {tag!r}")
        stack[-1].append(value)
    if len(stack) != 1:
        raise OscParseError("malformed", "'[' without ']'")
    if pos != end:
        raise OscParseError("malformed", "bytes left after the last argument")
    return OscMessage(address, tuple(stack[0]))


def parse_packet(data: bytes, *, max_messages: int = 64, max_depth: int = 4) -> list[OscMessage]:
    """The messages in one datagram: a message, or a bundle (nested bundles flattened in order).

    Bundle time tags are not honoured: everything applies on arrival.

    Args:
        max_messages: more messages than this in one bundle (at any depth) rejects the whole
            bundle (``reason="bundle_too_large"``): none of it is applied.
        max_depth: bundles nested deeper than this are rejected the same way.

    Raises:
        OscParseError: malformed or over a limit; nothing of the packet is returned.
    """
    if data[:1] == b"/":
        return [parse_message(data)]
    if data[:8] != BUNDLE_TAG:
        raise OscParseError("malformed", "neither an OSC message nor a bundle")
    out: list[OscMessage] = []
    _parse_bundle(data, 0, len(data), out, max_messages, max_depth, 1)
    return out


def _parse_bundle(data: bytes, pos: int, end: int, out: list, max_messages: int, max_depth: int, depth: int) -> None:
    if depth > max_depth:
        raise OscParseError("bundle_too_large", f"bundles nested deeper than {max_depth}")
    if end - pos < 16 or data[pos : pos + 8] != BUNDLE_TAG:
        raise OscParseError("malformed", "bad bundle header")
    pos += 16  # "#bundle\0" and the time tag
    while pos < end:
        _need(pos, 4, end)
        size = _I32.unpack_from(data, pos)[0]
        pos += 4
        if size <= 0 or size % 4 or pos + size > end:
            raise OscParseError("malformed", "bad bundle element size")
        if data[pos] == 0x2F:
            if len(out) >= max_messages:
                raise OscParseError("bundle_too_large", f"more than {max_messages} messages in a bundle")
            out.append(parse_message(data, pos, pos + size))
        else:
            _parse_bundle(data, pos, pos + size, out, max_messages, max_depth, depth + 1)
        pos += size


# ----- encoding -----------------------------------------------------------------------------------
def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return raw + b"\x00" * (4 - len(raw) % 4)


def encode_message(address: str, *args) -> bytes:
    """One OSC message as bytes. Argument types: bool (``T``/``F``), int (``i``, or ``h`` beyond
    32 bits), float (``f``), str (``s``), bytes (``b``), None (``N``)."""
    tags = [","]
    payload = []
    for a in args:
        if a is True:
            tags.append("T")
        elif a is False:
            tags.append("F")
        elif a is None:
            tags.append("N")
        elif isinstance(a, int):
            if -(2**31) <= a < 2**31:
                tags.append("i")
                payload.append(_I32.pack(a))
            else:
                tags.append("h")
                payload.append(_I64.pack(a))
        elif isinstance(a, float):
            tags.append("f")
            payload.append(_F32.pack(a))
        elif isinstance(a, str):
            tags.append("s")
            payload.append(_string(a))
        elif isinstance(a, (bytes, bytearray)):
            tags.append("b")
            payload.append(_I32.pack(len(a)) + bytes(a) + b"\x00" * (_padded(len(a)) - len(a)))
        else:
            raise TypeError(f"cannot encode {type(a).__name__} as an OSC argument")
    return _string(address) + _string("".join(tags)) + b"".join(payload)


def encode_bundle(*elements: bytes, timetag: int = IMMEDIATELY) -> bytes:
    """A bundle of already encoded messages (or bundles)."""
    return BUNDLE_TAG + _U64.pack(timetag) + b"".join(_I32.pack(len(e)) + e for e in elements)
