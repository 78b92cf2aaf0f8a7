"""Calls out: from an operator's desk phone, and click-to-dial originates through Local chains.

Desk phone (`outbound_answered`): the operator's phone dials the number itself:
`Dial(PJSIP/trunk/<number>)` from context `from-internal`; the outside party answers.

Local chain: an Originate whose Channel is `Local/<ext>@click-to-call`. Its ;2 dials
`Local/<ext>@from-internal`, whose ;2 dials the operator's phone; once the operator answers,
the originated ;1 runs the originate's Context/Exten and dials `Local/<number>@outbound`, whose
;2 dials `PJSIP/trunk/<number>`, with `D(${SIMPLECALLS_DTMF})` when the originate set it (the
variable handed on by inheritance). The originated ;1's DialBegin/DialEnd carry Dest* fields only
(docs/pbx.md §4). SimOutcome settings apply to both legs as for a plain originate.
"""

from __future__ import annotations

from collections.abc import Mapping

from .calls import Call, Engine, Outcome
from .cdr import Cdr
from .legs import answer, cancel, cdrs, dial_local, dial_phone, dial_trunk, endpoint_of, fail, open_local, ring
from .pbx import Channel
from .scenarios import BUSY_DELAY, INTERNAL_CONTEXT, OriginateRequest, Report, dtmf_option, first_to_hang_up, send_dtmf

OUTBOUND_SCENARIOS = ("outbound_answered",)
CHAIN_CONTEXT, OUTBOUND_CONTEXT = "click-to-call", "outbound"


def outbound_channel(engine: Engine, call: Call, extension: str, number: str, endpoints: Mapping[str, str]) -> Channel:
    """The desk phone's channel, dialling `number`; made up front so its Uniqueid can be returned."""
    pbx = engine.pbx
    tech, resource = endpoint_of(extension, endpoints)
    phone = pbx.new_channel(
        pbx.pjsip_name(resource, tech), state=0, caller=(extension, ""), context=INTERNAL_CONTEXT, exten=number,
    )
    engine.attach(call, phone)
    return phone


async def outbound(engine: Engine, call: Call, phone: Channel, *, ring_seconds: float, talk: float) -> None:
    pbx = engine.pbx
    pbx.set_state(phone, 4)
    trunk = dial_trunk(pbx, call, phone, phone.exten, timeout=60)
    ring(pbx, trunk)
    if await call.sleep(ring_seconds):  # the operator put the handset down while it rang
        cancel(pbx, phone, trunk)
        pbx.hangup(phone, 16)
        engine.write_cdrs(cdrs(engine, call, phone, trunk))
        return
    answer(pbx, phone, [trunk])
    pbx.set_state(phone, 6)
    bridge = pbx.bridge_create()
    pbx.bridge_enter(bridge, phone)
    pbx.bridge_enter(bridge, trunk.chan)
    engine.start_recording(call, phone)
    await call.sleep(talk)
    engine.save_recording(call, phone)
    pbx.hangup_connected(first_to_hang_up(engine, call, trunk.chan), call.hangup_cause)
    engine.write_cdrs(cdrs(engine, call, phone, trunk))


def is_chain(channel: str) -> bool:
    """An originate to `Local/<ext>@click-to-call` rings the operator through a Local chain."""
    tech, _, data = channel.partition("/")
    return tech.lower() == "local" and data.partition("@")[2].split("/")[0] == CHAIN_CONTEXT


