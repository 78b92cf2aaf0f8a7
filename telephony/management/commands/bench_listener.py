import asyncio
import json
import logging
import re
import threading
import time

import asterisk.manager
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from history.models import Call
from telephony.ami import AMIConfig, AMIConnection
from telephony.events import CallTracker
from telephony.listener import Listener
from telephony.models import Operator
from telephony.simulator import Simulator

SCENARIOS = [
    "inbound__answered", "inbound__missed", "inbound__no_answer", "inbound__busy",
    "inbound__two_extensions_one_answers", "originate__answered", "originate__no_answer", "originate__busy",
]
ID = re.compile(r"^((?:\w*)(?:Uniqueid|Linkedid|UniqueID)): (\d{10})\.(\d+)\r$", re.MULTILINE)
USERNAME, SECRET = "bench", "bench-secret"


def build_stream(events: int) -> tuple[bytes, int]:
    """Recorded calls (fixtures/ami) repeated with fresh ids until there are `events` events."""
    frames = []
    for name in SCENARIOS:
        with open(settings.BASE_DIR / "fixtures" / "ami" / f"{name}.txt", encoding="utf-8", newline="") as fixture:
            text = fixture.read()
        frames.append("".join(frame + "\r\n\r\n" for frame in text.split("\r\n\r\n") if frame.startswith("Event:")))
    chunks, count, copy = [], 0, 0
    run = int(time.time() * 1000) % 10**9  # fresh ids on every run: each run inserts its own calls
    while count < events:
        for frame in frames:
            shift = run + copy * 100_000
            chunks.append(ID.sub(lambda m: f"{m[1]}: {int(m[2]) + shift}.{m[3]}\r", frame))
            count += frame.count("Event:")
            copy += 1
    return "".join(chunks).encode(), count


