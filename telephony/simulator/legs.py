"""Dialled legs, direct or through Local channels, and how a dial's outcome travels along them.

A leg is one destination of a Dial (or of app_queue): a phone or trunk channel, or the ;1 half
of a Local pair whose ;2 runs the dialplan and dials legs of its own (`inner`). Answers and
failures travel from the far end back towards the caller, one DialEnd per hop, and a cancel
travels the other way, as Asterisk tears a Local chain down (docs/pbx.md §4–§6).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .calls import Call, Engine
from .cdr import Cdr
from .pbx import Channel, Pbx

# The CDR disposition a leg ends with, by the DialStatus of its DialEnd.
DISPOSITION = {"ANSWER": "ANSWERED", "BUSY": "BUSY", "CHANUNAVAIL": "FAILED", "CONGESTION": "FAILED"}


@dataclass(eq=False)
class Leg:
    """One dialled destination, with what its CDR row (this leg as Party B) says."""

    chan: Channel
    dst: str
    dcontext: str
    lastdata: str
    two: Channel | None = None      # the ;2 half when `chan` is a Local ;1
    inner: list[Leg] = field(default_factory=list)
    lastapp: str = "Dial"
    disposition: str = "NO ANSWER"


def endpoint_of(extension: str, endpoints: Mapping[str, str]) -> tuple[str, str]:
    """(tech, resource) of an extension's phone: `PJSIP/100` unless named otherwise (`SIP/office-front`)."""
    tech, _, resource = endpoints.get(extension, f"PJSIP/{extension}").partition("/")
    return tech, resource


def open_local(
    pbx: Pbx, call: Call, target: str, context: str, *, caller: tuple[str, str], connected: tuple[str, str],
    dst: str, dcontext: str, lastdata: str, lastapp: str = "Dial",
    uniqueids: tuple[str | None, str | None] = (None, None),
) -> Leg:
    """Newchannel ;1 and ;2 of `Local/<target>@<context>`, then LocalBridge; the caller's DialBegin is not sent yet.

    The ;2 half takes the ;1's connected line as its caller ID, as chan_local's local_call does.
    """
    base = pbx.local_base(f"{target}@{context}")
    one = pbx.new_channel(
        base + ";1", state=0, uniqueid=uniqueids[0], linkedid=call.linkedid or None, caller=caller,
        connected=connected, context=context, exten=target,
    )
    two = pbx.new_channel(
        base + ";2", state=4, uniqueid=uniqueids[1], linkedid=call.linkedid or one.uniqueid, caller=connected,
        connected=caller, context=context, exten=target,
    )
    pbx.local_bridge(one, two, context, target)
    return Leg(one, dst=dst, dcontext=dcontext, lastdata=lastdata, two=two, lastapp=lastapp)


def dial_local(
    pbx: Pbx, call: Call, caller: Channel, target: str, context: str, dial_data: str, *, dial_string: str = "",
) -> Leg:
    """`caller`'s Dial reaches Local/<target>@<context>: the pair, then DialBegin to its ;1.

    The Newexten that runs the Dial is the caller's to send, since one Dial may list several destinations.
    """
    leg = open_local(
        pbx, call, target, context, caller=(target, ""), connected=(caller.caller_num, caller.caller_name),
        dst=caller.exten, dcontext=caller.context, lastdata=dial_data,
    )
    pbx.dial_begin(caller, leg.chan, dial_string or f"{target}@{context}")
    return leg


def dial_phone(
    pbx: Pbx, call: Call, caller: Channel, extension: str, endpoints: Mapping[str, str], *, timeout: int = 30,
) -> Leg:
    """`caller` runs Dial(<the extension's endpoint>) alone: Newexten, the phone's Newchannel, DialBegin."""
    tech, resource = endpoint_of(extension, endpoints)
    dial_data = f"{tech}/{resource},{timeout}"
    pbx.new_exten(caller, caller.context, caller.exten, "Dial", dial_data)
    phone = pbx.new_channel(
        pbx.pjsip_name(resource, tech), state=0, linkedid=call.linkedid, caller=(extension, ""),
        connected=(caller.caller_num, caller.caller_name), context=caller.context, exten=extension,
        application="AppDial", app_data="(Outgoing Line)",
    )
    pbx.dial_begin(caller, phone, resource)
    return Leg(phone, dst=caller.exten, dcontext=caller.context, lastdata=dial_data)


