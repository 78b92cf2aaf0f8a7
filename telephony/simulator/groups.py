"""Inbound calls to several operators through Local channels: a ring group, and an app_queue queue.

Ring group: the trunk dials `Local/600@ext-group`, whose ;2 dials every member at once through
`Local/<ext>@from-internal/n` pairs, each ;2 dialling the member's phone. Queue: the trunk is
answered, joins queue `support` (ring-all) and app_queue calls every member through
`Local/<ext>@from-queue/n` pairs, with the Queue*/Agent* events of docs/pbx.md §6, queues.

The members named busy refuse at once (486, DialStatus BUSY on every hop back); the first member
listed who is not busy answers, and the others are cancelled. When every member is busy the
ring group ends BUSY, and the queue keeps the caller until its timeout (`ring`).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence

from .calls import Call, Engine
from .cdr import Cdr
from .legs import Leg, answer, cancel, cdrs, dial_local, dial_phone, fail, open_local, ring
from .pbx import Channel, Pbx
from .protocol import fields
from .scenarios import BUSY_DELAY, DID, INBOUND_CONTEXT, INTERNAL_CONTEXT, first_to_hang_up

GROUP_SCENARIOS = ("inbound_ring_group", "inbound_queue")
RING_GROUP, GROUP_CONTEXT = "600", "ext-group"
QUEUE, QUEUE_CONTEXT = "support", "from-queue"


async def inbound_ring_group(
    engine: Engine, call: Call, trunk: Channel, *, extensions: Sequence[str], busy: Collection[str],
    endpoints: Mapping[str, str], ring_seconds: float, talk: float,
) -> None:
    pbx = engine.pbx
    group_data = f"Local/{RING_GROUP}@{GROUP_CONTEXT},30"
    pbx.set_state(trunk, 4)
    pbx.new_exten(trunk, INBOUND_CONTEXT, DID, "Dial", group_data)
    group = dial_local(pbx, call, trunk, RING_GROUP, GROUP_CONTEXT, group_data)
    members_data = "&".join(f"Local/{ext}@{INTERNAL_CONTEXT}/n" for ext in extensions) + ",25"
    pbx.new_exten(group.two, GROUP_CONTEXT, RING_GROUP, "Dial", members_data)
    for ext in extensions:
        member = dial_local(
            pbx, call, group.two, ext, INTERNAL_CONTEXT, members_data, dial_string=f"{ext}@{INTERNAL_CONTEXT}/n",
        )
        member.inner.append(dial_phone(pbx, call, member.two, ext, endpoints))
        group.inner.append(member)
    refusing = [m for m, ext in zip(group.inner, extensions) if ext in busy]
    ringing = [m for m in group.inner if m not in refusing]
    for member in ringing:
        ring(pbx, member)
    if ringing:
        pbx.set_state(group.chan, 5)

    hung_up = await call.sleep(min(ring_seconds, BUSY_DELAY))
    if not hung_up:
        for member in refusing:
            fail(pbx, group.two, member, "BUSY", 17)
    if not ringing and not hung_up:
        fail(pbx, trunk, group, "BUSY", 17)
        pbx.hangup(trunk, 17)
        engine.write_cdrs(cdrs(engine, call, trunk, group))
        return
    hung_up = hung_up or await call.sleep(max(ring_seconds - BUSY_DELAY, 0.0))
    if hung_up:  # a Hangup action while it rings is the caller giving up
        cancel(pbx, trunk, group)
        pbx.hangup(trunk, 16)
        engine.write_cdrs(cdrs(engine, call, trunk, group))
        return

    member = ringing[0]
    answer(pbx, trunk, [group, member, member.inner[0]])
    pbx.set_state(trunk, 6)
    bridge = pbx.bridge_create()
    pbx.bridge_enter(bridge, trunk)
    pbx.bridge_enter(bridge, group.chan)
    engine.start_recording(call, trunk)
    await call.sleep(talk)
    engine.save_recording(call, trunk)
    pbx.hangup_connected(first_to_hang_up(engine, call, trunk), call.hangup_cause)
    engine.write_cdrs(cdrs(engine, call, trunk, group))


def queue_event(pbx: Pbx, name: str, caller: Channel, member: Channel | None, pairs: list[tuple[str, object]]) -> None:
    """An app_queue event: the caller's snapshot, the member channel's as Dest*, then the event's own fields."""
    body = pbx.snapshot(caller) + (pbx.snapshot(member, "Dest") if member is not None else "")
    pbx.emit(name, "agent", body + fields(pairs))


