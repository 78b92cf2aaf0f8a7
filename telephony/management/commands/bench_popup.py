import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import websockets
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from history.models import Call
from simplecalls.env import database_url
from telephony.heartbeat import listener_heartbeats
from telephony.listener import STAGES
from telephony.management.commands.bench_failover import free_port, port_open
from telephony.models import ListenerLease, Operator
from telephony.realtime import operator_group
from telephony.simulator import Simulator

USERNAME, SECRET = "bench", "bench-secret"
TARGET_P99_MS = 25.0
LAYER_ROUND_TRIPS = 200


class Command(BaseCommand):
    help = (
        "Pop-up latency: N operators connected to daphne, M concurrent incoming calls through the simulator and "
        "pbx_listen; from the simulator writing each call's DialBegin to the operator's socket receiving call.ringing. "
        "Beside it, in the same run, the floor: the same messages at the same moments sent by group_send straight to the "
        "operators' sockets through daphne, and a bare group_send → receive round trip on the Redis channel layer. JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--operators", type=int, default=50)
        parser.add_argument("--calls", type=int, default=100)
        parser.add_argument("--spread-ms", type=float, default=100.0, help="the calls start evenly over this time")
        parser.add_argument("--warm-up", type=int, default=20, help="short calls placed and ended before the measured ones, not counted")

    def handle(self, *args, operators, calls, spread_ms, warm_up, **options):
        if not settings.REDIS_URL:
            raise CommandError("bench_popup runs daphne and pbx_listen as separate processes: set REDIS_URL (and DATABASE_URL)")
        pages = operator_sessions(operators)
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        simulator = Simulator(host="127.0.0.1", port=0, username=USERNAME, secret=SECRET)
        asyncio.run_coroutine_threadsafe(simulator.start(), loop).result()
        ami_address = f"127.0.0.1:{simulator.port}"
        web_port = free_port()
        environ = os.environ | {
            "DATABASE_URL": database_url(connection.settings_dict), "CHANNEL_PREFIX": settings.CHANNEL_PREFIX,  # this process sends the floor's messages
            "AMI_HOST": "127.0.0.1", "AMI_PORT": str(simulator.port), "AMI_USERNAME": USERNAME, "AMI_SECRET": SECRET,
            # As in production: DEBUG off (Django would keep every statement), this process's key for the sessions it made.
            "DJANGO_SETTINGS_MODULE": "simplecalls.settings.base", "DEBUG": "0", "SECRET_KEY": settings.SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1", "DEMO": "0", "LOG_LEVEL": "WARNING",
        }
        processes = [
            subprocess.Popen([sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(web_port), "simplecalls.asgi:application"], env=environ, cwd=settings.BASE_DIR),
            subprocess.Popen([sys.executable, "manage.py", "pbx_listen"], env=environ, cwd=settings.BASE_DIR),
        ]
        try:
            wait_until(lambda: port_open(web_port), "daphne")
            wait_until(lambda: any(session.authenticated for session in simulator.sessions), "pbx_listen")
            wait_until(lambda: ListenerLease.objects.filter(name=ami_address, expires_at__gt=timezone.now()).exists(), "the listener's lease")
            clock = SchedulerClock({"listener": [processes[1].pid], "web": [processes[0].pid], "bench": [os.getpid()]})
            figures = asyncio.run(measure(f"127.0.0.1:{web_port}", pages, simulator, loop, calls, spread_ms / 1000, warm_up, clock,
                                          (ami_address, processes[1].pid)))
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=15)
            asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result()
        self.stdout.write(json.dumps({
            "operators": operators, "calls": calls, "spread_ms": spread_ms, "warm_up_calls": warm_up, "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1], "channel_layer": "redis",
            **figures,
        }))


def operator_sessions(count: int) -> list[tuple[str, int, str]]:
    """Operators at extensions 200…, each with its user id and a logged-in session cookie; their calls of earlier runs are gone."""
    Call.objects.filter(operator__username__startswith="bench-operator-").delete()
    pages = []
    for index in range(count):
        extension = str(200 + index)
        user, _ = get_user_model().objects.get_or_create(username=f"bench-operator-{extension}")
        Operator.objects.update_or_create(extension=extension, defaults={"user": user, "channel": f"PJSIP/{extension}"})
        session = SessionStore()
        session.update({SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0], HASH_SESSION_KEY: user.get_session_auth_hash()})
        session.save()
        pages.append((extension, user.pk, f"{settings.SESSION_COOKIE_NAME}={session.session_key}"))
    return pages


