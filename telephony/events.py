"""Asterisk AMI messages in, per-call state out (one CallState per Linkedid).

Pure: no I/O and no Django. The listener passes every AMI message to CallTracker.apply()
and stores the CallState it returns. The AMI facts used here are in docs/pbx.md, §3–§6.

A message is a mapping from header name to value, as received. Names are matched without
regard to case. When a header repeats, its last value counts: parse_transcript() keeps the
last one, and a list value (as panoramisk gives) counts as its last item.

An operator's phone is known by the operator table (`endpoints`), then by the extension
pattern, and failing both as the phone a `Local/<ext>@…;2` half dials (a ring-group or queue
member, the operator's leg of a click-to-dial). Local halves never answer a call.

Each channel's facts (its kind, dial status, answer and hang-up times) are recorded, and the
public fields are worked out again from them after every message. So the result does not
depend on the order in which Asterisk's racing events arrive.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from clients.phones import phone_e164 as normalize_phone

UNKNOWN = "<unknown>"

_DIALLED = re.compile(r"\+?\d{5,}")
_DIAL_STRING_PARTS = re.compile(r"[/@&,]")
# Asterisk names a channel it created <Tech>/<resource>-%08x (Local adds ;1/;2); the
# requested form (Local/100@from-internal) has no sequence number.
_CREATED_CHANNEL = re.compile(r"-[0-9a-f]{8,}(;[12])?$")
_C_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
              "\\": "\\", "'": "'", '"': '"', "?": "?"}

# OriginateResponse Reason (the last control frame, docs/pbx.md §4) read as the DialStatus it means.
_ORIGINATE_REASONS = {"0": "CHANUNAVAIL", "1": "CHANUNAVAIL", "3": "NOANSWER", "5": "BUSY",
                      "8": "CONGESTION"}
_HANDLED = frozenset({"newchannel", "newstate", "dialbegin", "dialend", "bridgeenter",
                      "hangup", "varset", "localbridge", "originateresponse"})
# An AMI Timestamp further than this from the listener's clock is not believed (a PBX clock gone wrong).
MAX_CLOCK_SKEW = timedelta(minutes=15)
# An inbound call is answered by an operator's phone, an outbound one by the outside party.
_ANSWERING_KIND = {"in": "ext", "out": "trunk"}


class _Keys(NamedTuple):
    """Lower-cased header names of one channel snapshot inside a message."""

    channel: str
    uniqueid: str
    linkedid: str
    number: str
    name: str
    exten: str
    state: str


def _keys(prefix: str) -> _Keys:
    names = ("channel", "uniqueid", "linkedid", "calleridnum", "calleridname", "exten",
             "channelstate")
    return _Keys(*(prefix + name for name in names))


_CALLER, _DEST = _keys(""), _keys("dest")
_LOCAL_ONE, _LOCAL_TWO = _keys("localone"), _keys("localtwo")
_ROUTES = (_CALLER, _DEST, _LOCAL_ONE)


class _Channel:
    """The facts one channel (one Uniqueid) has given about its call."""

    __slots__ = ("kind", "ext", "number", "name", "dialled", "status", "busy",
                 "answered_at", "hung_up_at")

    def __init__(self, kind: str, ext: str | None) -> None:
        self.kind = kind            # "ext" (an operator's phone), "trunk" (outside) or "local"
        self.ext = ext
        self.number = ""            # trunk: its CallerIDNum; Local: its Exten; E.164 or ""
        self.name = ""
        self.dialled = ""           # trunk: the number in the DialString that created it
        self.status = ""            # DialStatus of the DialEnd where it was the destination
        self.busy = False
        self.answered_at: datetime | None = None
        self.hung_up_at: datetime | None = None


@dataclass
class CallState:
    linkedid: str
    direction: str | None = None
    phone: str = ""
    caller_name: str = ""
    extensions_rung: list[str] = field(default_factory=list)
    extension: str | None = None
    started_at: datetime | None = None
    answered_at: datetime | None = None
    operator_answered_at: datetime | None = None    # outgoing: the operator's own phone picked up
    ended_at: datetime | None = None
    duration: int = 0
    billsec: int = 0
    disposition: str = "ringing"
    recording: str = ""
    uniqueids: set[str] = field(default_factory=set)
    is_over: bool = False
    _channels: dict[str, _Channel] = field(default_factory=dict, init=False, repr=False,
                                           compare=False)
    _originated: bool = field(default=False, init=False, repr=False, compare=False)
    _originate_status: str = field(default="", init=False, repr=False, compare=False)
    _originate_ext: str | None = field(default=None, init=False, repr=False, compare=False)
    _originate_number: str = field(default="", init=False, repr=False, compare=False)
    _failed_at: datetime | None = field(default=None, init=False, repr=False, compare=False)
    _last_seen: datetime | None = field(default=None, init=False, repr=False, compare=False)


def _public(call: CallState) -> tuple:
    # The lists and sets only grow, so their lengths are enough to see a change.
    return (call.direction, call.phone, call.caller_name, len(call.extensions_rung),
            call.extension, call.started_at, call.answered_at, call.operator_answered_at,
            call.ended_at, call.disposition, call.recording, len(call.uniqueids), call.is_over)


class CallTracker:
    """Reduces a stream of AMI messages to the state of each call.

    A finished call is kept among the last `keep_finished` ones, so a late duplicate event
    cannot bring it back as a new call. A call whose Hangup never comes (lost while the link
    was down) is ended by `close_gone` or `close_silent`, and then freed like any other.
    """

    def __init__(self, *, region: str = "RU", extension_pattern: str = r"^\d{2,6}$",
                 endpoints: Mapping[str, str] | None = None, keep_finished: int = 1000):
        self.region = region
        self.phones = OperatorPhones(extension_pattern, endpoints)
        self._keep_finished = keep_finished
        self._calls: dict[str, CallState] = {}
        self._finished: OrderedDict[str, CallState] = OrderedDict()
        self._owner: dict[str, str] = {}    # live Uniqueid -> key of the call it joined first

    def active(self) -> list[CallState]:
        return list(self._calls.values())

    def known(self, since: datetime) -> list[CallState]:
        """Every active call, and the finished ones that ended at or after `since`."""
        finished = [c for c in self._finished.values() if c.ended_at and c.ended_at >= since]
        return self.active() + finished

    def close_gone(self, live: set[str], at: datetime) -> list[CallState]:
        """End the calls none of whose channels is in `live` (Uniqueids the PBX still has).

        `live` must be newer than every message applied so far.
        """
        gone = [c for c in self._calls.values() if not (c.uniqueids & live) and c.linkedid not in live]
        return [self._close(call, at) for call in gone]

    def close_silent(self, now: datetime, silence: timedelta) -> list[CallState]:
        """End the calls that have had no event for `silence`, as of their last event."""
        silent = [c for c in self._calls.values()
                  if c._last_seen is not None and now - c._last_seen > silence]
        return [self._close(call, call._last_seen) for call in silent]

    def _close(self, call: CallState, at: datetime) -> CallState:
        for channel in call._channels.values():
            if channel.hung_up_at is None:
                channel.hung_up_at = max(at, call.started_at or at)
        if not call._channels:
            call._failed_at = at
        self._settle(call, (), at)
        for uid in call.uniqueids:
            if self._owner.get(uid) == call.linkedid:
                del self._owner[uid]
        return call

    def apply(self, message: Mapping[str, str], now: datetime) -> CallState | None:
        """Feed one AMI message; return the call whose state changed (None if nothing changed).

        `now` (an aware datetime) stands for the message's time when it has no Timestamp.
        The CallState returned is the tracker's own: later messages change it in place.
        """
        try:
            return self._apply(message, now)
        except Exception:  # one malformed message must never stop the listener
            return None

    def _apply(self, message: Mapping[str, str], now: datetime) -> CallState | None:
        event = message.get("Event")
        if isinstance(event, str) and event.lower() not in _HANDLED:
            return None     # most of the stream (Newexten, RTCP…) ends here, cheaply
        m = _lowered(message)
        event = m.get("event", "").lower()
        if event not in _HANDLED:
            return None
        if event == "varset" and m.get("variable", "").upper() != "MIXMONITOR_FILENAME":
            return None
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)   # mixing naive and aware times would raise
        t = _time(m, now)
        if event == "originateresponse":
            return self._on_originate_response(m, t, now)
        for keys in _ROUTES:
            uid = m.get(keys.uniqueid)
            if uid and m.get(keys.channel):
                break
        else:
            return None     # no channel snapshot to attach anything to
        key = self._owner.get(uid) or m.get(keys.linkedid, "")
        call = self._calls.get(key)
        if call is None:
            # A lone Hangup says too little to start a call (the CDR fills such gaps).
            if not key or key in self._finished or event == "hangup":
                return None
            call = self._calls[key] = CallState(linkedid=key)
        before = _public(call)
        if event == "dialbegin" or event == "dialend":
            self._on_dial(call, m, t, event)
        elif event == "localbridge":
            self._see(call, m, _LOCAL_ONE, t)
            self._see(call, m, _LOCAL_TWO, t)
        else:
            channel = self._see(call, m, _CALLER, t)
            if channel is not None and event == "hangup":
                self._on_hangup(channel, uid, m, t)
            elif channel is not None and event == "varset" and m.get("value"):
                call.recording = unescape_c(m["value"])
        return self._settle(call, before, now)

    def _on_dial(self, call: CallState, m: dict[str, str], t: datetime, event: str) -> None:
        caller = self._see(call, m, _CALLER, t)
        dest = self._see(call, m, _DEST, t)
        if dest is None:
            return
        if event == "dialbegin" and caller is not None and _rings_extension_phone(caller, dest, m):
            dest.kind, dest.ext = "ext", caller.ext
            if caller.ext not in call.extensions_rung:
                call.extensions_rung.append(caller.ext)
        if event == "dialbegin":
            if dest.kind == "trunk" and not dest.dialled:
                found = _DIALLED.findall(m.get("dialstring", ""))
                dest.dialled = normalize_phone(max(found, key=len), self.region) if found else ""
            return
        status = m.get("dialstatus", "").upper()
        if status:
            dest.status = status
        if status == "ANSWER" and dest.kind != "local":
            _answer(dest, t)

    def _on_hangup(self, channel: _Channel, uid: str, m: dict[str, str], t: datetime) -> None:
        if channel.hung_up_at is None:
            channel.hung_up_at = t
        channel.busy = channel.busy or m.get("cause") == "17"
        self._owner.pop(uid, None)

    def _on_originate_response(self, m: dict[str, str], t: datetime,
                               now: datetime) -> CallState | None:
        # The Uniqueid is that of the ;1 half, which is the Linkedid. When no channel was
        # created it is "<unknown>", and the ActionID is the only key left.
        uid = m.get("uniqueid", "")
        if uid == UNKNOWN:
            uid = ""
        key = uid or m.get("actionid", "")
        if not key:
            return None
        key = self._owner.get(key, key)
        call = self._calls.get(key) or self._finished.get(key)
        if call is None:
            call = self._calls[key] = CallState(linkedid=key)
        before = _public(call)
        call._originated = True
        success = m.get("response", "").lower() == "success"
        call._originate_status = "" if success else _ORIGINATE_REASONS.get(
            m.get("reason", ""), "CHANUNAVAIL")
        call._originate_ext = self._classify(m.get("channel", ""))[1]
        call._originate_number = normalize_phone(m.get("exten", ""), self.region)
        if not call.is_over:
            if uid and _CREATED_CHANNEL.search(m.get("channel", "")):
                self._see(call, m, _CALLER, t)  # the ;1 half exists and will hang up
            elif not success and not call._channels:
                call._failed_at = call.started_at = t   # nothing was created to hang up
        return self._settle(call, before, now)

    def _see(self, call: CallState, m: dict[str, str], keys: _Keys,
             t: datetime) -> _Channel | None:
        """Record the channel snapshot under `keys` as part of `call`."""
        uid = m.get(keys.uniqueid)
        name = m.get(keys.channel)
        if not uid or not name:
            return None
        channel = call._channels.get(uid)
        if channel is None:
            if self._owner.get(uid, call.linkedid) != call.linkedid:
                return None     # a channel stays with the call it joined first
            kind, ext = self._classify(name)
            channel = call._channels[uid] = _Channel(kind, ext)
            call.uniqueids.add(uid)
            self._owner[uid] = call.linkedid
            if ext and kind == "ext" and uid != call.linkedid and ext not in call.extensions_rung:
                call.extensions_rung.append(ext)
        if call.started_at is None or t < call.started_at:
            call.started_at = t
        if channel.kind == "trunk":
            if not channel.number:
                channel.number = normalize_phone(m.get(keys.number, ""), self.region)
            if not channel.name:
                channel.name = _caller_name(m.get(keys.name, ""))
        elif channel.kind == "local" and not channel.number:
            # An originated ;1 half runs the originate's Exten: the number being called.
            channel.number = normalize_phone(m.get(keys.exten, ""), self.region)
        if m.get(keys.state) == "6" and channel.kind != "local" and uid != call.linkedid:
            _answer(channel, t)
        return channel

    def _classify(self, name: str) -> tuple[str, str | None]:
        return self.phones.classify(name)

    def _settle(self, call: CallState, before: tuple, now: datetime) -> CallState | None:
        call._last_seen = now
        _derive(call)
        if call.is_over and self._calls.get(call.linkedid) is call:
            del self._calls[call.linkedid]
            self._finished[call.linkedid] = call
            while len(self._finished) > self._keep_finished:
                self._finished.popitem(last=False)
        return call if _public(call) != before else None


def _rings_extension_phone(caller: _Channel, dest: _Channel, m: dict[str, str]) -> bool:
    """Whether a DialBegin from Local/<ext>@…;2 reaches <ext>'s own phone, which neither table nor pattern knows.

    The ;2 half runs <ext>'s dialplan (a ring-group or queue member, the operator's leg of a
    click-to-dial), so what it dials is that operator's phone; unless it passes <ext> on as a
    number (DialString `trunk/112`), or the ;1 half, which runs an originate's target, is the one
    dialling. Only DialBegin has the DialString, so only DialBegin decides.
    """
    return (caller.kind == "local" and caller.ext is not None and dest.kind == "trunk"
            and m.get("channel", "").endswith(";2")
            and caller.ext not in _DIAL_STRING_PARTS.split(m.get("dialstring", "")))


def _derive(call: CallState) -> None:
    """Work out the public fields of `call` from the facts its channels have given."""
    channels = call._channels
    origin = channels.get(call.linkedid)
    if call._originated or (origin is not None and origin.kind != "trunk"):
        call.direction = "out"
    elif origin is not None:
        call.direction = "in"
    party = _ANSWERING_KIND.get(call.direction or "")
    answerer = None
    for channel in channels.values():
        if (channel.kind == party and channel is not origin and channel.answered_at
                and (answerer is None or channel.answered_at < answerer.answered_at)):
            answerer = channel
    call.answered_at = answerer.answered_at if answerer else None
    if call.direction == "out":
        picked_up = [c.answered_at for c in channels.values() if c.kind == "ext" and c is not origin and c.answered_at]
        call.operator_answered_at = min(picked_up, default=None)

    if call.direction == "in":
        call.phone, call.caller_name = origin.number, origin.name
    elif call.direction == "out":
        outside = [c for c in channels.values() if c.kind == "trunk" and c is not origin]
        call.phone = (next((c.dialled for c in outside if c.dialled), "")
                      or next((c.number for c in outside if c.number), "")
                      or (origin.number if origin is not None else "")
                      or call._originate_number)
        call.caller_name = next((c.name for c in outside if c.name), "")

    extension = None
    if call.direction == "out":
        extension = (origin.ext if origin is not None else None) or call._originate_ext
    elif answerer is not None:
        extension = answerer.ext
    rung = call.extensions_rung
    call.extension = extension or (rung[0] if len(rung) == 1 else None)

    if channels:
        call.is_over = all(c.hung_up_at for c in channels.values())
        call.ended_at = max(c.hung_up_at for c in channels.values()) if call.is_over else None
    else:
        call.is_over = call._failed_at is not None
        call.ended_at = call._failed_at
    if call.is_over and call.started_at is not None:
        call.duration = _seconds(call.ended_at - call.started_at)
        call.billsec = _seconds(call.ended_at - call.answered_at) if call.answered_at else 0

    if call.answered_at is not None:
        call.disposition = "answered"
    elif not call.is_over:
        call.disposition = "ringing"
    else:
        statuses = {c.status for c in channels.values() if c.kind != "local"}
        statuses.add(call._originate_status)
        if any(c.busy for c in channels.values() if c.kind != "local"):
            statuses.add("BUSY")
        # One member busy while another rang unanswered is a missed call: busy only when none rang.
        if "NOANSWER" in statuses or "CANCEL" in statuses:
            call.disposition = "no_answer"
        elif "BUSY" in statuses:
            call.disposition = "busy"
        elif "CHANUNAVAIL" in statuses or "CONGESTION" in statuses:
            call.disposition = "failed"
        elif call.direction == "out" and not any(c.kind == "trunk" for c in channels.values()) and any(
            c.kind == "ext" and c.answered_at for c in channels.values()
        ):
            call.disposition = "failed"     # the operator picked up, but no outside line could be had
        else:
            call.disposition = "no_answer"     # e.g. the caller gave up before any dial


def outgoing_stage(call: CallState) -> str:
    """Where a click-to-call stands, for the operator's page.

    The operator's phone rings first ("operator_ringing"), then the client's number
    ("calling"), then they talk ("connected") until the call is "ended". A call that ends
    unanswered says which leg failed: "operator_no_answer", "operator_busy" or
    "operator_failed" for the operator's phone, "no_answer", "busy" or "failed" for the client.
    """
    if call.answered_at is not None:
        return "ended" if call.is_over else "connected"
    if not call.is_over:
        return "calling" if call.operator_answered_at is not None else "operator_ringing"
    if call.operator_answered_at is None:
        return f"operator_{call.disposition}"
    return call.disposition


class OperatorPhones:
    """Which channels are operators' desk phones, and the extension each one stands for.

    `endpoints` maps an operator's endpoint as the operator table has it (`PJSIP/hg63xv`,
    `SIP/4411-7`) to their extension; a phone not listed counts when its endpoint name matches
    `pattern` (`PJSIP/100`), and then its name is its extension.
    """

    def __init__(self, pattern: str = r"^\d{2,6}$", endpoints: Mapping[str, str] | None = None):
        self.pattern = re.compile(pattern)
        self.set_endpoints(endpoints or {})

    def set_endpoints(self, endpoints: Mapping[str, str]) -> None:
        self._endpoints = {endpoint.lower(): extension for endpoint, extension in endpoints.items()}
        self._extensions = frozenset(endpoints.values())

    def classify(self, name: str) -> tuple[str, str | None]:
        """("local", ext or None), ("ext", ext) for an operator's phone, or ("trunk", None)."""
        if name.startswith("Local/"):
            return "local", self.local_extension(name)
        # <Tech>/<endpoint>-<sequence>: PJSIP/hg63xv-00000002 is the phone PJSIP/hg63xv.
        endpoint = name.rpartition("-")[0] if _CREATED_CHANNEL.search(name) else name
        extension = self._endpoints.get(endpoint.lower())
        if extension is not None:
            return "ext", extension
        resource = endpoint.partition("/")[2]
        if resource and self.pattern.match(resource):
            return "ext", resource
        return "trunk", None

    def local_extension(self, name: str) -> str | None:
        """Local/100@from-internal-0000000a;1 (or Local/100@from-internal as requested) rings extension 100."""
        if not name.startswith("Local/"):
            return None
        extension = name[6:].partition("@")[0]
        return extension if extension in self._extensions or self.pattern.match(extension) else None


