"""AMI actions, with Asterisk's exact reply strings, plus the simulator's Sim* actions."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from . import protocol
from .calls import OUTCOMES
from .outbound import is_chain, originate_chain
from .pbx import Channel, Pbx
from .protocol import Request, response
from .scenarios import INBOUND_SCENARIOS, OriginateRequest, originate

if TYPE_CHECKING:
    from .server import Session

Handler = Callable[["Session", Request], Awaitable[bool]]

NO_AUTH_NEEDED = {"login", "logoff", "challenge"}


async def handle(session: Session, request: Request) -> bool:
    """Answer one request; return False when the session must be closed afterwards."""
    if request.error:
        session.send(response(request, "Error", request.error))
        return True
    action = request.action
    if not action:
        session.send(response(request, "Error", "Missing action in request"))
        return True
    name = action.lower()
    if not session.authenticated and name not in NO_AUTH_NEEDED:
        session.send(response(request, "Error", "Permission denied"))
        return True
    handler = ACTIONS.get(name)
    if handler is None:
        session.send(response(
            request, "Error",
            f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands.",
        ))
        return True
    if not session.simulator.may_write(AUTHORITY[name]):
        # manager.c checks the user's write= classes before the action reads a single header.
        session.send(response(request, "Error", "Permission denied"))
        return True
    return await handler[0](session, request)


# -- session actions -------------------------------------------------------------------------


async def login(session: Session, request: Request) -> bool:
    if session.authenticated:
        session.send(response(request, "Success", "Already authenticated"))
        return True
    simulator = session.simulator
    if not simulator.credentials_ok(session, request):
        await asyncio.sleep(1.0 * simulator.time_scale)
        session.send(response(request, "Error", "Authentication failed"))
        return False
    mask = protocol.strings_to_mask(request.get("events"))
    session.event_mask = simulator.read_mask & mask if mask >= 0 else simulator.read_mask
    session.logged_in()
    session.send(response(request, "Success", "Authentication accepted"))
    if session.event_mask & protocol.EVENT_CLASSES["system"]:
        uptime = int(time.time() - simulator.started_at)
        body = f"Uptime: {uptime}\r\nLastReload: {uptime}\r\nStatus: Fully Booted\r\n"
        session.send(protocol.event("FullyBooted", "system", body))
    return True


async def logoff(session: Session, request: Request) -> bool:
    session.send(response(request, "Goodbye", "Thanks for all the fish."))
    return False


async def challenge(session: Session, request: Request) -> bool:
    if request.get("authtype").lower() != "md5":
        session.send(response(request, "Error", "Must specify AuthType"))
        return True
    if not session.challenge:
        session.challenge = str(random.randint(100_000_000, 999_999_999))
    session.send(response(request, "Success", extra=[("Challenge", session.challenge)]))
    return True


async def ping(session: Session, request: Request) -> bool:
    session.send(response(request, "Success", extra=[("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}")]))
    return True


async def events(session: Session, request: Request) -> bool:
    mask = protocol.strings_to_mask(request.get("eventmask"))
    if mask < 0:
        session.send(response(request, "Error", "Invalid event mask"))
        return True
    session.event_mask = session.simulator.read_mask & mask  # never more than the user's read= classes
    session.send(response(request, "Success", extra=[("Events", "On" if mask else "Off")]))
    return True


async def list_commands(session: Session, request: Request) -> bool:
    allowed = session.simulator.may_write
    pairs = [(spec[1], f"{spec[2]} (Priv: {spec[3]})") for name, spec in ACTIONS.items() if allowed(AUTHORITY[name])]
    session.send(response(request, "Success", extra=pairs))
    return True


# -- channel actions -------------------------------------------------------------------------


async def hangup(session: Session, request: Request) -> bool:
    channel = request.get("channel")
    if not channel:
        session.send(response(request, "Error", "No channel specified"))
        return True
    cause_text = request.get("cause")
    cause = int(cause_text) if cause_text.isdigit() else 16
    if session.simulator.engine.request_hangup(channel, cause):
        session.send(response(request, "Success", "Channel Hungup"))
    else:
        session.send(response(request, "Error", "No such channel"))
    return True


async def core_show_channels(session: Session, request: Request) -> bool:
    pbx = session.simulator.pbx
    session.send(response(request, "Success", "Channels will follow", event_list="start"))
    now = time.time()
    channels = list(pbx.channels.values())
    for chan in channels:
        seconds = int(now - chan.created)
        body = pbx.snapshot(chan) + protocol.fields([
            ("Application", chan.application),
            ("ApplicationData", chan.app_data),
            ("Duration", f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"),
            ("BridgeId", chan.bridge.uniqueid if chan.bridge else ""),
        ])
        session.send(protocol.list_item("CoreShowChannel", request, body))
    session.send(protocol.list_complete("CoreShowChannelsComplete", request, len(channels)))
    return True


async def originate_action(session: Session, request: Request) -> bool:
    error = _originate_error(request)
    if error:
        session.send(response(request, "Error", error))
        return True
    simulator = session.simulator
    engine = simulator.engine
    name, caller_num = _parse_callerid(request.get("callerid"))
    req = OriginateRequest(
        channel=request.get("channel"),
        context=request.get("context"),
        exten=request.get("exten"),
        priority=request.get("priority"),
        timeout_ms=int(request.get("timeout") or 30000),
        caller_num=caller_num,
        caller_name=name,
        action_id=request.action_id,
        channel_id=request.get("channelid"),
        other_channel_id=request.get("otherchannelid"),
        application=request.get("application"),
        data=request.get("data"),
        variables=originate_variables(request),
    )
    asynchronous = protocol.is_true(request.get("async"))
    result: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def report(reason: int, chan: Channel | None) -> None:
        if asynchronous:
            simulator.pbx.emit("OriginateResponse", "call", _originate_response(simulator.pbx, req, reason, chan))
        elif not result.done():
            result.set_result(reason)

    call = engine.new_call()
    if asynchronous:
        session.send(response(request, "Success", "Originate successfully queued"))
    script = originate_chain if is_chain(req.channel) else originate
    engine.launch(call, script(engine, call, req, engine.outcome_for(req.exten), report))
    if not asynchronous:
        # The session blocks here, as Asterisk's does, until the operator leg is decided.
        reason = await result
        if reason == 4:
            session.send(response(request, "Success", "Originate successfully queued"))
        else:
            session.send(response(request, "Error", "Originate failed"))
    return True


def _originate_error(request: Request) -> str | None:
    channel = request.get("channel")
    if not channel:
        return "Channel not specified"
    priority = request.get("priority")
    if priority and not priority.lstrip("-").isdigit():
        return "Invalid priority"
    timeout = request.get("timeout")
    if timeout and not timeout.lstrip("-").isdigit():
        return "Invalid timeout"
    if "/" not in channel:
        return "Invalid channel"
    if not request.get("application") and not (request.get("context") and priority):
        return "Originate with 'Exten' requires 'Context' and 'Priority'"
    return None


def originate_variables(request: Request) -> dict[str, str]:
    """Every `Variable:` header's `name=value` items, comma-separated or repeated, as manager.c reads them.

    Like man_do_variable_value: an item without `=` or without a name is skipped, nothing is trimmed
    but the header's leading blanks, and a later item wins. Every comma splits here, where Asterisk
    would keep one inside quotes or brackets.
    """
    variables = {}
    for name, value in request.lines:
        if name.lower() != "variable":
            continue
        for item in value.lstrip().split(","):
            key, equals, setting = item.partition("=")
            if key and equals:
                variables[key] = setting
    return variables


def _parse_callerid(value: str) -> tuple[str, str]:
    """Split `"Name" <number>` into (name, number) like ast_callerid_parse."""
    value = value.strip()
    if "<" in value and value.endswith(">"):
        name, _, number = value[:-1].partition("<")
        return name.strip().strip('"').strip(), number.strip()
    if value and all(ch in "0123456789*#+" for ch in value):
        return "", value
    return value, ""


def _originate_response(pbx: Pbx, req: OriginateRequest, reason: int, chan: Channel | None) -> str:
    pairs: list[tuple[str, object]] = []
    if req.action_id:
        pairs.append(("ActionID", req.action_id))
    pairs += [
        ("Response", "Success" if reason == 4 else "Failure"),
        # pbx.c hands back no channel for a failed dial, so Asterisk names the one requested.
        ("Channel", chan.name if chan else req.channel),
    ]
    if req.application:
        pairs += [("Application", req.application), ("Data", req.data)]
    else:
        pairs += [("Context", req.context), ("Exten", req.exten)]
    pairs += [
        ("Reason", reason),
        ("Uniqueid", chan.uniqueid if chan else (req.channel_id or "<unknown>")),
        ("CallerIDNum", req.caller_num or "<unknown>"),
        ("CallerIDName", req.caller_name or "<unknown>"),
    ]
    text = protocol.fields(pairs)
    if chan is not None:
        # ast_manager_event_multichan appends channelvars after the event's own fields.
        text += pbx.chanvariable_lines(chan)
    return text


# -- simulator actions -----------------------------------------------------------------------


def _seconds(request: Request, key: str, default: float) -> float:
    value = request.get(key)
    return float(value) if value else default


def _list(request: Request, key: str, default: str = "") -> list[str]:
    return [item.strip() for item in (request.get(key) or default).split(",") if item.strip()]


def parse_endpoints(value: str) -> dict[str, str]:
    """`106=PJSIP/hg63xv,107=SIP/office-front` -> {"106": "PJSIP/hg63xv", …}; ValueError when malformed."""
    endpoints = {}
    for item in value.split(","):
        if not item.strip():
            continue
        extension, equals, endpoint = (part.strip() for part in item.partition("="))
        tech, slash, resource = endpoint.partition("/")
        if not (extension and equals and tech and slash and resource):
            raise ValueError(f"Invalid Endpoints: {item.strip()}")
        endpoints[extension] = endpoint
    return endpoints


async def sim_call(session: Session, request: Request) -> bool:
    try:
        call = session.simulator.start_call(
            request.get("scenario") or "inbound_answered",
            caller=request.get("caller") or "74957894561",
            caller_name=request.get("callername"),
            extensions=_list(request, "extensions", "100"),
            ring=_seconds(request, "ring", 1.0),
            talk=_seconds(request, "talk", 2.0),
            busy=_list(request, "busy"),
            endpoints=parse_endpoints(request.get("endpoints")),
        )
    except ValueError as error:
        session.send(response(request, "Error", str(error)))
        return True
    session.send(response(request, "Success", "Call started", extra=[("Linkedid", call.linkedid)]))
    return True


async def sim_load(session: Session, request: Request) -> bool:
    try:
        rate = float(request.get("rate") or 10)
        seconds = float(request.get("seconds") or 1)
        scenario = request.get("scenario") or "inbound_answered"
        extensions = [e.strip() for e in (request.get("extensions") or "100").split(",") if e.strip()]
        ring, talk = _seconds(request, "ring", 1.0), _seconds(request, "talk", 2.0)
    except ValueError:
        session.send(response(request, "Error", "Invalid Rate, Seconds, Ring or Talk"))
        return True
    if scenario not in INBOUND_SCENARIOS or not extensions:
        session.send(response(request, "Error", f"Unknown scenario: {scenario}"))
        return True
    count = await session.simulator.load(
        rate=rate, seconds=seconds, scenario=scenario, extensions=extensions, ring=ring, talk=talk, wait=False,
    )
    session.send(response(request, "Success", f"{count} calls started", extra=[("Calls", count)]))
    return True


async def sim_outcome(session: Session, request: Request) -> bool:
    outside = request.get("outcome") or None
    extension = request.get("extensionoutcome") or request.get("extension") or None
    for value in (outside, extension):
        if value is not None and value not in OUTCOMES:
            session.send(response(request, "Error", f"Invalid outcome: {value}"))
            return True
    try:
        ring = float(request.get("ring")) if request.get("ring") else None
        talk = float(request.get("talk")) if request.get("talk") else None
    except ValueError:
        session.send(response(request, "Error", "Invalid Ring or Talk"))
        return True
    outcome = session.simulator.engine.set_outcome(
        request.get("exten") or "*", outside=outside, extension=extension, ring=ring, talk=talk,
    )
    session.send(response(request, "Success", "Outcome set", extra=[
        ("Outcome", outcome.outside), ("ExtensionOutcome", outcome.extension),
    ]))
    return True


async def sim_dtmf(session: Session, request: Request) -> bool:
    exten = request.get("exten")
    if not exten:
        session.send(response(request, "Error", "Exten not specified"))
        return True
    digits = session.simulator.engine.dtmf_received.get(exten, "")
    session.send(response(request, "Success", "DTMF received", extra=[("Exten", exten), ("Digits", digits)]))
    return True


async def sim_drop(session: Session, request: Request) -> bool:
    session.send(response(request, "Success", "Dropping other sessions"))
    session.flush()
    await session.simulator.drop_connections(keep=session)
    return True


# name: (handler, display name, synopsis, privilege) — the last three for ListCommands.
ACTIONS: dict[str, tuple[Handler, str, str, str]] = {
    "login": (login, "Login", "Login Manager", "<none>"),
    "logoff": (logoff, "Logoff", "Logoff Manager", "<none>"),
    "challenge": (challenge, "Challenge", "Generate Challenge for MD5 Auth", "<none>"),
    "ping": (ping, "Ping", "Keepalive command", "<none>"),
    "events": (events, "Events", "Control Event Flow", "<none>"),
    "listcommands": (list_commands, "ListCommands", "List available manager commands", "<none>"),
    "hangup": (hangup, "Hangup", "Hangup channel", "system,call,all"),
    "coreshowchannels": (core_show_channels, "CoreShowChannels", "List currently active channels", "system,reporting,all"),
    "originate": (originate_action, "Originate", "Originate a call", "originate,all"),
    "simcall": (sim_call, "SimCall", "Simulator: play an inbound call", "originate,all"),
    "simload": (sim_load, "SimLoad", "Simulator: play many inbound calls", "originate,all"),
    "simoutcome": (sim_outcome, "SimOutcome", "Simulator: set how originates end", "originate,all"),
    "simdtmf": (sim_dtmf, "SimDTMF", "Simulator: the DTMF an outside number was sent", "originate,all"),
    "simdrop": (sim_drop, "SimDrop", "Simulator: drop every other session", "originate,all"),
}


def authority(privilege: str) -> int:
    """The classes an action needs, from its ListCommands privilege: `system,reporting,all` → system|reporting."""
    names = [name for name in privilege.split(",") if name not in ("all", "<none>")]
    return protocol.strings_to_mask(",".join(names)) if names else 0


AUTHORITY = {name: authority(spec[3]) for name, spec in ACTIONS.items()}
