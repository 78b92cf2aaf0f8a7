"""The one seam to the PBX: pyst2's Manager, with its known defects fixed around it (docs/pbx.md §9).

What stock pyst2 0.5.1 gets wrong, and what this module does instead:
- its socket file is unbuffered, read byte by byte (under 1,000 events/s): ours is read in large
  chunks, cut into messages with one split per read, and an ordinary event's headers are built
  with a few C-level calls, in the reader thread (one queue hop fewer);
- any ChanVariable header kills its reader thread on Python 3 (`has_key`): `Message` parses them;
- responses are matched in arrival order with no timeout: every action gets its own ActionID,
  its response is matched by it, and waiting for it times out;
- `send_action(cdict={})` shares one dict between calls: headers are built afresh for every action;
- one failing event callback stops all dispatch: each callback runs alone, its error is logged;
- a Manager cannot reconnect: `connect_with_retry` builds a fresh one per connection, with
  exponential backoff and one log line per failed attempt.
Every value sent is stripped of control characters, so CR or LF can never start a new header.
"""

import itertools
import logging
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import asterisk.manager

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
# Bounds on what one message may hold; past them it is logged and dropped, never kept in memory.
MAX_FRAME = 256 * 1024
MAX_FRAME_LINES = 1024
MAX_VALUE = 1024
HEADER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
CHUNK = 256 * 1024  # the most one read from the socket takes
# A message this short (in bytes) cannot break a bound above: the fast path takes it whole.
SHORT_MESSAGE = 2048
MAX_KNOWN_NAMES = 4096
_plain_names: set[str] = set()  # header names seen valid, ChanVariable ones excepted: no check on the fast path
_separator, _once = itertools.repeat(": "), itertools.repeat(1)

EventCallback = Callable[[dict], None]


class AMIError(Exception):
    pass


class AMIConnectError(AMIError):
    """The PBX could not be reached, or the connection dropped."""


class AMIAuthError(AMIError):
    """The PBX refused the login."""


class AMITimeout(AMIError):
    """An action got no response in time."""


@dataclass(frozen=True)
class AMIConfig:
    host: str
    port: int
    username: str
    secret: str
    timeout: float = 5.0
    ping_interval: float = 20.0

    @classmethod
    def from_settings(cls) -> "AMIConfig":
        from django.conf import settings

        return cls(settings.AMI_HOST, settings.AMI_PORT, settings.AMI_USERNAME, settings.AMI_SECRET)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def header_value(value) -> str:
    """A value safe to send: control characters (CR and LF above all) become one space."""
    return CONTROL.sub(" ", str(value)).strip()


def dial_number(raw: str) -> str:
    """Digits, with a leading + kept: all that may reach a dial string or a caller-ID number."""
    digits = "".join(ch for ch in raw if ch.isascii() and ch.isdigit())
    if not digits:
        raise ValueError(f"{raw!r} has no digits to dial")
    return f"+{digits}" if raw.strip().startswith("+") else digits


class Message(asterisk.manager.ManagerMsg):
    """pyst2's message, parsed from lines without their CRLF, ChanVariable headers included.

    Repeated keys keep the last value; `<prefix>ChanVariable: name=value` lines collect into a
    dict under their own key, as pyst2 meant them to. A value is cut at MAX_VALUE characters and
    loses any NUL byte, so nothing unbounded or unstorable goes further.
    """

    def parse(self, response):
        for number, line in enumerate(response):
            key, colon, value = line.partition(":")
            if not colon or not HEADER_NAME.match(key):
                self.data = "\n".join(response[number:])
                return
            value = value.strip()[:MAX_VALUE].replace("\x00", "")
            if key.endswith("ChanVariable"):
                name, _, variable = value.partition("=")
                variables = self.headers.setdefault(key, {})
                if isinstance(variables, dict):
                    variables[name] = variable
            else:
                self.headers[key] = value


