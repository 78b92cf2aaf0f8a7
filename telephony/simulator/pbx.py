"""Channels and bridges, and the events Asterisk 18 emits when they change.

Every helper here emits exactly the events the matching Asterisk operation would, in order,
so scenarios read as a list of telephony steps and cannot break the sequence rules of
docs/pbx.md §5 (BridgeLeave before Hangup, nothing after Hangup, BridgeDestroy after the last leave).
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from .protocol import escape_c, event

STATE_DESC = {
    0: "Down",
    1: "Rsrvd",
    2: "OffHook",
    3: "Dialing",
    4: "Ring",
    5: "Ringing",
    6: "Up",
    7: "Busy",
    8: "Dialing Offhook",
    9: "Pre-ring",
    10: "Unknown",
}

CAUSE_TEXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    16: "Normal Clearing",
    17: "User busy",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    26: "Answered elsewhere",
    34: "Circuit/channel congestion",
}

UNKNOWN = "<unknown>"

# Sends one preformatted event (name, class, bytes) to every interested session.
Emit = Callable[[str, bytes], None]


@dataclass(eq=False)
class Channel:
    name: str
    uniqueid: str
    linkedid: str
    state: int
    caller_num: str
    caller_name: str
    connected_num: str
    connected_name: str
    context: str
    exten: str
    priority: int = 1
    language: str = "en"
    accountcode: str = ""
    created: float = field(default_factory=time.time)
    answered: float | None = None
    ended: float | None = None
    application: str = ""
    app_data: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    bridge: Bridge | None = None
    local_peer: Channel | None = None
    monitoring: bool = False
    alive: bool = True
    # Snapshot text per header prefix, rebuilt only after the channel changes.
    _snapshots: dict[str, str] = field(default_factory=dict, repr=False)

    def changed(self) -> None:
        self._snapshots.clear()


@dataclass(eq=False)
class Bridge:
    uniqueid: str
    members: list[Channel] = field(default_factory=list)

    def snapshot(self) -> str:
        return (
            f"BridgeUniqueid: {self.uniqueid}\r\n"
            "BridgeType: basic\r\n"
            "BridgeTechnology: simple_bridge\r\n"
            "BridgeCreator: <unknown>\r\n"
            "BridgeName: <unknown>\r\n"
            f"BridgeNumChannels: {len(self.members)}\r\n"
            "BridgeVideoSourceMode: none\r\n"
        )


class Pbx:
    """The live channel table and the event-emitting operations on it."""

    def __init__(self, emit: Emit, chanvariables: list[str] | None = None) -> None:
        self._emit = emit
        self.chanvariables = list(chanvariables or [])
        self.channels: dict[str, Channel] = {}
        self._uniqueid_seq = itertools.count(1)
        self._pjsip_seq = itertools.count(1)
        self._local_seq = itertools.count(1)

    # -- identifiers -----------------------------------------------------------------------

    def next_uniqueid(self) -> str:
        return f"{int(time.time())}.{next(self._uniqueid_seq)}"

    def pjsip_name(self, endpoint: str, tech: str = "PJSIP") -> str:
        return f"{tech}/{endpoint}-{next(self._pjsip_seq):08x}"

    def local_base(self, target: str) -> str:
        return f"Local/{target}-{next(self._local_seq):08x}"

    # -- formatting ------------------------------------------------------------------------

    def snapshot(self, chan: Channel, prefix: str = "") -> str:
        cached = chan._snapshots.get(prefix)
        if cached is not None:
            return cached
        p = prefix
        text = (
            f"{p}Channel: {chan.name}\r\n"
            f"{p}ChannelState: {chan.state}\r\n"
            f"{p}ChannelStateDesc: {STATE_DESC[chan.state]}\r\n"
            f"{p}CallerIDNum: {chan.caller_num or UNKNOWN}\r\n"
            f"{p}CallerIDName: {escape_c(chan.caller_name) if chan.caller_name else UNKNOWN}\r\n"
            f"{p}ConnectedLineNum: {chan.connected_num or UNKNOWN}\r\n"
            f"{p}ConnectedLineName: "
            f"{escape_c(chan.connected_name) if chan.connected_name else UNKNOWN}\r\n"
            f"{p}Language: {chan.language}\r\n"
            f"{p}AccountCode: {chan.accountcode}\r\n"
            f"{p}Context: {chan.context}\r\n"
            f"{p}Exten: {chan.exten}\r\n"
            f"{p}Priority: {chan.priority}\r\n"
            f"{p}Uniqueid: {chan.uniqueid}\r\n"
            f"{p}Linkedid: {chan.linkedid}\r\n"
        ) + self.chanvariable_lines(chan, prefix)
        chan._snapshots[prefix] = text
        return text

    def chanvariable_lines(self, chan: Channel, prefix: str = "") -> str:
        return "".join(
            f"{prefix}ChanVariable: {name}={escape_c(self.variable(chan, name))}\r\n"
            for name in self.chanvariables
        )

    @staticmethod
    def variable(chan: Channel, name: str) -> str:
        """A channel variable, or one of the few dialplan functions worth listing in channelvars."""
        functions = {
            "CHANNEL(language)": chan.language,
            "CHANNEL(name)": chan.name,
            "CALLERID(num)": chan.caller_num,
            "CALLERID(name)": chan.caller_name,
        }
        return chan.variables.get(name, functions.get(name, ""))

    def emit(self, name: str, category: str, body: str) -> None:
        self._emit(category, event(name, category, body))

    # -- channel life ----------------------------------------------------------------------

    def new_channel(
        self,
        name: str,
        *,
        state: int,
        linkedid: str | None = None,
        uniqueid: str | None = None,
        caller: tuple[str, str] = ("", ""),
        connected: tuple[str, str] = ("", ""),
        context: str,
        exten: str,
        application: str = "",
        app_data: str = "",
    ) -> Channel:
        uniqueid = uniqueid or self.next_uniqueid()
        chan = Channel(
            name=name,
            uniqueid=uniqueid,
            linkedid=linkedid or uniqueid,
            state=state,
            caller_num=caller[0],
            caller_name=caller[1],
            connected_num=connected[0],
            connected_name=connected[1],
            context=context,
            exten=exten,
            application=application,
            app_data=app_data,
        )
        self.channels[name] = chan
        self.emit("Newchannel", "call", self.snapshot(chan))
        return chan

    def set_state(self, chan: Channel, state: int) -> None:
        chan.state = state
        if state == 6 and chan.answered is None:
            chan.answered = time.time()
        chan.changed()
        self.emit("Newstate", "call", self.snapshot(chan))

    def new_exten(self, chan: Channel, context: str, exten: str, app: str, data: str) -> None:
        chan.context, chan.exten, chan.priority = context, exten, 1
        chan.application, chan.app_data = app, data
        chan.changed()
        self.emit(
            "Newexten",
            "dialplan",
            self.snapshot(chan) + f"Extension: {exten}\r\nApplication: {app}\r\nAppData: {data}\r\n",
        )

    def set_var(self, chan: Channel, name: str, value: str) -> None:
        chan.variables[name] = value
        chan.changed()
        self.emit(
            "VarSet",
            "dialplan",
            self.snapshot(chan) + f"Variable: {name}\r\nValue: {escape_c(value)}\r\n",
        )

    def start_mixmonitor(self, chan: Channel, filename: str) -> None:
        self.set_var(chan, "MIXMONITOR_FILENAME", filename)
        chan.monitoring = True
        self.emit("MixMonitorStart", "call", self.snapshot(chan))

    def local_bridge(self, one: Channel, two: Channel, context: str, exten: str) -> None:
        one.local_peer, two.local_peer = two, one
        self.emit(
            "LocalBridge",
            "call",
            self.snapshot(one, "LocalOne")
            + self.snapshot(two, "LocalTwo")
            + f"Context: {context}\r\nExten: {exten}\r\nLocalOptimization: No\r\n",
        )

    def dial_begin(self, caller: Channel | None, dest: Channel, dial_string: str) -> None:
        head = self.snapshot(caller) if caller else ""
        self.emit(
            "DialBegin",
            "call",
            head + self.snapshot(dest, "Dest") + f"DialString: {dial_string}\r\n",
        )

    def dial_end(self, caller: Channel | None, dest: Channel, status: str) -> None:
        head = self.snapshot(caller) if caller else ""
        self.emit("DialEnd", "call", head + self.snapshot(dest, "Dest") + f"DialStatus: {status}\r\n")

    # -- bridges ---------------------------------------------------------------------------

    def bridge_create(self) -> Bridge:
        bridge = Bridge(str(uuid.uuid4()))
        self.emit("BridgeCreate", "call", bridge.snapshot())
        return bridge

    def bridge_enter(self, bridge: Bridge, chan: Channel) -> None:
        bridge.members.append(chan)
        chan.bridge = bridge
        self.emit("BridgeEnter", "call", bridge.snapshot() + self.snapshot(chan))

    def bridge_leave(self, chan: Channel) -> None:
        bridge = chan.bridge
        if bridge is None:
            return
        bridge.members.remove(chan)
        chan.bridge = None
        self.emit("BridgeLeave", "call", bridge.snapshot() + self.snapshot(chan))
        if not bridge.members:
            self.emit("BridgeDestroy", "call", bridge.snapshot())

    def hangup(self, chan: Channel, cause: int = 16) -> None:
        """Leave the bridge, stop recording, then Hangup: the order docs/pbx.md §5 requires."""
        if not chan.alive:
            return
        self.bridge_leave(chan)
        if chan.monitoring:
            chan.monitoring = False
            self.emit("MixMonitorStop", "call", self.snapshot(chan))
        chan.alive = False
        chan.ended = time.time()
        self.channels.pop(chan.name, None)
        self.emit(
            "Hangup",
            "call",
            self.snapshot(chan) + f"Cause: {cause}\r\nCause-txt: {CAUSE_TEXT.get(cause, 'Unknown')}\r\n",
        )

    def hangup_connected(self, first: Channel, cause: int = 16) -> list[Channel]:
        """Hang up `first`, then everything joined to it by bridges and Local pairs, in order.

        The side that hangs up goes first; the hang-up then travels to its bridge partner,
        across a Local ;1/;2 pair, and on, which is how Asterisk tears a call down.
        """
        order = [first]
        for chan in order:
            partners = list(chan.bridge.members) if chan.bridge else []
            if chan.local_peer is not None:
                partners.append(chan.local_peer)
            order.extend(p for p in partners if p not in order)
        for chan in order:
            self.hangup(chan, cause)
        return order