def _answer(channel: _Channel, t: datetime) -> None:
    if channel.answered_at is None or t < channel.answered_at:
        channel.answered_at = t


def _seconds(delta: timedelta) -> int:
    return max(0, round(delta.total_seconds()))


def _lowered(message: Mapping[str, str]) -> dict[str, str]:
    headers = {}
    for key, value in message.items():
        if type(value) is not str:
            value = value[-1] if isinstance(value, (list, tuple)) and value else ""
            value = value if type(value) is str else ""
        headers[key.lower()] = value
    return headers


def _time(m: dict[str, str], now: datetime) -> datetime:
    """The event's own Timestamp when it is believable, else its arrival time."""
    stamp = m.get("timestamp")
    if stamp:
        try:
            t = datetime.fromtimestamp(float(stamp), timezone.utc)
        except (ValueError, OverflowError, OSError):
            return now
        if abs(t - now) <= MAX_CLOCK_SKEW:
            return t
    return now


def _caller_name(raw: str) -> str:
    return "" if raw == UNKNOWN else unescape_c(raw)


def parse_transcript(text: str) -> list[dict[str, str]]:
    """Split a raw AMI wire transcript (CRLF or LF, blank line between messages) into messages.

    Lines without a colon (the greeting, junk) are skipped; a repeated header keeps its last
    value.
    """
    messages: list[dict[str, str]] = []
    headers: dict[str, str] = {}
    for line in text.split("\n"):
        if not line.strip():
            if headers:
                messages.append(headers)
                headers = {}
            continue
        key, colon, value = line.partition(":")
        key = key.strip()
        if colon and key:
            headers[key] = value.strip()
    if headers:
        messages.append(headers)
    return messages


def unescape_c(value: str) -> str:
    """Undo Asterisk's ast_escape_c (O\\'Brien -> O'Brien); unknown escapes stay as they are."""
    if "\\" not in value:
        return value
    return _C_ESCAPE.sub(lambda match: _C_ESCAPES.get(match[1], match[0]), value)