class Command(BaseCommand):
    help = (
        "AMI events/s on one recorded stream, same run: telephony.ami (the product) against panoramisk 1.4 and stock "
        "pyst2 0.5.1 (the floor), each event handed to a callback that counts it (parse) or also reduces it "
        "(parse + reduce), per second and per CPU second of the process; then the whole listener with DB writes. "
        "Ratios product/floor. JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=50_000)
        parser.add_argument("--rounds", type=int, default=3, help="telephony.ami and panoramisk alternate this many times; the best of each counts")

    def handle(self, *args, events, rounds, **options):
        stream, count = build_stream(events)
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        simulator = Simulator(host="127.0.0.1", port=0, username=USERNAME, secret=SECRET)
        asyncio.run_coroutine_threadsafe(simulator.start(), loop).result()
        config = AMIConfig("127.0.0.1", simulator.port, USERNAME, SECRET, timeout=60, ping_interval=0)

        def send_stream():
            loop.call_soon_threadsafe(simulator.inject_raw, stream)

        def best(reduce: bool) -> dict[str, tuple[float, float]]:
            """Seconds and CPU seconds of each client, the best of `rounds` taken alternately (a busy moment weighs on both)."""
            times: dict[str, list[tuple[float, float]]] = {"telephony_ami": [], "panoramisk": []}
            for _ in range(rounds):
                times["panoramisk"].append(panoramisk_client(config, send_stream, Counter(count, reduce)))
                times["telephony_ami"].append(ours(config, send_stream, Counter(count, reduce)))
            return {name: (min(wall for wall, _ in runs), min(cpu for _, cpu in runs)) for name, runs in times.items()}

        def per_s(seconds: float) -> int:
            return round(count / max(seconds, 1e-6))

        figures = {"events": count, "stream_bytes": len(stream), "database": connection.vendor}
        parse, reduce = best(False), best(True)
        stock_wall, stock_cpu = stock_pyst2(config, send_stream, Counter(count))
        product = {
            "parse_events_per_s": per_s(parse["telephony_ami"][0]),
            "parse_events_per_cpu_s": per_s(parse["telephony_ami"][1]),
            "parse_and_reduce_events_per_s": per_s(reduce["telephony_ami"][0]),
        }
        floor = {
            "panoramisk_parse_events_per_s": per_s(parse["panoramisk"][0]),
            "panoramisk_parse_events_per_cpu_s": per_s(parse["panoramisk"][1]),
            "panoramisk_parse_and_reduce_events_per_s": per_s(reduce["panoramisk"][0]),
            "stock_pyst2_parse_events_per_s": per_s(stock_wall),
        }
        figures["stock_pyst2_events_per_s"] = floor["stock_pyst2_parse_events_per_s"]
        figures["telephony_ami_events_per_s"] = product["parse_and_reduce_events_per_s"]
        seconds, calls = with_database(config, send_stream, count)
        figures["listener_with_db_events_per_s"] = per_s(seconds)
        figures["listener_calls_written"] = calls
        figures["product"], figures["floor"] = product, floor
        figures["ratio"] = {
            "parse_vs_panoramisk": round(product["parse_events_per_s"] / floor["panoramisk_parse_events_per_s"], 2),
            "parse_cpu_vs_panoramisk": round(product["parse_events_per_cpu_s"] / floor["panoramisk_parse_events_per_cpu_s"], 2),
            "parse_and_reduce_vs_panoramisk": round(product["parse_and_reduce_events_per_s"] / floor["panoramisk_parse_and_reduce_events_per_s"], 2),
            "parse_vs_stock_pyst2": round(product["parse_events_per_s"] / floor["stock_pyst2_parse_events_per_s"], 1),
        }
        figures["target"] = {"parse_vs_panoramisk_at_least": 1.0, "met": figures["ratio"]["parse_vs_panoramisk"] >= 1.0}
        asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result()
        self.stdout.write(json.dumps(figures))


class Counter:
    """Counts the events handed to it (and feeds each to a CallTracker, with `reduce`); says when `count` have arrived."""

    def __init__(self, count: int, reduce: bool = False):
        self.tracker = CallTracker() if reduce else None
        self.count, self.seen, self.done = count, [0], threading.Event()

    def __call__(self, headers) -> None:
        if self.tracker is not None:
            self.tracker.apply(headers, timezone.now())
        self.seen[0] += 1
        if self.seen[0] >= self.count:
            self.done.set()

    def time(self, send_stream) -> tuple[float, float]:
        """Seconds from sending the stream to its last event handed over, and the CPU seconds the process spent meanwhile."""
        settle(self.seen)
        started, cpu = time.perf_counter(), time.process_time()
        send_stream()
        if not self.done.wait(600):
            raise CommandError(f"only {self.seen[0]} of {self.count} events arrived")
        return time.perf_counter() - started, time.process_time() - cpu


def stock_pyst2(config: AMIConfig, send_stream, counter: Counter) -> tuple[float, float]:
    """pyst2 0.5.1 as shipped: unbuffered socket, its own threads and dispatch."""
    manager = asterisk.manager.Manager()
    manager.connect(config.host, config.port)
    manager.login(config.username, config.secret)
    manager.register_event("*", lambda event, manager: counter(event.headers))
    elapsed = counter.time(send_stream)
    try:
        manager.close()
    except (OSError, ValueError):  # its reader may close the socket on the PBX's Goodbye before Logoff is flushed
        pass
    return elapsed


def panoramisk_client(config: AMIConfig, send_stream, counter: Counter) -> tuple[float, float]:
    """panoramisk 1.4 as shipped, on an event loop of its own: asyncio transport, its parser and dispatch."""
    import panoramisk

    logging.getLogger("panoramisk").setLevel(logging.WARNING)  # it logs each login at INFO
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    manager = panoramisk.Manager(
        loop=loop, host=config.host, port=config.port, username=config.username, secret=config.secret,
        ping_delay=3600, ping_interval=3600, reconnect_timeout=3600,
    )
    manager.register_event("*", lambda manager, event: counter(event))

    async def logged_in():
        await manager.connect()
        while not manager.authenticated:
            await asyncio.sleep(0.01)

    async def closed():
        manager.close()
        await asyncio.sleep(0.05)  # the transport closes its socket on the next turns of the loop

    try:
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(logged_in(), config.timeout), loop).result()
        return counter.time(send_stream)
    finally:
        asyncio.run_coroutine_threadsafe(closed(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def ours(config: AMIConfig, send_stream, counter: Counter) -> tuple[float, float]:
    connection_ = AMIConnection(config, on_event=counter)
    connection_.connect()
    connection_.login()
    elapsed = counter.time(send_stream)
    connection_.close()
    return elapsed


def with_database(config: AMIConfig, send_stream, count: int) -> tuple[float, int]:
    """The listener as pbx_listen runs it: reader thread → queue → reduce → batched upserts → pushes."""
    for extension in ("100", "101"):  # the recorded calls ring these: their pushes are part of the cost
        user, _ = get_user_model().objects.get_or_create(username=f"bench{extension}")
        Operator.objects.get_or_create(extension=extension, defaults={"user": user, "channel": f"PJSIP/{extension}"})
    before = Call.objects.count()
    listener, seen = Listener(), [0]

    def on_event(headers):
        seen[0] += 1
        listener.on_event(headers)

    connection_ = AMIConnection(config, on_event=on_event)
    connection_.connect()
    connection_.login()
    settle(seen)
    while listener.step(timeout=0):
        pass
    started = time.perf_counter()
    send_stream()
    while seen[0] < count or not listener.inbox.empty():
        listener.step(timeout=0.05)
    elapsed = time.perf_counter() - started
    connection_.close()
    return elapsed, Call.objects.count() - before


def settle(seen: list[int]) -> None:
    """Let the login's own FullyBooted event pass, then count from zero."""
    time.sleep(0.3)
    seen[0] = 0

