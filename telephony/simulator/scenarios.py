"""Call scripts: the event sequences of docs/pbx.md §4 and §6, one telephony step per line.

Inbound calls come in on `PJSIP/trunk-…` (context `from-trunk`, Exten = the DID) and dial
every listed extension's phone at once (`PJSIP/<ext>`, or the endpoint the simulator's
`endpoints` names for it); the first listed one answers. Originates ring the operator
(through a Local ;1/;2 pair when the channel is `Local/…`), then dial the outside number on
`PJSIP/trunk-…`; once the outside party answers, the originate's SIMPLECALLS_DTMF is sent to
it as the dialplan's `D()` option would (`send_dtmf`, docs/pbx.md §4). The caller, or the
outside party, hangs up first unless a Hangup action says otherwise. Ring groups and queues
are in groups.py, Local chains and desk-phone calls out in outbound.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .calls import Call, Engine, Outcome
from .cdr import Cdr
from .legs import endpoint_of
from .pbx import Channel

INBOUND_SCENARIOS = ("inbound_answered", "inbound_missed", "inbound_no_answer", "inbound_busy")
INBOUND_CONTEXT = "from-trunk"
INTERNAL_CONTEXT = "from-internal"
DID = "74951234500"
# A busy phone answers 486 almost at once; this is that delay, before time_scale.
BUSY_DELAY = 0.3

DISPOSITION = {"answered": "ANSWERED", "no_answer": "NO ANSWER", "busy": "BUSY", "failed": "FAILED"}

# The originate's channel variable holding what Dial's D() sends the outside party once it answers.
DTMF_VARIABLE = "SIMPLECALLS_DTMF"
DTMF_WAITS = {"w": 0.5, "W": 1.0}
DTMF_DIGITS = frozenset("0123456789*#ABCDabcd")


def inbound_channel(engine: Engine, call: Call, caller: str, caller_name: str) -> Channel:
    """The trunk channel of an inbound call, made up front so its Uniqueid can be returned."""
    pbx = engine.pbx
    trunk = pbx.new_channel(
        pbx.pjsip_name("trunk"), state=0, caller=(caller, caller_name), context=INBOUND_CONTEXT, exten=DID,
    )
    engine.attach(call, trunk)
    return trunk


async def inbound(
    engine: Engine,
    call: Call,
    trunk: Channel,
    scenario: str,
    *,
    extensions: Sequence[str],
    ring: float,
    talk: float,
    endpoints: Mapping[str, str] | None = None,
) -> None:
    pbx = engine.pbx
    caller, caller_name = trunk.caller_num, trunk.caller_name
    phones = [endpoint_of(ext, endpoints or {}) for ext in extensions]
    dial_data = "&".join(f"{tech}/{resource}" for tech, resource in phones) + ",30"
    pbx.set_state(trunk, 4)
    pbx.new_exten(trunk, INBOUND_CONTEXT, DID, "Dial", dial_data)
    legs: list[Channel] = []
    for ext, (tech, resource) in zip(extensions, phones):
        leg = pbx.new_channel(
            pbx.pjsip_name(resource, tech),
            state=0,
            linkedid=call.linkedid,
            caller=(ext, ""),
            connected=(caller, caller_name),
            context=INTERNAL_CONTEXT,
            exten=ext,
            application="AppDial",
            app_data="(Outgoing Line)",
        )
        pbx.dial_begin(trunk, leg, resource)
        legs.append(leg)

    def cdrs(disposition: Callable[[Channel], str]) -> list[Cdr]:
        return [
            engine.dial_cdr(
                call, trunk, leg, dst=DID, dcontext=INBOUND_CONTEXT, lastdata=dial_data,
                disposition=disposition(leg),
            )
            for leg in legs
        ]

    if scenario == "inbound_busy":
        await call.sleep(min(ring, BUSY_DELAY))
        for leg in legs:
            pbx.dial_end(trunk, leg, "BUSY")
            pbx.hangup(leg, 17)
        pbx.hangup(trunk, 17)
        engine.write_cdrs(cdrs(lambda leg: "BUSY"))
        return

    for leg in legs:
        pbx.set_state(leg, 5)
    hung_up = await call.sleep(ring)
    if hung_up or scenario in ("inbound_missed", "inbound_no_answer"):
        # A Hangup action while ringing counts as the caller giving up.
        status, cause = ("NOANSWER", 19) if scenario == "inbound_no_answer" and not hung_up else ("CANCEL", 16)
        for leg in legs:
            pbx.dial_end(trunk, leg, status)
            pbx.hangup(leg, cause)
        pbx.hangup(trunk, 16)
        engine.write_cdrs(cdrs(lambda leg: "NO ANSWER"))
        return

    answerer = legs[0]
    pbx.set_state(answerer, 6)
    pbx.dial_end(trunk, answerer, "ANSWER")
    for other in legs[1:]:
        pbx.dial_end(trunk, other, "CANCEL")
        pbx.hangup(other, 16)
    pbx.set_state(trunk, 6)
    bridge = pbx.bridge_create()
    pbx.bridge_enter(bridge, trunk)
    pbx.bridge_enter(bridge, answerer)
    engine.start_recording(call, trunk)
    await call.sleep(talk)
    engine.save_recording(call, trunk)
    pbx.hangup_connected(first_to_hang_up(engine, call, trunk), call.hangup_cause)
    engine.write_cdrs(cdrs(lambda leg: "ANSWERED" if leg is answerer else "NO ANSWER"))


@dataclass
class OriginateRequest:
    channel: str
    context: str
    exten: str
    priority: str
    timeout_ms: int
    caller_num: str
    caller_name: str
    action_id: str
    channel_id: str
    other_channel_id: str
    application: str = ""
    data: str = ""
    variables: dict[str, str] = field(default_factory=dict)


# Called once the operator leg's fate is known: (reason, originated channel or None).
Report = Callable[[int, Channel | None], None]


async def originate(engine: Engine, call: Call, req: OriginateRequest, outcome: Outcome, report: Report) -> None:
    pbx = engine.pbx
    tech, _, data = req.channel.partition("/")
    timeout = req.timeout_ms / 1000
    ring = timeout if outcome.extension == "no_answer" else min(outcome.ring, timeout)
    cid = (req.caller_num, req.caller_name)
    if outcome.extension == "failed":
        await call.sleep(0.05)
        report(0, None)
        return

    two = phone = None
    if tech.lower() == "local":
        target, _, local_context = data.partition("@")
        local_context = local_context.split("/")[0] or "default"
        base = pbx.local_base(data)
        one = pbx.new_channel(
            base + ";1", state=0, uniqueid=req.channel_id or None, caller=cid, connected=cid,
            context=local_context, exten=target,
        )
        engine.attach(call, one)
        two = pbx.new_channel(
            base + ";2", state=4, uniqueid=req.other_channel_id or None, linkedid=call.linkedid,
            caller=cid, connected=cid, context=local_context, exten=target,
        )
        pbx.local_bridge(one, two, local_context, target)
        pbx.dial_begin(None, one, data)
        phone_tech, phone_resource = endpoint_of(target, engine.endpoints)
        phone_data = f"{phone_tech}/{phone_resource},30"
        pbx.new_exten(two, local_context, target, "Dial", phone_data)
        phone = pbx.new_channel(
            pbx.pjsip_name(phone_resource, phone_tech), state=0, linkedid=call.linkedid, caller=(target, ""), connected=cid,
            context=local_context, exten="s", application="AppDial", app_data="(Outgoing Line)",
        )
        pbx.dial_begin(two, phone, phone_resource)
    else:
        target, local_context, phone_data = data, INTERNAL_CONTEXT, ""
        one = pbx.new_channel(
            pbx.pjsip_name(data, tech),
            state=0, uniqueid=req.channel_id or None, caller=cid, connected=cid, context="default", exten="s",
        )
        engine.attach(call, one)
        pbx.dial_begin(None, one, data)

    def phone_cdr(disposition: str) -> list[Cdr]:
        if two is None or phone is None:
            return []
        return [engine.dial_cdr(
            call, two, phone, dst=target, dcontext=local_context, lastdata=phone_data,
            disposition=disposition,
        )]

    if outcome.extension == "busy":
        await call.sleep(min(outcome.ring, BUSY_DELAY))
        if phone is not None and two is not None:
            pbx.dial_end(two, phone, "BUSY")
            pbx.hangup(phone, 17)
            pbx.hangup(two, 17)
        pbx.dial_end(None, one, "BUSY")
        report(5, None)
        pbx.hangup(one, 17)
        engine.write_cdrs(phone_cdr("BUSY"))
        return

    if phone is not None:
        pbx.set_state(phone, 5)
    pbx.set_state(one, 5)
    hung_up = await call.sleep(ring)
    if hung_up or outcome.extension == "no_answer" or outcome.ring >= timeout:
        pbx.dial_end(None, one, "CANCEL" if hung_up else "NOANSWER")
        report(1 if hung_up else 3, None)
        pbx.hangup(one, 16)
        if phone is not None and two is not None:
            pbx.dial_end(two, phone, "CANCEL")
            pbx.hangup(phone, 16)
            pbx.hangup(two, 16)
        engine.write_cdrs(phone_cdr("NO ANSWER"))
        return

    if phone is not None and two is not None:
        pbx.set_state(phone, 6)
        pbx.dial_end(two, phone, "ANSWER")
        pbx.set_state(two, 6)
        operator_bridge = pbx.bridge_create()
        pbx.bridge_enter(operator_bridge, two)
        pbx.bridge_enter(operator_bridge, phone)
    pbx.set_state(one, 6)
    pbx.dial_end(None, one, "ANSWER")
    report(4, one)
    if req.application:
        await call.sleep(outcome.talk)
        pbx.hangup_connected(first_to_hang_up(engine, call, one), call.hangup_cause)
        engine.write_cdrs(phone_cdr("ANSWERED"))
        return
    rows = await _dial_outside(engine, call, req, outcome, one)
    engine.write_cdrs(rows + phone_cdr("ANSWERED"))


async def _dial_outside(engine: Engine, call: Call, req: OriginateRequest, outcome: Outcome, one: Channel) -> list[Cdr]:
    """The originate target runs on the operator's channel: Dial(PJSIP/trunk/<number>)."""
    pbx = engine.pbx
    timeout = req.timeout_ms / 1000
    options = dtmf_option(req)
    dial_data = f"PJSIP/trunk/{req.exten},{max(int(timeout), 1)}" + (f",{options}" if options else "")
    pbx.new_exten(one, req.context, req.exten, "Dial", dial_data)

    def row(trunk: Channel | None, disposition: str) -> list[Cdr]:
        return [engine.dial_cdr(
            call, one, trunk, dst=req.exten, dcontext=req.context, lastdata=dial_data,
            disposition=disposition,
        )]

    if outcome.outside == "failed":
        # The trunk channel cannot be created: Dial gives CHANUNAVAIL with no Dial events.
        await call.sleep(0.05)
        pbx.hangup_connected(one, 20)
        return row(None, "FAILED")

    trunk = pbx.new_channel(
        pbx.pjsip_name("trunk"), state=0, linkedid=call.linkedid, caller=(req.exten, ""),
        connected=(one.caller_num, one.caller_name), context=req.context, exten=req.exten,
        application="AppDial", app_data="(Outgoing Line)",
    )
    pbx.dial_begin(one, trunk, f"trunk/{req.exten}")
    if outcome.outside == "busy":
        await call.sleep(min(outcome.ring, BUSY_DELAY))
        pbx.dial_end(one, trunk, "BUSY")
        pbx.hangup(trunk, 17)
        pbx.hangup_connected(one, 17)
        return row(trunk, "BUSY")

    pbx.set_state(trunk, 5)
    ring = timeout if outcome.outside == "no_answer" else min(outcome.ring, timeout)
    hung_up = await call.sleep(ring)
    if hung_up or outcome.outside == "no_answer" or outcome.ring >= timeout:
        pbx.dial_end(one, trunk, "CANCEL" if hung_up else "NOANSWER")
        pbx.hangup(trunk, 16 if hung_up else 19)
        pbx.hangup_connected(first_to_hang_up(engine, call, one), 16)
        return row(trunk, "NO ANSWER")

    pbx.set_state(trunk, 6)
    pbx.dial_end(one, trunk, "ANSWER")
    await send_dtmf(engine, call, req, trunk)
    bridge = pbx.bridge_create()
    pbx.bridge_enter(bridge, one)
    pbx.bridge_enter(bridge, trunk)
    engine.start_recording(call, one)
    await call.sleep(outcome.talk)
    engine.save_recording(call, one)
    pbx.hangup_connected(first_to_hang_up(engine, call, trunk), call.hangup_cause)
    return row(trunk, "ANSWERED")