async def originate_chain(engine: Engine, call: Call, req: OriginateRequest, outcome: Outcome, report: Report) -> None:
    pbx = engine.pbx
    target = req.channel.partition("/")[2].partition("@")[0]
    timeout = req.timeout_ms / 1000
    seconds = max(int(timeout), 1)
    cid = (req.caller_num, req.caller_name)
    if outcome.extension == "failed":
        await call.sleep(0.05)
        report(0, None)
        return

    inner_data = f"Local/{target}@{INTERNAL_CONTEXT},{seconds}"
    outer = open_local(
        pbx, call, target, CHAIN_CONTEXT, caller=cid, connected=cid, dst="", dcontext="", lastdata="",
        uniqueids=(req.channel_id or None, req.other_channel_id or None),
    )
    engine.attach(call, outer.chan)
    assert outer.two is not None
    pbx.dial_begin(None, outer.chan, f"{target}@{CHAIN_CONTEXT}")
    pbx.new_exten(outer.two, CHAIN_CONTEXT, target, "Dial", inner_data)
    inner = dial_local(pbx, call, outer.two, target, INTERNAL_CONTEXT, inner_data)
    assert inner.two is not None
    inner.inner.append(dial_phone(pbx, call, inner.two, target, engine.endpoints, timeout=seconds))
    outer.inner.append(inner)

    def operator_rows() -> list[Cdr]:
        return cdrs(engine, call, None, outer)

    if outcome.extension == "busy":
        await call.sleep(min(outcome.ring, BUSY_DELAY))
        fail(pbx, None, outer, "BUSY", 17, then=lambda: report(5, None))
        engine.write_cdrs(operator_rows())
        return
    ring(pbx, outer)
    hung_up = await call.sleep(timeout if outcome.extension == "no_answer" else min(outcome.ring, timeout))
    if hung_up or outcome.extension == "no_answer" or outcome.ring >= timeout:
        cancel(pbx, None, outer, "CANCEL" if hung_up else "NOANSWER", then=lambda: report(1 if hung_up else 3, None))
        engine.write_cdrs(operator_rows())
        return
    answer(pbx, None, [outer, inner, inner.inner[0]])
    one = outer.chan
    report(4, one)
    if req.application:
        await call.sleep(outcome.talk)
        pbx.hangup_connected(first_to_hang_up(engine, call, one), call.hangup_cause)
        engine.write_cdrs(operator_rows())
        return

    # The originate target runs on the ;1 half: Dial(Local/<number>@outbound), whose ;2 takes the trunk.
    out_data = f"Local/{req.exten}@{OUTBOUND_CONTEXT},{seconds}"
    pbx.new_exten(one, req.context, req.exten, "Dial", out_data)
    out = dial_local(pbx, call, one, req.exten, OUTBOUND_CONTEXT, out_data)
    assert out.two is not None
    if outcome.outside == "failed":
        # No trunk channel can be had: the ;2 half's Dial ends CHANUNAVAIL without Dial events.
        pbx.new_exten(out.two, OUTBOUND_CONTEXT, req.exten, "Dial", f"PJSIP/trunk/{req.exten},{seconds}")
        await call.sleep(0.05)
        fail(pbx, one, out, "CHANUNAVAIL", 20)
        pbx.hangup_connected(one, 16)
        engine.write_cdrs(operator_rows() + cdrs(engine, call, one, out))
        return
    out.inner.append(dial_trunk(pbx, call, out.two, req.exten, timeout=seconds, options=dtmf_option(req)))
    if outcome.outside == "busy":
        await call.sleep(min(outcome.ring, BUSY_DELAY))
        fail(pbx, one, out, "BUSY", 17)
        pbx.hangup_connected(one, 17)
        engine.write_cdrs(operator_rows() + cdrs(engine, call, one, out))
        return
    ring(pbx, out)
    hung_up = await call.sleep(timeout if outcome.outside == "no_answer" else min(outcome.ring, timeout))
    if hung_up or outcome.outside == "no_answer" or outcome.ring >= timeout:
        cancel(pbx, one, out, "CANCEL" if hung_up else "NOANSWER")
        pbx.hangup_connected(first_to_hang_up(engine, call, one), 16)
        engine.write_cdrs(operator_rows() + cdrs(engine, call, one, out))
        return
    trunk = out.inner[0].chan
    answer(pbx, one, [out, out.inner[0]])
    await send_dtmf(engine, call, req, trunk)
    bridge = pbx.bridge_create()
    pbx.bridge_enter(bridge, one)
    pbx.bridge_enter(bridge, out.chan)
    engine.start_recording(call, one)
    await call.sleep(outcome.talk)
    engine.save_recording(call, one)
    pbx.hangup_connected(first_to_hang_up(engine, call, trunk), call.hangup_cause)
    engine.write_cdrs(operator_rows() + cdrs(engine, call, one, out))