def _event_headers(lines: list[str], long: bool) -> dict | None:
    """An event's headers as `Message` would parse them, built with C-level calls; None when only it can say.

    That is a message whose every line is `Name: value` with a known-good name (no ChanVariable),
    no value that strip() or the MAX_VALUE cut (`long`: the message could hold one) would change,
    and an Event header.
    """
    try:
        headers = dict(map(str.split, lines, _separator, _once))  # a repeated name keeps its last value
    except ValueError:  # a line without ": "
        return None
    values = list(headers.values())
    if "Event" not in headers or list(map(str.strip, values)) != values:
        return None
    if not (_plain_names.issuperset(headers) or _learn(headers)):
        return None
    if long and max(map(len, values)) > MAX_VALUE:
        return None
    return headers


def _learn(names) -> bool:
    """Remember the valid plain header names among `names`; True when all of them are."""
    plain = True
    for name in names:
        if name not in _plain_names:
            if HEADER_NAME.match(name) and not name.endswith("ChanVariable"):
                if len(_plain_names) < MAX_KNOWN_NAMES:
                    _plain_names.add(name)
            else:
                plain = False
    return plain


class Framer:
    """Cuts the PBX's byte stream into messages, exactly as reading it line by line would (docs/pbx.md §1).

    A line ends at LF, CRs before it dropped; an empty line ends a message. A line over MAX_LINE
    bytes is logged and skipped; a message over MAX_FRAME bytes or MAX_FRAME_LINES lines is logged
    and dropped whole; nothing more than that is held in memory. Whole messages in plain CRLF (or
    plain LF) are cut with one split per read; anything else goes line by line.
    `feed` gives (lines, headers) pairs: `headers` is an event's dict when `_event_headers` could
    build it, else None and `Message(lines)` parses them.
    """

    def __init__(self, name: str = ""):
        self.name = name
        self._pending = b""  # bytes read but not handled yet; between messages, a message's start
        self._lines: list[str] = []  # the message being read line by line
        self._size = 0
        self._oversized = False
        self._skipping = False  # inside a line over MAX_LINE

    def feed(self, data: bytes) -> list[tuple[list[str], dict | None]]:
        out: list[tuple[list[str], dict | None]] = []
        buf = self._pending + data if self._pending else data
        pos = 0
        if not self._between():
            pos = self._by_line(buf, pos, out, one_message=True)
        if self._between():
            end = self._whole(buf, pos, out)
            if end is None or len(buf) - end > MAX_LINE:  # not plain, or a long message still coming
                end = self._by_line(buf, pos if end is None else end, out, one_message=False)
            pos = end
        self._pending = buf[pos:]
        return out

    def _between(self) -> bool:
        return not self._lines and not self._oversized and not self._skipping

    def _whole(self, buf: bytes, pos: int, out: list) -> int | None:
        """The whole messages from `pos` when they are plain CRLF or plain LF: where they end, or None."""
        end = buf.rfind(b"\r\n\r\n", pos)
        if end >= 0:
            eol, stop = b"\r\n", end + 4
            whole = buf[pos:stop]
            if whole.count(b"\n") != whole.count(b"\r\n") or b"\r\r\n" in whole:
                return None
        else:
            end = buf.rfind(b"\n\n", pos)
            if end < 0:
                return pos  # no whole message yet
            eol, stop = b"\n", end + 2
            whole = buf[pos:stop]
            if b"\r" in whole:
                return None
        end_of_message, text_eol = eol + eol, eol.decode()
        odd = b"\x00" in whole  # NUL bytes: Message drops them
        for raw in whole.split(end_of_message):
            if not raw or raw[0] == eol[0] or len(raw) > SHORT_MESSAGE:
                while raw.startswith(eol):  # empty lines before a message
                    raw = raw[len(eol):]
                if not raw:
                    continue
                if len(raw) > SHORT_MESSAGE:
                    self._by_line(raw + end_of_message, 0, out, one_message=True)
                    continue
            lines = raw.decode("utf-8", "replace").split(text_eol)
            out.append((lines, None if odd else _event_headers(lines, len(raw) > MAX_VALUE)))
        return stop

    def _by_line(self, buf: bytes, pos: int, out: list, *, one_message: bool) -> int:
        """Whole lines from `pos` through the bounds, up to the end of a message if `one_message`; where it stopped."""
        while True:
            newline = buf.find(b"\n", pos)
            if self._skipping:
                if newline < 0:
                    return len(buf)
                self._skipping, pos = False, newline + 1
                continue
            if newline < 0:
                if len(buf) - pos >= MAX_LINE:
                    log.warning("AMI %s: dropped a line longer than %d bytes", self.name, MAX_LINE)
                    self._skipping = True
                    return len(buf)
                return pos
            start, pos = pos, newline + 1
            if pos - start > MAX_LINE:
                log.warning("AMI %s: dropped a line longer than %d bytes", self.name, MAX_LINE)
                continue
            line = buf[start:newline].decode("utf-8", "replace").rstrip("\r")
            if line:
                self._size += pos - start
                if self._size > MAX_FRAME or len(self._lines) >= MAX_FRAME_LINES:
                    if not self._oversized:
                        log.warning("AMI %s: dropped a message over %d bytes or %d lines", self.name, MAX_FRAME, MAX_FRAME_LINES)
                    self._lines, self._oversized = [], True
                elif not self._oversized:
                    self._lines.append(line)
                continue
            if self._lines:
                out.append((self._lines, None))
            self._lines, self._size, self._oversized = [], 0, False
            if one_message:
                return pos