def dial_trunk(pbx: Pbx, call: Call, caller: Channel, number: str, *, timeout: int = 30, options: str = "") -> Leg:
    """`caller` runs Dial(PJSIP/trunk/<number>[,timeout,options]): the trunk channel and its DialBegin."""
    dial_data = f"PJSIP/trunk/{number},{timeout}" + (f",{options}" if options else "")
    pbx.new_exten(caller, caller.context, caller.exten, "Dial", dial_data)
    trunk = pbx.new_channel(
        pbx.pjsip_name("trunk"), state=0, linkedid=call.linkedid, caller=(number, ""),
        connected=(caller.caller_num, caller.caller_name), context=caller.context, exten=number,
        application="AppDial", app_data="(Outgoing Line)",
    )
    pbx.dial_begin(caller, trunk, f"trunk/{number}")
    return Leg(trunk, dst=number, dcontext=caller.context, lastdata=dial_data)


def ring(pbx: Pbx, leg: Leg) -> None:
    """The far ends ring, and the ringing reaches each Local ;1 on the way back."""
    for inner in leg.inner:
        ring(pbx, inner)
    if leg.chan.alive and leg.chan.state != 5:
        pbx.set_state(leg.chan, 5)


def answer(pbx: Pbx, caller: Channel | None, path: list[Leg]) -> None:
    """The far end of `path` (legs from near to far) answers; every other leg on the way is cancelled.

    Each Local ;2 answers and is bridged with the leg it reached before its ;1 answers in turn.
    The caller itself is neither answered nor bridged here.
    """
    leg, rest = path[0], path[1:]
    if rest and leg.two is not None:
        answer(pbx, leg.two, rest)
        for other in leg.inner:
            if other is not rest[0]:
                cancel(pbx, leg.two, other)
        pbx.set_state(leg.two, 6)
        bridge = pbx.bridge_create()
        pbx.bridge_enter(bridge, leg.two)
        pbx.bridge_enter(bridge, rest[0].chan)
    pbx.set_state(leg.chan, 6)
    pbx.dial_end(caller, leg.chan, "ANSWER")
    leg.disposition = "ANSWERED"


def fail(
    pbx: Pbx, caller: Channel | None, leg: Leg, status: str, cause: int, *, then: Callable[[], None] | None = None,
) -> None:
    """The far end refuses (BUSY, CHANUNAVAIL…): each hop's DialEnd from the far end back, then its hang-ups.

    `then` runs between this leg's DialEnd and its Hangup (app_queue's AgentRingNoAnswer, an OriginateResponse).
    """
    if not leg.chan.alive:
        return
    for inner in leg.inner:
        fail(pbx, leg.two, inner, status, cause)
    pbx.dial_end(caller, leg.chan, status)
    leg.disposition = DISPOSITION.get(status, "NO ANSWER")
    if then is not None:
        then()
    pbx.hangup(leg.chan, cause)
    if leg.two is not None:
        pbx.hangup(leg.two, cause)


def cancel(
    pbx: Pbx, caller: Channel | None, leg: Leg, status: str = "CANCEL", cause: int = 16,
    *, then: Callable[[], None] | None = None,
) -> None:
    """The caller stops dialling `leg`: its DialEnd and Hangup, then the hang-up travels on through the ;2."""
    if not leg.chan.alive:
        return
    pbx.dial_end(caller, leg.chan, status)
    leg.disposition = "NO ANSWER"
    if then is not None:
        then()
    pbx.hangup(leg.chan, cause)
    if leg.two is not None:
        for inner in leg.inner:
            cancel(pbx, leg.two, inner, "CANCEL", 16)
        pbx.hangup(leg.two, 16)


def cdrs(engine: Engine, call: Call, caller: Channel | None, leg: Leg) -> list[Cdr]:
    """One row per Party A / Party B pairing: `caller` with `leg`, then each ;2 with the legs it dialled."""
    rows = []
    if caller is not None:
        rows.append(engine.dial_cdr(
            call, caller, leg.chan, dst=leg.dst, dcontext=leg.dcontext, lastapp=leg.lastapp, lastdata=leg.lastdata,
            disposition=leg.disposition,
        ))
    for inner in leg.inner:
        rows += cdrs(engine, call, leg.two, inner)
    return rows
