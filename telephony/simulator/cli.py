"""Command line: `serve` (the default) runs the simulator; `call` and `load` drive a running one.

    python -m telephony.simulator serve --port 5038 --cdr-csv cdr/Master.csv
    python -m telephony.simulator call inbound_answered --caller 74957894561 --extensions 100,101
    python -m telephony.simulator call inbound_queue --extensions 100,101,102 --busy 100
    python -m telephony.simulator load --rate 50 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from .protocol import FrameParser, Request
from .actions import parse_endpoints
from .scenarios import INBOUND_SCENARIOS
from .server import SCENARIOS, Simulator


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5038)
    parser.add_argument("--username", default="admin")
    parser.add_argument("--secret", default="admin")


def endpoint_argument(value: str) -> str:
    parse_endpoints(value)  # argparse reports the ValueError as an invalid value
    return value


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The `serve` options, reusable by a Django management command."""
    add_connection_arguments(parser)
    parser.add_argument("--cdr-csv", help="append CDRs to this Master.csv")
    parser.add_argument("--recordings-dir", help="write call recordings (.wav) here")
    parser.add_argument(
        "--chanvariable", action="append", default=[], metavar="NAME",
        help="emit ChanVariable: NAME=value on channel events (repeatable), like manager.conf channelvars",
    )
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiply every delay by this")
    parser.add_argument(
        "--endpoint", action="append", default=[], metavar="EXT=TECH/NAME", type=endpoint_argument,
        help="dial this extension's phone on a named endpoint, e.g. 106=PJSIP/hg63xv (repeatable)",
    )
    parser.add_argument("--dialplan-url", help="smart transfer's endpoints for inbound_smart, e.g. http://127.0.0.1:8000/telephony/dialplan/")
    parser.add_argument("--dialplan-token", default="", help="the DIALPLAN_TOKEN those endpoints expect")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pbx_simulator", description="Asterisk 18 AMI simulator")
    commands = parser.add_subparsers(dest="command")
    add_serve_arguments(commands.add_parser("serve", help="run the simulator (default)"))

    call = commands.add_parser("call", help="play one call on a running simulator")
    call.add_argument("scenario", choices=SCENARIOS)
    call.add_argument("--caller", default="74957894561", help="the outside number (dialled, for outbound_answered)")
    call.add_argument("--caller-name", default="")
    call.add_argument("--extensions", default="100", help="comma-separated, e.g. 100,101")
    call.add_argument("--busy", default="", help="ring group and queue members who are busy, e.g. 100")
    call.add_argument("--endpoints", default="", help="e.g. 106=PJSIP/hg63xv,107=SIP/office-front")
    call.add_argument("--ring", type=float, default=1.0)
    call.add_argument("--talk", type=float, default=2.0)
    add_connection_arguments(call)

    load = commands.add_parser("load", help="play many calls on a running simulator")
    load.add_argument("--rate", type=float, required=True, help="calls per second")
    load.add_argument("--seconds", type=float, required=True)
    load.add_argument("--scenario", choices=INBOUND_SCENARIOS, default="inbound_answered")
    load.add_argument("--extensions", default="100")
    load.add_argument("--ring", type=float, default=1.0)
    load.add_argument("--talk", type=float, default=2.0)
    add_connection_arguments(load)
    return parser


def simulator_from_args(args: argparse.Namespace) -> Simulator:
    return Simulator(
        host=args.host,
        port=args.port,
        username=args.username,
        secret=args.secret,
        cdr_csv=args.cdr_csv,
        recordings_dir=args.recordings_dir,
        chanvariables=args.chanvariable,
        time_scale=args.time_scale,
        endpoints=parse_endpoints(",".join(args.endpoint)),
        dialplan_url=args.dialplan_url,
        dialplan_token=args.dialplan_token,
    )


async def serve(simulator: Simulator) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly."""
    await simulator.start()
    print(f"PBX simulator: AMI on {simulator.host}:{simulator.port} (user {simulator.username})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await simulator.stop()


def run_serve(args: argparse.Namespace) -> int:
    asyncio.run(serve(simulator_from_args(args)))
    return 0


async def send_action(args: argparse.Namespace, headers: list[tuple[str, str]]) -> Request:
    """Log in over AMI, send one action, return its reply, log off."""
    reader, writer = await asyncio.open_connection(args.host, args.port)
    parser = FrameParser()
    pending: list[Request] = []

    async def reply(action_id: str) -> Request:
        while True:
            for message in pending:
                if message.action_id == action_id and message.get("response"):
                    pending.remove(message)
                    return message
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("the simulator closed the connection")
            pending.extend(parser.feed(data))

    def send(lines: list[tuple[str, str]]) -> None:
        writer.write("".join(f"{key}: {value}\r\n" for key, value in lines).encode() + b"\r\n")

    await reader.readline()  # the banner
    send([("Action", "Login"), ("ActionID", "cli-1"), ("Username", args.username), ("Secret", args.secret), ("Events", "off")])
    login = await reply("cli-1")
    if login.get("response") != "Success":
        raise PermissionError(login.get("message") or "login failed")
    send([*headers, ("ActionID", "cli-2")])
    result = await reply("cli-2")
    send([("Action", "Logoff"), ("ActionID", "cli-3")])
    with contextlib.suppress(ConnectionError):
        await reply("cli-3")
    writer.close()
    return result


def run_client(args: argparse.Namespace) -> int:
    common = [("Extensions", args.extensions), ("Ring", str(args.ring)), ("Talk", str(args.talk))]
    if args.command == "call":
        headers = [
            ("Action", "SimCall"), ("Scenario", args.scenario), ("Caller", args.caller),
            ("CallerName", args.caller_name), ("Busy", args.busy), ("Endpoints", args.endpoints), *common,
        ]
    else:
        headers = [
            ("Action", "SimLoad"), ("Rate", str(args.rate)), ("Seconds", str(args.seconds)),
            ("Scenario", args.scenario), *common,
        ]
    try:
        result = asyncio.run(send_action(args, headers))
    except PermissionError as error:
        print(f"the simulator refused the login: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"cannot reach the simulator at {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    for key, value in result.lines:
        print(f"{key}: {value}")
    return 0 if result.get("response") == "Success" else 1


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in ("serve", "call", "load", "-h", "--help"):
        arguments.insert(0, "serve")
    args = build_parser().parse_args(arguments)
    if args.command in ("call", "load"):
        return run_client(args)
    return run_serve(args)