async def measure(address: str, pages: list[tuple[str, int, str]], simulator: Simulator, simulator_loop, calls: int, spread: float, warm_up: int,
                  clock: "SchedulerClock", listener: tuple[str, int]) -> dict:
    received: dict[str, float] = {}
    rung: dict[str, tuple[float, str]] = {}  # linkedid → when the simulator wrote its DialBegin, and the extension it rang
    sample: list[dict] = []  # one call.ringing as the product sent it: the floor's messages are copies of it
    connected = asyncio.Semaphore(0)

    async def operator_page(cookie: str) -> None:
        headers = {"Cookie": cookie, "Origin": f"http://{address}"}
        async with websockets.connect(f"ws://{address}/ws/operator/", additional_headers=headers, max_queue=None) as socket_:
            async for raw in socket_:
                message = json.loads(raw)
                if message["type"] == "calls.pending":
                    connected.release()
                elif message["type"] == "call.ringing":
                    received.setdefault(message["call"]["linkedid"], time.perf_counter())
                    sample[:] = sample or [message]

    tasks = [asyncio.create_task(operator_page(cookie)) for _, _, cookie in pages]
    for _ in pages:
        await asyncio.wait_for(connected.acquire(), 30)
    extensions = [extension for extension, _, _ in pages]
    dial_begin = simulator.pbx.dial_begin

    def timed_dial_begin(caller, dest, dial_string):
        rung.setdefault(dest.linkedid, (time.perf_counter(), dial_string))
        dial_begin(caller, dest, dial_string)

    async def place_calls(count: int, prefix: str, ring: float, talk: float):  # in the simulator's loop: no AMI client of ours competes with the listener for the CPU
        simulator.pbx.dial_begin = timed_dial_begin
        begin = time.perf_counter()
        for index in range(count):
            await asyncio.sleep(begin + spread * index / count - time.perf_counter())
            simulator.start_call("inbound_answered", caller=f"{prefix}{index:07d}", extensions=[extensions[index % len(extensions)]], ring=ring, talk=talk)

    def placed_in_simulator(*arguments):
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(place_calls(*arguments), simulator_loop))

    try:
        if warm_up:
            # As a listener and a web server that have run a while: connections open, statements prepared, caches full.
            await placed_in_simulator(warm_up, "7904", 0.2, 0.2)
            await arrived(lambda: len(rung) >= warm_up and all(linkedid in received for linkedid in rung))
            await asyncio.sleep(1.0)  # the warm-up calls have ended
            rung.clear()
        before = await listener_beat(*listener)
        started, scheduled = time.perf_counter(), clock.read()
        await placed_in_simulator(calls, "7903", 8, 1)
        await arrived(lambda: len(rung) >= calls)
        placed = time.perf_counter() - started
        await arrived(lambda: sum(linkedid in received for linkedid in rung) >= calls)
        scheduled = clock.since(scheduled, calls)
        stages = listener_stages(before, await listener_beat(*listener), calls)
        product = [(received[linkedid] - at) * 1000 for linkedid, (at, _) in rung.items() if linkedid in received]
        if not product:
            raise CommandError("no pop-up arrived")
        users = {extension: user_id for extension, user_id, _ in pages}
        socket_floor = await replay_floor(rung, users, sample[0], received)
        layer_floor = await layer_round_trips(LAYER_ROUND_TRIPS)
    finally:
        simulator.pbx.dial_begin = dial_begin
        for task in tasks:
            task.cancel()
    product_ms, socket_ms, layer_ms = percentiles(product), percentiles(socket_floor), percentiles(layer_floor)
    return {
        "popups_received": len(product), "seconds_to_place_all_calls": round(placed, 3),
        "latency_ms": product_ms,
        "floor": {
            "group_send_to_socket_ms": socket_ms,
            "channel_layer_round_trip_ms": layer_ms,
            "what": "the same call.ringing messages, at the moments the PBX's DialBegins came, sent by group_send straight to the "
                    "operators' sockets through daphne; and group_send → receive on the same Redis channel layer, one at a time",
        },
        "ratio": {
            "p50": round(product_ms["p50"] / socket_ms["p50"], 1), "p99": round(product_ms["p99"] / socket_ms["p99"], 1),
            "p99_to_channel_layer": round(product_ms["p99"] / layer_ms["p99"], 1),
        },
        "target": {"p99_ms": TARGET_P99_MS, "met": product_ms["p99"] <= TARGET_P99_MS},
        "cpu_per_call_ms": scheduled,
        "listener_ms_per_call": stages,
    }


async def replay_floor(rung: dict[str, tuple[float, str]], users: dict[str, int], sample: dict, received: dict[str, float]) -> list[float]:
    """The product's pop-ups again, each at its call's moment, by group_send from here: the cost of the way to the socket alone."""
    layer = get_channel_layer()
    await layer.group_send("bench-warm-up", {"type": "warm.up"})
    moments = sorted((at, extension) for at, extension in rung.values())
    sent: dict[str, float] = {}

    async def send(linkedid: str, user_id: int) -> None:
        message = json.loads(json.dumps(sample))
        message["call"]["linkedid"] = linkedid
        sent[linkedid] = time.perf_counter()
        await layer.group_send(operator_group(user_id), message)

    begin, sends = time.perf_counter(), []
    for index, (at, extension) in enumerate(moments):
        await asyncio.sleep(max(0.0, begin + (at - moments[0][0]) - time.perf_counter()))
        sends.append(asyncio.create_task(send(f"floor-{index}", users[extension])))
    await asyncio.gather(*sends)
    await arrived(lambda: all(linkedid in received for linkedid in sent))
    return [(received[linkedid] - at) * 1000 for linkedid, at in sent.items() if linkedid in received]


