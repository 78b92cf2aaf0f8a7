import asyncio
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
from io import StringIO
from urllib.parse import urlencode

import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count
from django.db import connection

from clients.demo import mobile_digits
from clients.management.commands.bench_lookup import NUMBERS_FROM, PREFIX
from clients.management.commands.bench_lookup import Command as BenchLookup
from clients.models import Client
from clients.services import phone_condition, phone_params
from simplecalls.env import database_url
from telephony.management.commands.bench_failover import free_port, port_open
from telephony.models import Operator, RouteDecision, RouteFallback

TOKEN = secrets.token_urlsafe(24)
MANAGERS = 20  # bench-manager-300 … 319 at extensions 300 …; the even ones marked available
TARGET_P99_MS, AIM_P99_MS = 20, 5


class Command(BaseCommand):
    help = (
        "Smart transfer's endpoints under load: N clients on PostgreSQL (bench_lookup's, kept between runs), real daphnes "
        "(one per core, as production runs them, the requests spread across them in turn as nginx does), "
        "C concurrent requests to /telephony/dialplan/route and /callerid, and refused ones (403: daphne and the token check alone); "
        "beside the floor, the same SELECTs through raw psycopg at the same concurrency; each also one at a time. p50/p99 ms, "
        "and the daphnes' CPU per request, JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=1_000_000)
        parser.add_argument("--requests", type=int, default=5000, help="per endpoint")
        parser.add_argument("--concurrency", type=int, default=50)
        parser.add_argument("--pool", type=int, default=8, help="each daphne's DATABASE_POOL_SIZE")
        parser.add_argument("--web", type=int, default=os.cpu_count() or 1, help="daphne processes (default: one per core)")

    def handle(self, *args, clients, requests, concurrency, pool, web, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_dialplan measures PostgreSQL: set DATABASE_URL to a scratch database")
        load_before = list(os.getloadavg())  # 1, 5 and 15 minutes: other work on the machine shifts every figure
        have = Client.objects.filter(card_number__startswith=PREFIX).count()
        if have < clients:
            BenchLookup(stdout=StringIO(), stderr=self.stderr).fill(have, clients)
        numbers = caller_numbers(clients, requests)
        managed = give_managers(numbers)
        if not RouteFallback.objects.filter(is_active=True).exists():
            RouteFallback.objects.create(position=900, extension="699", description="bench_dialplan")
        environ = os.environ | {
            "DATABASE_URL": database_url(connection.settings_dict), "DATABASE_POOL_SIZE": str(pool),
            "DIALPLAN_TOKEN": TOKEN, "DIALPLAN_ALLOWED_IPS": "", "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(32),
            "ALLOWED_HOSTS": "127.0.0.1", "DJANGO_SETTINGS_MODULE": "simplecalls.settings.base", "LOG_LEVEL": "ERROR",
        }
        ports, daphnes = [], []
        try:
            for _ in range(max(web, 1)):
                ports.append(free_port())
                daphnes.append(subprocess.Popen(
                    [sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(ports[-1]), "simplecalls.asgi:application"],
                    env=environ, cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                ))
            deadline = time.monotonic() + 30
            while not all(port_open(port) for port in ports):
                if any(daphne.poll() is not None for daphne in daphnes) or time.monotonic() > deadline:
                    raise CommandError("daphne did not start")
                time.sleep(0.1)
            product = asyncio.run(measure_http(ports, numbers, concurrency, [daphne.pid for daphne in daphnes]))
        finally:
            for daphne in daphnes:
                daphne.terminate()
            for daphne in daphnes:
                daphne.wait(timeout=15)
        floor = asyncio.run(measure_psycopg(numbers, concurrency))
        decisions = RouteDecision.objects.filter(linkedid__startswith="bench-")
        reasons = dict(decisions.order_by().values_list("reason").annotate(Count("pk")))
        decisions.delete()
        ratio = {f"{name}_p99": round(product[name]["p99"] / floor[name]["p99"], 1) for name in ("route", "callerid")}
        ratio |= {f"{name}_p50_one_at_a_time": round(product["one_at_a_time"][name]["p50"] / floor["one_at_a_time"][name]["p50"], 1) for name in ("route", "callerid")}
        worst = max(product["route"]["p99"], product["callerid"]["p99"])
        self.stdout.write(json.dumps({
            "clients": Client.objects.count(), "requests_per_endpoint": len(numbers), "concurrency": concurrency, "web_processes": len(ports),
            "database_pool": pool, "cores": os.cpu_count(), "load_before": load_before, "load_after": list(os.getloadavg()),
            "database": "postgresql", "callers_known": sum(1 for _, known in numbers if known), "callers_managed": managed,
            "route_reasons": reasons, "product": product, "floor": floor, "ratio": ratio,
            "target": {"p99_ms": TARGET_P99_MS, "aim_p99_ms": AIM_P99_MS, "met": worst < TARGET_P99_MS},
        }))


def caller_numbers(clients: int, count: int) -> list[tuple[str, bool]]:
    """Caller IDs as a trunk sends them (8…), about half of them nobody's, with whether a bench client has it."""
    rng = random.Random(12)
    numbers = []
    for _ in range(count):
        index = rng.randrange(clients * 2)
        numbers.append((f"8{mobile_digits(NUMBERS_FROM + index)}", index < clients))
    return numbers


def give_managers(numbers: list[tuple[str, bool]]) -> int:
    """Two in three of the known callers get a manager (an operator; half of them marked available), the rest none."""
    users = []
    for index in range(MANAGERS):
        extension = str(300 + index)
        user, _ = get_user_model().objects.get_or_create(username=f"bench-manager-{extension}")
        Operator.objects.update_or_create(user=user, defaults={"extension": extension, "channel": f"PJSIP/{extension}", "available": index % 2 == 0})
        users.append(user)
    phones = sorted({f"+7{number[1:]}" for number, known in numbers if known})
    for offset, user in enumerate(users):
        chosen = [phone for position, phone in enumerate(phones) if position % (MANAGERS * 3 // 2) == offset]
        Client.objects.filter(phone_mobile__in=chosen).exclude(manager=user).update(manager=user)
    return Client.objects.filter(phone_mobile__in=phones, manager__isnull=False).count()


def percentiles(timings: list[float], seconds: float) -> dict:
    timings = sorted(timings)

    def at(share: float) -> float:
        return round(timings[min(len(timings) - 1, int(len(timings) * share))], 2)

    return {"p50": round(statistics.median(timings), 2), "p95": at(0.95), "p99": at(0.99), "max": round(timings[-1], 2),
            "per_second": round(len(timings) / seconds)}


async def closed_loop(count: int, concurrency: int, one) -> tuple[list[float], list[str], float]:
    """`concurrency` workers, each starting its next request as soon as its last one is answered, until `count` are done."""
    timings, answers, queue = [], [], iter(range(count))

    async def worker():
        for index in queue:
            started = time.perf_counter()
            answers.append(await one(index))
            timings.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return timings, answers, time.perf_counter() - started


async def http_get(port: int, target: str, status: bytes = b"200") -> str:
    """One GET on a fresh connection, as a dialplan's CURL() on a new call's thread makes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    if head[9:12] != status:
        raise CommandError(f"the endpoint answered {head[:60]!r}")
    return body.decode()


async def measure_http(ports: list[int], numbers: list[tuple[str, bool]], concurrency: int, pids: list[int]) -> dict:
    def port(index):  # nginx's round robin over the upstream's daphnes
        return ports[index % len(ports)]

    def route(index):
        query = urlencode({"number": numbers[index][0], "did": "74951234500", "call": f"bench-{index}", "token": TOKEN})
        return http_get(port(index), f"/telephony/dialplan/route?{query}")

    def callerid(index):
        return http_get(port(index), "/telephony/dialplan/callerid?" + urlencode({"number": numbers[index][0], "token": TOKEN}))

    def refused(index):  # the same request and path, answered before any database work: what daphne and the check cost
        return http_get(port(index), "/telephony/dialplan/route?" + urlencode({"number": numbers[index][0], "token": "wrong"}), b"403")

    await closed_loop(min(200, len(numbers)), concurrency, route)  # the pool's connections opened, the code warm
    return await measure(numbers, concurrency, {"route": route, "callerid": callerid, "refused_403": refused}, pids)


async def measure(numbers: list[tuple[str, bool]], concurrency: int, requests: dict, pids: list[int] = ()) -> dict:
    """Each kind of request at `concurrency`, then one at a time (how long one takes when nothing waits).

    With `pids` (the daphnes), also the CPU time they spent per request: in a closed loop every request
    queues behind the others' CPU, so a p50 near `concurrency` × (all processes' CPU per request) / cores.
    """
    figures = {}
    for name, one in requests.items():
        cpu = cpu_seconds(pids)
        timings, answers, seconds = await closed_loop(len(numbers), concurrency, one)
        figures[name] = percentiles(timings, seconds) | {"answered": sum(1 for answer in answers if answer)}
        if pids:
            figures[name]["daphne_cpu_ms_per_request"] = round((cpu_seconds(pids) - cpu) * 1000 / len(timings), 3)
    alone = min(500, len(numbers))
    figures["one_at_a_time"] = {}
    for name, one in requests.items():
        timings, _, seconds = await closed_loop(alone, 1, one)
        figures["one_at_a_time"][name] = {key: value for key, value in percentiles(timings, seconds).items() if key in ("p50", "p99")}
    return figures


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used (Linux's /proc)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15 of proc(5)
    return total / os.sysconf("SC_CLK_TCK")


async def measure_psycopg(numbers: list[tuple[str, bool]], concurrency: int) -> dict:
    """The same SELECTs the endpoints run, on `concurrency` open connections: what the database alone costs."""
    e164s = [f"+7{number[1:]}" for number, _ in numbers]
    queries = {
        "route": Client.objects.filter(phone_condition("+70000000000")).order_by()
        .values_list("pk", "manager_id", "manager__is_active", "manager__operator__extension", "manager__operator__available")[:10],
        "callerid": Client.objects.filter(phone_condition("+70000000000")).order_by().values_list("last_name", "first_name", "middle_name")[:2],
    }
    url = database_url(connection.settings_dict)
    pool = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(concurrency)]
    idle = asyncio.Queue()
    for conn in pool:
        idle.put_nowait(conn)
    requests = {}
    for name, queryset in queries.items():
        sql, params = queryset.query.sql_with_params()  # the number's parameters alone
        if len(params) != len(phone_params({"+70000000000"})):
            raise CommandError(f"the {name} statement binds more than the number: {params}")

        async def one(index, sql=sql):
            conn = await idle.get()
            try:
                cursor = await conn.execute(sql, phone_params({e164s[index]}))
                rows = await cursor.fetchall()
            finally:
                idle.put_nowait(conn)
            return "found" if rows else ""

        requests[name] = one
    try:
        await closed_loop(min(200, len(numbers)), concurrency, requests["route"])
        return await measure(numbers, concurrency, requests)
    finally:
        for conn in pool:
            await conn.close()