class _Pending:
    __slots__ = ("done", "message", "error", "items")

    def __init__(self, listing: bool = False):
        self.done = threading.Event()
        self.message: Message | None = None
        self.error: AMIError | None = None
        self.items: list[dict] | None = [] if listing else None  # the events of a list action


class AMIConnection(asterisk.manager.Manager):
    """One AMI connection. Events go to `on_event` (dicts of headers) in the reader thread."""

    def __init__(self, config: AMIConfig, *, on_event: EventCallback | None = None, on_close: Callable[[], None] | None = None):
        super().__init__()
        self.config = config
        self._callbacks: list[EventCallback] = [on_event] if on_event else []
        self._on_close = on_close
        self._waiting: dict[str, _Pending] = {}
        self._write_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._id_prefix = uuid.uuid4().hex[:8]
        self._raw: socket.socket | None = None
        self._closed = threading.Event()
        self.message_thread = threading.Thread(target=self.message_loop, name="ami-reader", daemon=True)
        self._pinger = threading.Thread(target=self._ping_loop, name="ami-ping", daemon=True)

    def add_event_callback(self, callback: EventCallback) -> None:
        self._callbacks.append(callback)

    # -- connecting ---------------------------------------------------------------------------

    def connect(self, host=None, port=None):
        """Open the socket and read the greeting; `login` follows. Raises AMIConnectError."""
        address = (host or self.config.host, int(port or self.config.port))
        try:
            self._raw = socket.create_connection(address, timeout=self.config.timeout)
            self._raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            self._sock = self._raw.makefile("rwb")  # buffered: pyst2's buffering=0 reads byte by byte
            greeting = self._sock.readline(MAX_LINE).decode("utf-8", "replace").strip()
            self._raw.settimeout(None)
        except OSError as error:
            self._drop_socket()
            raise AMIConnectError(f"{self.config.address}: {error.strerror or error}") from None
        name, slash, version = greeting.partition("/")
        if not slash:
            self._drop_socket()
            raise AMIConnectError(f"{self.config.address}: not an AMI greeting: {greeting[:80]!r}")
        self.title, self.version = name, version
        self._connected.set()
        self._running.set()
        self.message_thread.start()
        return greeting

    def login(self, username=None, secret=None):
        response = self.send_action({"Action": "Login", "Username": username or self.config.username, "Secret": secret or self.config.secret})
        if response.get_header("Response") != "Success":
            self.close()
            raise AMIAuthError(f"{self.config.address}: login refused ({response.get_header('Message', 'no reason given')})")
        if self.config.ping_interval:
            self._pinger.start()
        return response

    def close(self):
        """Log off if still connected, then stop the reader. Safe to call more than once."""
        self._running.clear()  # from here on, the connection ending is expected
        if self._connected.is_set():
            try:
                self.send_action({"Action": "Logoff"}, timeout=1)
            except AMIError:
                pass
        self._closed.set()
        self._drop_socket()
        if self.message_thread.is_alive() and threading.current_thread() is not self.message_thread:
            self.message_thread.join(timeout=5)

    def _drop_socket(self):
        self._connected.clear()
        if self._raw is not None:
            try:
                self._raw.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._raw.close()

    # -- actions ------------------------------------------------------------------------------

    def send_action(self, cdict: Mapping, timeout: float | None = None, *, listing: bool = False, **kwargs) -> Message:
        """Send one action and wait for the response with its ActionID. Raises AMIError.

        With `listing`, the action answers with a list of events (EventList: start … Complete):
        the wait lasts until the list is complete, and its events are in `.items` of the result.
        """
        if not self._connected.is_set():
            raise AMIConnectError(f"{self.config.address}: not connected")
        headers = {**cdict, **kwargs}
        # A caller's own ActionID (unique among its pending actions) is kept: events quote it back.
        given = next((header_value(value) for key, value in headers.items() if key.lower() == "actionid"), "")
        action_id = given or f"{self._id_prefix}-{next(self._ids)}"
        lines = []
        for key, value in headers.items():
            if key.lower() == "actionid":
                continue
            if not HEADER_NAME.match(key):
                raise ValueError(f"{key!r} is not an AMI header name")
            for item in value if isinstance(value, list | tuple) else [value]:
                lines.append(f"{key}: {header_value(item)}")
        lines.append(f"ActionID: {action_id}")
        pending = self._waiting[action_id] = _Pending(listing)
        try:
            with self._write_lock:
                self._sock.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
                self._sock.flush()
        except (OSError, ValueError) as error:
            self._waiting.pop(action_id, None)
            raise AMIConnectError(f"{self.config.address}: {error}") from None
        if not pending.done.wait(self.config.timeout if timeout is None else timeout):
            self._waiting.pop(action_id, None)
            raise AMITimeout(f"{self.config.address}: no response to {headers.get('Action')} in {timeout or self.config.timeout} s")
        if pending.error:
            raise pending.error
        pending.message.items = pending.items or []
        return pending.message

    def live_channels(self) -> set[str]:
        """The Uniqueid and Linkedid of every channel the PBX has now (CoreShowChannels)."""
        listing = self.send_action({"Action": "CoreShowChannels"}, listing=True)
        if "Event" not in listing.headers:  # refused: an empty set here would mean "nothing is alive"
            raise AMIError(f"{self.config.address}: CoreShowChannels refused ({listing.get_header('Message', 'no reason given')})")
        return {item[key] for item in listing.items for key in ("Uniqueid", "Linkedid") if item.get(key)}

    def ping(self):
        return self.send_action({"Action": "Ping"})

    def _ping_loop(self):
        while not self._closed.wait(self.config.ping_interval):
            try:
                self.ping()
            except AMIError as error:
                log.warning("AMI %s: keep-alive failed (%s); dropping the connection", self.config.address, error)
                self._drop_socket()
                return

    # -- reading ------------------------------------------------------------------------------

    def message_loop(self):
        """Reader thread: read in chunks, cut into messages, hand events over, match responses."""
        framer = Framer(self.config.address)
        try:
            while data := self._sock.read1(CHUNK):
                for lines, headers in framer.feed(data):
                    self._handle(lines, headers)
            if self._running.is_set():
                log.warning("AMI %s: the PBX closed the connection", self.config.address)
        except (OSError, ValueError) as error:
            if self._running.is_set():
                log.warning("AMI %s: connection lost (%s)", self.config.address, error)
        finally:
            was_running = self._running.is_set()
            self._connected.clear()
            self._closed.set()
            for action_id in list(self._waiting):
                pending = self._waiting.pop(action_id, None)
                if pending:
                    pending.error = AMIConnectError(f"{self.config.address}: connection closed")
                    pending.done.set()
            if was_running and self._on_close:
                self._on_close()

    def _handle(self, lines: list[str], headers: dict | None = None) -> None:
        """One message: `headers` when the framer built an event's already, else `Message` parses the lines."""
        message = None
        if headers is None:
            message = Message(lines)
            headers = message.headers
        pending = self._waiting.get(headers.get("ActionID", "")) if self._waiting else None
        if pending is not None and pending.items is not None:
            self._list_part(pending, headers, lines)
            return
        if "Event" in headers:
            for callback in self._callbacks:
                try:
                    callback(headers)
                except Exception:
                    log.exception("AMI event callback %r failed on %s; carrying on", callback, headers.get("Event"))
            return
        pending = self._waiting.pop(headers.get("ActionID", ""), None)
        if pending:
            pending.message = message
            pending.done.set()
        elif headers.get("Response") == "Generated Header":
            log.warning("AMI %s: skipped a frame that is neither event nor response: %r", self.config.address, lines[0][:120])

    def _list_part(self, pending: _Pending, headers: dict, lines: list[str]) -> None:
        """One part of a list action's answer: its response, an item, or the closing event."""
        if "Event" not in headers:
            if headers.get("Response") == "Success":
                return  # the items follow
        elif headers.get("EventList", "").lower() != "complete":
            pending.items.append(headers)
            return
        self._waiting.pop(headers.get("ActionID", ""), None)
        pending.message = Message(lines)
        pending.done.set()


