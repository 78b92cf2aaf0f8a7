"""AMI wire format: framing with Asterisk's limits, response/event formatting, escaping.

Everything here is pure (bytes in, bytes out) so it can be tested without sockets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BANNER = b"Asterisk Call Manager/7.0.3\r\n"

# manager.c: `char inbuf[1025]` holds a line and its terminator; AST_MAX_MANHEADERS is 128.
MAX_LINE_BYTES = 1024
MAX_HEADERS = 128

LINE_TOO_LONG = "Failed to parse message: line too long"
TOO_MANY_LINES = "Too many lines in message or allocation failure"

# Event classes and their bits, as in include/asterisk/manager.h.
EVENT_CLASSES: dict[str, int] = {
    "system": 1 << 0,
    "call": 1 << 1,
    "log": 1 << 2,
    "verbose": 1 << 3,
    "command": 1 << 4,
    "agent": 1 << 5,
    "user": 1 << 6,
    "config": 1 << 7,
    "dtmf": 1 << 8,
    "reporting": 1 << 9,
    "cdr": 1 << 10,
    "dialplan": 1 << 11,
    "originate": 1 << 12,
    "agi": 1 << 13,
    "cc": 1 << 14,
    "aoc": 1 << 15,
    "test": 1 << 16,
    "security": 1 << 17,
    "message": 1 << 18,
}
ALL_EVENTS = (1 << 19) - 1

_TRUE = {"yes", "true", "y", "t", "1", "on"}
_FALSE = {"no", "false", "n", "f", "0", "off"}

_C_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "?": "\\?",
}
_C_ESCAPE_TABLE = str.maketrans(_C_ESCAPES)


def escape_c(value: str) -> str:
    """Escape a value the way ast_escape_c does (CallerIDName, ChanVariable, VarSet Value)."""
    return value.translate(_C_ESCAPE_TABLE)


def is_true(value: str) -> bool:
    return value.strip().lower() in _TRUE


def strings_to_mask(value: str) -> int:
    """Event mask from an `Events:`/`EventMask:` value, like manager.c strings_to_mask.

    Returns -1 for an empty value (which Asterisk treats as "leave the mask alone").
    """
    value = value.strip()
    if not value:
        return -1
    if value.isdigit():
        return int(value)
    lowered = value.lower()
    if lowered in _FALSE:
        return 0
    if lowered in _TRUE:
        return ALL_EVENTS
    mask = 0
    for name in lowered.split(","):
        if name == "all":
            mask |= ALL_EVENTS
        mask |= EVENT_CLASSES.get(name, 0)
    return mask


@dataclass
class Request:
    """One received message: its header lines in order, and a framing error if any.

    Names keep their spelling; lookups ignore case, as astman_get_header does.
    """

    lines: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None

    def get(self, key: str, default: str = "") -> str:
        """First value of a header, matched case-insensitively like astman_get_header."""
        key = key.lower()
        for name, value in self.lines:
            if name.lower() == key:
                return value
        return default

    @property
    def action(self) -> str:
        # GET_HEADER_SKIP_EMPTY: an empty Action: line does not count.
        for name, value in self.lines:
            if name.lower() == "action" and value:
                return value
        return ""

    @property
    def action_id(self) -> str:
        return self.get("actionid")


class FrameParser:
    """Splits a byte stream into Requests, applying the 1,024-byte and 128-header limits.

    A line ends at `\\n` (a preceding `\\r` is dropped), so bare `\\n` works as in get_input().
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._current = Request()
        self._count = 0
        self._discarding = False

    def feed(self, data: bytes) -> list[Request]:
        self._buffer += data
        done: list[Request] = []
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                if len(self._buffer) >= MAX_LINE_BYTES:
                    self._mark_too_long()
                    # Keep the last byte: it may be the \r of a \r\n split across reads.
                    del self._buffer[:-1]
                return done
            raw = bytes(self._buffer[:newline])
            del self._buffer[: newline + 1]
            if self._discarding:
                # The tail of an oversized line: drop it, as its head was dropped.
                self._discarding = False
                continue
            if newline >= MAX_LINE_BYTES:
                self._mark_too_long()
                self._discarding = False
                continue
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if not raw:
                done.append(self._current)
                self._current = Request()
                self._count = 0
                continue
            self._add_line(raw.decode("utf-8", "surrogateescape"))

    def _mark_too_long(self) -> None:
        if self._current.error is None:
            self._current.error = LINE_TOO_LONG
        self._discarding = True

    def _add_line(self, line: str) -> None:
        self._count += 1
        if self._count > MAX_HEADERS:
            if self._current.error is None:
                self._current.error = TOO_MANY_LINES
            return
        key, colon, value = line.partition(":")
        if not colon:
            # Kept so it counts towards the limit, but it can never match a header name.
            self._current.lines.append(("", line))
            return
        self._current.lines.append((key, value.lstrip(" \t")))


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def response(
    request: Request,
    status: str,
    message: str | None = None,
    *,
    extra: list[tuple[str, str]] | None = None,
    event_list: str | None = None,
) -> bytes:
    """A reply in astman_send_response_full order: Response, ActionID, EventList, Message."""
    parts = [f"Response: {status}\r\n"]
    if request.action_id:
        parts.append(f"ActionID: {request.action_id}\r\n")
    if event_list:
        parts.append(f"EventList: {event_list}\r\n")
    if message is not None:
        parts.append(f"Message: {message}\r\n")
    for key, value in extra or ():
        parts.append(f"{key}: {value}\r\n")
    parts.append("\r\n")
    return _encode("".join(parts))


def event(name: str, category: str, body: str) -> bytes:
    """A broadcast event; `body` is preformatted `Key: Value\\r\\n` lines."""
    return _encode(f"Event: {name}\r\nPrivilege: {category},all\r\n{body}\r\n")


def list_item(name: str, request: Request, body: str) -> bytes:
    """An item of an event list: sent with astman_append, so ActionID and no Privilege."""
    action_id = f"ActionID: {request.action_id}\r\n" if request.action_id else ""
    return _encode(f"Event: {name}\r\n{action_id}{body}\r\n")


def list_complete(name: str, request: Request, count: int) -> bytes:
    action_id = f"ActionID: {request.action_id}\r\n" if request.action_id else ""
    return _encode(f"Event: {name}\r\n{action_id}EventList: Complete\r\nListItems: {count}\r\n\r\n")


def fields(pairs: list[tuple[str, object]]) -> str:
    return "".join(f"{key}: {value}\r\n" for key, value in pairs)