async def layer_round_trips(count: int) -> list[float]:
    """group_send → receive on the Redis channel layer, one message at a time."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("bench-floor", channel)
    times = []
    for index in range(count + 10):
        started = time.perf_counter()
        await layer.group_send("bench-floor", {"type": "call.ringing", "n": index})
        await layer.receive(channel)
        if index >= 10:  # the first few set the connections up
            times.append((time.perf_counter() - started) * 1000)
    await layer.group_discard("bench-floor", channel)
    return times


async def listener_beat(pbx: str, pid: int, timeout: float = 30) -> dict:
    """The listener's next heartbeat: what it has done since it started, and where the time went."""
    asked_at, deadline = time.time(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        for beat in listener_heartbeats(pbx):
            if beat["pid"] == pid and beat["beat"] > asked_at:
                return beat
        await asyncio.sleep(0.05)
    raise CommandError("the listener wrote no heartbeat")


def listener_stages(before: dict, after: dict, calls: int) -> dict:
    """The listener's step loop over the measured calls, from two heartbeats: wall time in each stage, per call."""
    batches = after["batches"] - before["batches"]
    return {
        **{stage: round((after["spent"][stage] - before["spent"][stage]) * 1000 / calls, 3) for stage in STAGES},
        "events_per_call": round((after["events"] - before["events"]) / calls, 1),
        "calls_per_batch": round((after["calls_written"] - before["calls_written"]) / batches, 1) if batches else None,
        "what": "the listener's step loop, from its heartbeats before and after the measured calls: the wall time of each stage "
                "(telephony/listener.py), waits for the database and for a core included, per call",
    }


async def arrived(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def percentiles(latencies: list[float]) -> dict:
    latencies = sorted(latencies)

    def at(share: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * share))], 2)

    return {"p50": round(statistics.median(latencies), 2), "p95": at(0.95), "p99": at(0.99), "max": round(latencies[-1], 2)}


class SchedulerClock:
    """Where the measured calls' CPU went, and how long each part waited for a free core, from the kernel's scheduler
    statistics (/proc/<pid>/task/<tid>/schedstat, nanoseconds: time on a CPU, time runnable but waiting for one).

    Parts: the processes given by pid, and every PostgreSQL and Redis process on the machine. A thread that ends
    meanwhile takes its time with it.
    """

    SERVERS = {"postgres": "database", "redis-server": "redis"}

    def __init__(self, pids: dict[str, list[int]]):
        self.pids = pids

    def parts(self) -> dict[str, list[int]]:
        parts = {name: list(pids) for name, pids in self.pids.items()} | {name: [] for name in self.SERVERS.values()}
        for entry in Path("/proc").iterdir():
            try:
                name = self.SERVERS.get((entry / "comm").read_text().strip()) if entry.name.isdigit() else None
            except OSError:
                continue
            if name:
                parts[name].append(int(entry.name))
        return parts

    def read(self) -> dict[str, tuple[int, int]]:
        """Each part's threads: (nanoseconds on a CPU, nanoseconds waiting for one) so far, by "pid/tid"."""
        threads = {}
        for name, pids in self.parts().items():
            for pid in pids:
                for task in Path(f"/proc/{pid}/task").glob("*"):
                    try:
                        running, waiting = map(int, (task / "schedstat").read_text().split()[:2])
                    except (OSError, ValueError):
                        continue
                    threads[f"{name}/{pid}/{task.name}"] = (running, waiting)
        return threads

    def since(self, before: dict[str, tuple[int, int]], calls: int) -> dict:
        """Milliseconds a call, by part, from `before` to now; a thread started meanwhile counts from zero."""
        figures = {name: {"cpu": 0.0, "waiting_for_a_core": 0.0} for name in [*self.pids, *self.SERVERS.values()]}
        for thread, (running, waiting) in self.read().items():
            was_running, was_waiting = before.get(thread, (0, 0))
            part = figures[thread.split("/", 1)[0]]
            part["cpu"] += (running - was_running) / 1e6 / calls
            part["waiting_for_a_core"] += (waiting - was_waiting) / 1e6 / calls
        figures = {name: {key: round(value, 3) for key, value in part.items()} for name, part in figures.items()}
        figures["total_cpu"] = round(sum(part["cpu"] for part in figures.values()), 3)
        figures["cores"] = os.cpu_count()
        figures["what"] = ("from the first measured call to the last pop-up, per call: each part's time on a CPU and its threads' "
                           "time ready to run but waiting for a core (the kernel's scheduler statistics); bench is this process, the "
                           "simulator and the operators' pages")
        return figures


def wait_until(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise CommandError(f"{what} did not start in {timeout} s")
        time.sleep(0.1)