def connect_with_retry(
    config: AMIConfig,
    stop: threading.Event,
    *,
    on_event: EventCallback | None = None,
    on_close: Callable[[], None] | None = None,
    first_delay: float = 1.0,
    max_delay: float = 60.0,
) -> AMIConnection | None:
    """A fresh, logged-in connection; retries with exponential backoff until `stop` is set (then None)."""
    delay = first_delay
    while not stop.is_set():
        connection = AMIConnection(config, on_event=on_event, on_close=on_close)
        try:
            connection.connect()
            connection.login()
        except AMIError as error:
            connection.close()
            log.error("AMI %s; next attempt in %.0f s", error, delay)
        else:
            log.info("AMI %s: connected to %s %s as %s", config.address, connection.title, connection.version, config.username)
            return connection
        if stop.wait(delay):
            break
        delay = min(delay * 2, max_delay)
    return None


_shared: AMIConnection | None = None
_shared_lock = threading.Lock()


@contextmanager
def shared_connection(config: AMIConfig) -> Iterator[AMIConnection]:
    """This process's logged-in connection to the PBX, kept from one use to the next (Celery tasks' originates).

    Made on first use, with events off, and made anew once the PBX has dropped it or `config` has
    changed; an AMIError in the block closes it (the error goes on), so the next use starts afresh.
    """
    global _shared
    with _shared_lock:
        if _shared is None or _shared.config != config or not _shared._connected.is_set():
            if _shared is not None:
                _shared.close()
                _shared = None
            _shared = _sending_only(config)
        connection = _shared
    try:
        yield connection
    except AMIError:
        with _shared_lock:
            if _shared is connection:
                _shared = None
        connection.close()
        raise


def _sending_only(config: AMIConfig) -> AMIConnection:
    connection = AMIConnection(config)
    try:
        connection.connect()
        connection.login()
        connection.send_action({"Action": "Events", "EventMask": "off"})  # nothing reads them: the PBX need not send them
    except AMIError:
        connection.close()
        raise
    return connection