async def inbound_queue(
    engine: Engine, call: Call, trunk: Channel, *, extensions: Sequence[str], busy: Collection[str],
    endpoints: Mapping[str, str], ring_seconds: float, talk: float,
) -> None:
    pbx = engine.pbx
    queue_data = f"{QUEUE},t,,,300"
    pbx.set_state(trunk, 4)
    pbx.new_exten(trunk, INBOUND_CONTEXT, DID, "Answer", "")
    pbx.set_state(trunk, 6)
    pbx.new_exten(trunk, INBOUND_CONTEXT, DID, "Queue", queue_data)
    joined = time.time()
    queue_event(pbx, "QueueCallerJoin", trunk, None, [("Queue", QUEUE), ("Position", 1), ("Count", 1)])
    members: list[Leg] = []
    for ext in extensions:
        member = open_local(
            pbx, call, ext, QUEUE_CONTEXT, caller=(ext, ""), connected=(trunk.caller_num, trunk.caller_name),
            dst=DID, dcontext=INBOUND_CONTEXT, lastdata=queue_data, lastapp="Queue",
        )
        queue_event(pbx, "AgentCalled", trunk, member.chan, _member(ext))
        pbx.dial_begin(trunk, member.chan, _interface(ext))
        member.inner.append(dial_phone(pbx, call, member.two, ext, endpoints))
        members.append(member)
    refusing = [m for m, ext in zip(members, extensions) if ext in busy]
    ringing = [m for m in members if m not in refusing]
    for member in ringing:
        ring(pbx, member)

    def rows() -> list[Cdr]:
        return [row for member in members for row in cdrs(engine, call, trunk, member)]

    def leave() -> None:
        queue_event(pbx, "QueueCallerLeave", trunk, None, [("Queue", QUEUE), ("Count", 0), ("Position", 1)])

    hung_up = await call.sleep(min(ring_seconds, BUSY_DELAY))
    if not hung_up:
        for member, ext in zip(members, extensions):
            if member in refusing:
                # app_queue's rna(): RingTime in milliseconds, between the DialEnd and the hang-up.
                described = _member(ext) + [("RingTime", int((time.time() - member.chan.created) * 1000))]
                fail(pbx, trunk, member, "BUSY", 17, then=lambda chan=member.chan, described=described: queue_event(
                    pbx, "AgentRingNoAnswer", trunk, chan, described,
                ))
    hung_up = hung_up or await call.sleep(max(ring_seconds - BUSY_DELAY, 0.0))
    if hung_up or not ringing:
        for member in ringing:
            cancel(pbx, trunk, member)
        if hung_up:
            queue_event(pbx, "QueueCallerAbandon", trunk, None, [
                ("Queue", QUEUE), ("Position", 1), ("OriginalPosition", 1), ("HoldTime", int(time.time() - joined)),
            ])
        leave()  # the caller gave up, or the queue timed out with every member busy
        pbx.hangup(trunk, 16)
        engine.write_cdrs(rows())
        return

    member = ringing[0]
    ext = extensions[members.index(member)]
    rang = int(time.time() - member.chan.created)
    answer(pbx, trunk, [member, member.inner[0]])
    for other in members:
        if other is not member:
            cancel(pbx, trunk, other)
    leave()
    connected = time.time()
    described = _member(ext)
    queue_event(pbx, "AgentConnect", trunk, member.chan, described + [
        ("HoldTime", int(connected - joined)), ("RingTime", rang),
    ])
    bridge = pbx.bridge_create()
    pbx.bridge_enter(bridge, trunk)
    pbx.bridge_enter(bridge, member.chan)
    engine.start_recording(call, trunk)
    await call.sleep(talk)
    engine.save_recording(call, trunk)
    first = first_to_hang_up(engine, call, trunk)
    queue_event(pbx, "AgentComplete", trunk, member.chan, described + [
        ("HoldTime", int(connected - joined)), ("TalkTime", int(time.time() - connected)),
        ("Reason", "caller" if first is trunk else "agent"),
    ])
    pbx.hangup_connected(first, call.hangup_cause)
    engine.write_cdrs(rows())


def _interface(ext: str) -> str:
    return f"Local/{ext}@{QUEUE_CONTEXT}/n"


def _member(ext: str) -> list[tuple[str, object]]:
    # A static member without a name is known by its interface, as app_queue names it.
    return [("Queue", QUEUE), ("MemberName", _interface(ext)), ("Interface", _interface(ext))]
