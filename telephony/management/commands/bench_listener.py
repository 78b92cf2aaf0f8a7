import asyncio
import json
import re
import threading
import time

import asterisk.manager
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
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
    help = "Events/s of stock pyst2 vs telephony.ami on one recorded stream (parse + reduce), and through the whole listener with DB writes. JSON."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=50_000)

    def handle(self, *args, events, **options):
        stream, count = build_stream(events)
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        simulator = Simulator(host="127.0.0.1", port=0, username=USERNAME, secret=SECRET)
        asyncio.run_coroutine_threadsafe(simulator.start(), loop).result()
        config = AMIConfig("127.0.0.1", simulator.port, USERNAME, SECRET, timeout=60, ping_interval=0)

        def send_stream():
            loop.call_soon_threadsafe(simulator.inject_raw, stream)

        figures = {"events": count, "stream_bytes": len(stream), "database": connection.vendor}
        figures["stock_pyst2_events_per_s"] = round(count / stock_pyst2(config, send_stream, count))
        figures["telephony_ami_events_per_s"] = round(count / ours(config, send_stream, count))
        seconds, calls = with_database(config, send_stream, count)
        figures["listener_with_db_events_per_s"] = round(count / seconds)
        figures["listener_calls_written"] = calls
        asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result()
        self.stdout.write(json.dumps(figures))


class Reducer:
    """Feeds every event to a CallTracker and says when `count` have arrived."""

    def __init__(self, count: int):
        self.tracker, self.count, self.seen, self.done = CallTracker(), count, [0], threading.Event()

    def __call__(self, headers) -> None:
        self.tracker.apply(headers, timezone.now())
        self.seen[0] += 1
        if self.seen[0] >= self.count:
            self.done.set()

    def time(self, send_stream) -> float:
        settle(self.seen)
        started = time.perf_counter()
        send_stream()
        self.done.wait(600)
        return time.perf_counter() - started


def stock_pyst2(config: AMIConfig, send_stream, count: int) -> float:
    """pyst2 0.5.1 as shipped: unbuffered socket, its own threads and dispatch."""
    reducer = Reducer(count)
    manager = asterisk.manager.Manager()
    manager.connect(config.host, config.port)
    manager.login(config.username, config.secret)
    manager.register_event("*", lambda event, manager: reducer(event.headers))
    elapsed = reducer.time(send_stream)
    manager.close()
    return elapsed


def ours(config: AMIConfig, send_stream, count: int) -> float:
    reducer = Reducer(count)
    connection_ = AMIConnection(config, on_event=reducer)
    connection_.connect()
    connection_.login()
    elapsed = reducer.time(send_stream)
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

