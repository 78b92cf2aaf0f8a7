import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import websockets
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from history.models import Call
from simplecalls.env import database_url
from telephony.ami import AMIConfig, AMIConnection
from telephony.management.commands.bench_failover import free_port, port_open
from telephony.models import ListenerLease, Operator
from telephony.simulator import Simulator

USERNAME, SECRET = "bench", "bench-secret"


class Command(BaseCommand):
    help = (
        "Pop-up latency: N operators connected to daphne, M concurrent incoming calls through the simulator and "
        "pbx_listen; from the simulator writing each call's DialBegin to the operator's socket receiving call.ringing. JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--operators", type=int, default=50)
        parser.add_argument("--calls", type=int, default=100)

    def handle(self, *args, operators, calls, **options):
        if not settings.REDIS_URL:
            raise CommandError("bench_popup runs daphne and pbx_listen as separate processes: set REDIS_URL (and DATABASE_URL)")
        cookies = operator_sessions(operators)
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        simulator = Simulator(host="127.0.0.1", port=0, username=USERNAME, secret=SECRET)
        asyncio.run_coroutine_threadsafe(simulator.start(), loop).result()
        ami = AMIConfig("127.0.0.1", simulator.port, USERNAME, SECRET, ping_interval=0)
        web_port = free_port()
        environ = os.environ | {
            "DATABASE_URL": database_url(connection.settings_dict),
            "AMI_HOST": "127.0.0.1", "AMI_PORT": str(simulator.port), "AMI_USERNAME": USERNAME, "AMI_SECRET": SECRET,
            "DJANGO_SETTINGS_MODULE": "simplecalls.settings.base", "DEBUG": "1", "LOG_LEVEL": "WARNING",
        }
        processes = [
            subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(web_port), "simplecalls.asgi:application"], env=environ, cwd=settings.BASE_DIR),
            subprocess.Popen([sys.executable, "manage.py", "pbx_listen"], env=environ, cwd=settings.BASE_DIR),
        ]
        try:
            wait_until(lambda: port_open(web_port), "daphne")
            wait_until(lambda: any(session.authenticated for session in simulator.sessions), "pbx_listen")
            wait_until(lambda: ListenerLease.objects.filter(name=ami.address, expires_at__gt=timezone.now()).exists(), "the listener's lease")
            figures = asyncio.run(measure(f"127.0.0.1:{web_port}", cookies, ami, calls))
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=15)
            asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result()
        self.stdout.write(json.dumps({"operators": operators, "calls": calls, "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1], "channel_layer": "redis", **figures}))


def operator_sessions(count: int) -> list[tuple[str, str]]:
    """Operators at extensions 200…, each with a logged-in session cookie; their calls of earlier runs are gone."""
    Call.objects.filter(operator__username__startswith="bench-operator-").delete()
    cookies = []
    for index in range(count):
        extension = str(200 + index)
        user, _ = get_user_model().objects.get_or_create(username=f"bench-operator-{extension}")
        Operator.objects.update_or_create(extension=extension, defaults={"user": user, "channel": f"PJSIP/{extension}"})
        session = SessionStore()
        session.update({SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend", HASH_SESSION_KEY: user.get_session_auth_hash()})
        session.save()
        cookies.append((extension, f"{settings.SESSION_COOKIE_NAME}={session.session_key}"))
    return cookies


async def measure(address: str, cookies: list[tuple[str, str]], ami: AMIConfig, calls: int) -> dict:
    received: dict[str, float] = {}
    rung: dict[str, float] = {}
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

    pages = [asyncio.create_task(operator_page(cookie)) for _, cookie in cookies]
    for _ in cookies:
        await asyncio.wait_for(connected.acquire(), 30)

    def on_event(headers):
        if headers.get("Event") == "DialBegin":
            rung.setdefault(headers.get("Linkedid", ""), time.perf_counter())

    watcher = AMIConnection(ami, on_event=on_event)
    caller = AMIConnection(ami)
    for ami_connection in (watcher, caller):
        ami_connection.connect()
        ami_connection.login()
    extensions = [extension for extension, _ in cookies]

    def place_calls():
        for index in range(calls):
            caller.send_action({"Action": "SimCall", "Scenario": "inbound_answered", "Caller": f"7903{index:07d}", "Extensions": extensions[index % len(extensions)], "Ring": 8, "Talk": 1})

    started = time.perf_counter()
    await asyncio.get_running_loop().run_in_executor(None, place_calls)
    placed = time.perf_counter() - started
    deadline = time.monotonic() + 30
    while sum(linkedid in received for linkedid in rung) < calls and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for page in pages:
        page.cancel()
    watcher.close()
    caller.close()
    latencies = sorted((received[linkedid] - rung[linkedid]) * 1000 for linkedid in received if linkedid in rung)
    if not latencies:
        raise CommandError("no pop-up arrived")

    def percentile(share: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * share))], 1)

    return {
        "popups_received": len(latencies), "seconds_to_place_all_calls": round(placed, 3),
        "latency_ms": {"p50": round(statistics.median(latencies), 1), "p95": percentile(0.95), "p99": percentile(0.99), "max": round(latencies[-1], 1)},
    }


def wait_until(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise CommandError(f"{what} did not start in {timeout} s")
        time.sleep(0.1)