def dtmf_option(req: OriginateRequest) -> str:
    """The trunk Dial's `D(<digits>)` option when the originate set SIMPLECALLS_DTMF, else ""."""
    dtmf = req.variables.get(DTMF_VARIABLE, "")
    return f"D({dtmf})" if dtmf else ""


async def send_dtmf(engine: Engine, call: Call, req: OriginateRequest, trunk: Channel) -> None:
    """Dial's D(): the outside party has answered; wait out the `w`s, then send it each digit, as app.c's dtmf_stream does.

    A quiet 100 ms first, 0.5 s per `w` (1 s per `W`), 100 ms of tone per digit and 250 ms between
    digits, all scaled. A hang-up stops it; a digit already begun still ends, as ast_senddigit ends it.
    """
    dtmf = req.variables.get(DTMF_VARIABLE, "")
    if not dtmf or await call.sleep(0.1):
        return
    pbx = engine.pbx
    for char in dtmf:
        if char in DTMF_WAITS:
            if await call.sleep(DTMF_WAITS[char]):
                return
        elif char in DTMF_DIGITS:
            pbx.emit("DTMFBegin", "dtmf", pbx.snapshot(trunk) + f"Digit: {char}\r\nDirection: Sent\r\n")
            await call.sleep(0.1)
            pbx.emit("DTMFEnd", "dtmf", pbx.snapshot(trunk) + f"Digit: {char}\r\nDurationMs: 100\r\nDirection: Sent\r\n")
            engine.dtmf_received[req.exten] = engine.dtmf_received.get(req.exten, "") + char
            if await call.sleep(0.25):
                return


def first_to_hang_up(engine: Engine, call: Call, default: Channel) -> Channel:
    """The channel named in a Hangup action if it is still up, else the scenario's default."""
    if call.hangup_channel:
        chan = engine.pbx.channels.get(call.hangup_channel)
        if chan is not None:
            return chan
    return default
