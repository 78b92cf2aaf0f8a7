"""Full-stack load: every process as production runs it, hundreds of operators' pages, calls arriving for a minute.

The processes are those of deploy/systemd: `--web` daphne processes, a Celery worker, beat and two `pbx_listen`
(leader and standby), on PostgreSQL and Redis with the production settings. The PBX simulator is a process of
its own too (`_bench_load_pbx.py`), as Asterisk is: on a 2-core host, a simulator inside this process would share
one interpreter lock with the 500 sockets whose arrival times are the measurement, and delay them.

This process plays the operators' browsers, as static/js/operator.js does: a socket on /ws/operator/ per
operator, the call's form loaded on each pop-up (GET /telephony/calls/<id>/) and closed when the call ends
(POST …/close/). The pop-up's latency runs from the PBX stamping each DialBegin to the operator's socket receiving
call.ringing, both read from the host's clock.
"""

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import websockets
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models.functions import Now
from django.utils.crypto import get_random_string

from history.models import Call
from simplecalls.celery import app
from simplecalls.env import database_url
from telephony.management.commands import _bench_load_pbx as pbx
from telephony.management.commands.bench_failover import Process, free_port, port_open, wait_until
from telephony.management.commands.bench_originate import percentiles
from telephony.models import ListenerLease, Operator

USERNAME_PREFIX = "bench-load-"
FIRST_EXTENSION = 6000
STARTUP_SECONDS = 90
CONNECT_SECONDS = 120
CONNECTING_AT_ONCE = 50  # pages opening their sockets at the same moment, as after a morning's logins, not all in one instant
ERROR_KINDS = ("not_connected", "socket_drops", "missing_popups", "misdelivered_popups", "http_timeout", "http_failed")


class Command(BaseCommand):
    help = (
        "Full-stack load on PostgreSQL and Redis: daphne (--web processes), a Celery worker, beat, two pbx_listen and "
        "the PBX simulator as separate processes; --operators pages each with its socket open, --rate incoming calls a "
        "second for --seconds, spread over the operators. Prints JSON: pop-up p50/p95/p99/max, calls placed, pop-ups, "
        "the form requests' p50/p95/p99/max, errors by kind, calls lost, each process's RSS at start and end, the load "
        "average. Removes the operators, sessions and calls it made. Progress goes to stderr."
    )

    def add_arguments(self, parser):
        parser.add_argument("--operators", type=int, default=500)
        parser.add_argument("--rate", type=float, default=50.0, help="incoming calls started per second (default 50)")
        parser.add_argument("--seconds", type=float, default=60.0, help="for how long calls are started (default 60)")
        parser.add_argument("--web", type=int, default=2, help="daphne processes (one per core), the operators spread over them")
        parser.add_argument("--settle", type=float, default=60.0, help="seconds after the last call ends for the call log and the pages to catch up")
        parser.add_argument("--forms", action=argparse.BooleanOptionalAction, default=True,
                            help="each page loads the call's form on its pop-up and closes it when the call ends, as operator.js does (default); --no-forms: the sockets only")

    def handle(self, *args, operators, rate, seconds, web, settle, forms, **options):
        if connection.vendor != "postgresql" or not settings.REDIS_URL:
            raise CommandError("bench_load runs the whole stack as separate processes: set DATABASE_URL (PostgreSQL) and REDIS_URL")
        if not (0 < operators <= 2000 and 0 < rate <= 500 and 0 < seconds <= 600 and 0 < web <= 8 and 0 <= settle <= 600):
            raise CommandError("--operators must be 1 to 2000, --rate up to 500, --seconds up to 600, --web 1 to 8, --settle up to 600")
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket per page here, and the children inherit it
        last_id_before = Call.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        pages = operator_pages(operators, web_ports=[free_port() for _ in range(web)], forms=forms)
        workdir = Path(tempfile.mkdtemp(prefix="bench_load-"))
        stack = Stack(workdir, [page.extension for page in pages], sorted({page.port for page in pages}), rate, seconds)
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        result = None
        try:
            self.progress(f"starting the stack (logs in {workdir})")
            stack.start()
            result = self.measure(stack, pages, loop, settle) | {"parameters": {
                "operators": operators, "rate": rate, "seconds": seconds, "web_processes": web, "settle_s": settle, "forms": forms,
                "ring_s": pbx.RING_SECONDS, "talk_s": list(pbx.TALK_SECONDS), "missed": f"every 5th call, the caller giving up after {pbx.MISSED_RING_SECONDS:g} s",
                "database": "postgresql", "channel_layer": "redis", "pbx": "simulator, a process of its own",
            }}
            if result["errors"] or result["calls_lost"]:
                self.stderr.write(stack.logs())
        finally:
            closing = asyncio.run_coroutine_threadsafe(close_pages(pages), loop)
            with contextlib.suppress(concurrent.futures.TimeoutError):  # whatever the pages do, the rest is cleaned up
                closing.result(timeout=60)
            loop.call_soon_threadsafe(loop.stop)
            stack.stop()
            Call.objects.filter(pk__gt=last_id_before).delete()
            Session.objects.filter(session_key__in=[page.session_key for page in pages]).delete()
            get_user_model().objects.filter(username__startswith=USERNAME_PREFIX).delete()
            ListenerLease.objects.filter(name=stack.ami_address).delete()
            if result and not result["errors"] and not result["calls_lost"]:
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                self.progress(f"the processes' logs are kept in {workdir}")
        self.stdout.write(json.dumps(result))

    def measure(self, stack: "Stack", pages: list["Page"], loop, settle: float) -> dict:
        self.progress(f"opening {len(pages)} operator pages")
        gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
        for page in pages:
            asyncio.run_coroutine_threadsafe(page.run(gate), loop)
        wait_until(lambda: all(page.connected for page in pages), CONNECT_SECONDS, every=0.2)
        errors = Counter({kind: 0 for kind in ERROR_KINDS})
        errors["not_connected"] = sum(1 for page in pages if not page.connected)
        usage_start, host_start, load_start = stack.usage(), host_cpu(), os.getloadavg()

        self.progress("placing calls")
        stack.pbx.signal(signal.SIGUSR1)
        if not wait_until(lambda: stack.played.exists() or not stack.pbx.alive(), stack.seconds + 120, every=0.5) or not stack.played.exists():
            raise CommandError(f"the PBX did not finish its calls:\n{stack.logs()}")
        played = json.loads(stack.played.read_text())
        placed = {call["linkedid"]: call for call in played["calls"]}
        self.progress(f"{len(placed)} calls placed in {played['placing_s']} s; waiting for the call log and the pages")
        pages_by_extension = {page.extension: page for page in pages}

        def settled() -> bool:
            return not lost(placed) and all(linkedid in pages_by_extension[call["extension"]].popups for linkedid, call in placed.items())

        wait_until(settled, settle, every=1.0)
        wait_until(lambda: not any(page.requests for page in pages), 30, every=0.2)  # the forms still loading or closing
        usage_end, host_end, load_end = stack.usage(), host_cpu(), os.getloadavg()

        latencies = []
        for linkedid, call in placed.items():
            received = pages_by_extension[call["extension"]].popups.get(linkedid)
            if received is None:
                errors["missing_popups"] += 1
            elif call["dial_begin"] is not None:
                latencies.append((received - call["dial_begin"]) * 1000)
        for page in pages:
            errors["socket_drops"] += page.drops
            errors["misdelivered_popups"] += sum(1 for linkedid in page.popups if placed.get(linkedid, {}).get("extension") != page.extension)
            errors.update(page.http_errors)
        missing = lost(placed)
        return {
            "popup_latency_ms": percentiles(latencies),
            "calls_placed": len(placed), "popups_received": len(latencies), "placing_s": played["placing_s"],
            "http_requests_ok": sum(page.http_ok for page in pages),
            "form_requests_ms": percentiles([took for page in pages for took in page.http_ms]),
            "errors": sum(errors.values()), "errors_by_kind": dict(errors),
            "calls_lost": sum(missing.values()), "calls_lost_by_kind": {kind: missing.get(kind, 0) for kind in ("no_row", "not_ended", "wrong_disposition")},
            "rss_mb": {name: {"start": usage_start.get(name, (None,))[0], "end": usage_end.get(name, (None,))[0]} for name in {**usage_start, **usage_end} if not name.startswith("postgresql-")},
            "cpu_s": cpu_during(usage_start, usage_end),
            "host_cpu_busy_pct": round(100 * (host_end[0] - host_start[0]) / max(host_end[1] - host_start[1], 1), 1),
            "load_average": {"start": [round(value, 2) for value in load_start], "end": [round(value, 2) for value in load_end]},
        }

    def progress(self, line: str) -> None:
        self.stderr.write(line)


def cpu_during(start: dict, end: dict) -> dict[str, float]:
    """CPU seconds each process spent between the two readings; PostgreSQL's sessions alive at both summed as one."""
    spent = {name: end[name][1] - start[name][1] for name in end if name in start}
    database = sum(seconds for name, seconds in spent.items() if name.startswith("postgresql-"))
    return {name: round(seconds, 1) for name, seconds in spent.items() if not name.startswith("postgresql-")} | {"postgresql (this database)": round(database, 1)}


def lost(placed: dict[str, dict]) -> Counter:
    """The placed calls the call log does not have as ended with the disposition the PBX played, by kind."""
    rows = {linkedid: (disposition, ended_at) for linkedid, disposition, ended_at in Call.objects.filter(linkedid__in=list(placed)).values_list("linkedid", "disposition", "ended_at")}
    missing = Counter()
    for linkedid, call in placed.items():
        if linkedid not in rows:
            missing["no_row"] += 1
        elif rows[linkedid][1] is None:
            missing["not_ended"] += 1
        elif rows[linkedid][0] != call["disposition"]:
            missing["wrong_disposition"] += 1
    return missing


def operator_pages(count: int, web_ports: list[int], forms: bool) -> list["Page"]:
    """`count` operators at extensions 6000…, each logged in with a session of its own, spread over the web processes."""
    get_user_model().objects.filter(username__startswith=USERNAME_PREFIX).delete()  # a run killed before its cleanup
    extensions = [str(FIRST_EXTENSION + index) for index in range(count)]
    taken = list(Operator.objects.filter(extension__in=extensions).values_list("extension", flat=True)[:5])
    if taken:
        raise CommandError(f"extensions {FIRST_EXTENSION}–{FIRST_EXTENSION + count - 1} must be free for the bench's operators; taken: {', '.join(taken)}")
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"{USERNAME_PREFIX}{extension}", password="!") for extension in extensions])
    Operator.objects.bulk_create([Operator(user=user, extension=extension, channel=f"PJSIP/{extension}") for user, extension in zip(users, extensions)])
    pages = []
    for index, (user, extension) in enumerate(zip(users, extensions)):
        session = SessionStore()
        session.update({SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0], HASH_SESSION_KEY: user.get_session_auth_hash()})
        session.save()
        pages.append(Page(web_ports[index % len(web_ports)], extension, session.session_key, forms))
    return pages


async def close_pages(pages: list["Page"]) -> None:
    """Every tab closed: the sockets closed cleanly, then whatever was left of the pages' work cancelled."""
    for page in pages:
        page.stopping = True
    await asyncio.gather(*(page.socket.close() for page in pages if page.socket is not None), return_exceptions=True)
    rest = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)


class Page:
    """One operator's browser tab, as static/js/operator.js behaves: the live socket, the call's form on each pop-up."""

    def __init__(self, port: int, extension: str, session_key: str, forms: bool):
        self.port = port
        self.forms = forms
        self.extension = extension
        self.session_key = session_key
        self.csrf = get_random_string(32)
        self.cookie = f"{settings.SESSION_COOKIE_NAME}={session_key}; {settings.CSRF_COOKIE_NAME}={self.csrf}"
        self.connected = False
        self.socket = None
        self.stopping = False
        self.drops = 0
        self.popups: dict[str, float] = {}  # linkedid → when call.ringing arrived
        self.requests: set[asyncio.Task] = set()
        self.http_ok = 0
        self.http_ms: list[float] = []  # each answered request's time, from connecting to the status line
        self.http_errors: Counter = Counter()

    async def run(self, gate: asyncio.Semaphore) -> None:
        address = f"127.0.0.1:{self.port}"
        headers = {"Cookie": self.cookie, "Origin": f"http://{address}"}
        while not self.stopping:
            opened = False
            try:
                async with gate:
                    socket_ = await websockets.connect(f"ws://{address}/ws/operator/", additional_headers=headers, max_queue=None, open_timeout=60)
                async with socket_:
                    self.socket, opened = socket_, True
                    async for raw in socket_:
                        self.handle(json.loads(raw))
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
                pass
            if not self.stopping:  # the page reconnects, as the browser's would
                self.drops += opened
                await asyncio.sleep(0.5)

    def handle(self, message: dict) -> None:
        kind, call = message["type"], message.get("call") or {}
        if kind == "calls.pending":
            self.connected = True
        elif kind == "call.ringing":
            self.popups.setdefault(call["linkedid"], time.time())
            if self.forms:
                self.request("GET", f"/telephony/calls/{call['id']}/")
        elif kind == "call.ended" and self.forms:
            self.request("POST", f"/telephony/calls/{call['id']}/close/")

    def request(self, method: str, path: str) -> None:
        task = asyncio.get_running_loop().create_task(self.http(method, path))
        self.requests.add(task)
        task.add_done_callback(self.requests.discard)

    async def http(self, method: str, path: str) -> None:
        """One request on a connection of its own; a status over 299 or no answer is an error of its kind."""
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nCookie: {self.cookie}\r\nConnection: close\r\n"
        if method == "POST":
            head += f"X-CSRFToken: {self.csrf}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n"
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), 30)
            try:
                writer.write((head + "\r\n").encode())
                status_line = await asyncio.wait_for(reader.readline(), 30)
                self.http_ms.append((time.perf_counter() - started) * 1000)
                await asyncio.wait_for(reader.read(), 30)
            finally:
                writer.close()
            status = int(status_line.split()[1])
        except asyncio.TimeoutError:
            self.http_errors["http_timeout"] += 1
            return
        except (OSError, ValueError, IndexError):
            self.http_errors["http_failed"] += 1
            return
        if status < 300:
            self.http_ok += 1
        else:
            self.http_errors[f"http_{status}"] += 1


class Stack:
    """The production processes on this database and Redis, and the PBX, each a process of its own."""

    def __init__(self, workdir: Path, extensions: list[str], web_ports: list[int], rate: float, seconds: float):
        self.workdir = workdir
        self.extensions = extensions
        self.web_ports = web_ports
        self.rate, self.seconds = rate, seconds
        self.ami_port = free_port()
        self.ami_address = f"127.0.0.1:{self.ami_port}"
        self.played = workdir / "played.json"
        self.processes: list[Process] = []
        self.pbx: Process | None = None
        self.listeners: list[Process] = []

    def start(self) -> None:
        cdr_csv = self.workdir / "Master.csv"
        # As in production: DEBUG off, INFO logs, this process's key (it signed the pages' sessions) and channel prefix.
        environ = os.environ | {
            "DATABASE_URL": database_url(connection.settings_dict), "REDIS_URL": settings.REDIS_URL, "CHANNEL_PREFIX": settings.CHANNEL_PREFIX,
            "AMI_HOST": "127.0.0.1", "AMI_PORT": str(self.ami_port), "AMI_USERNAME": pbx.USERNAME, "AMI_SECRET": pbx.SECRET,
            "DJANGO_SETTINGS_MODULE": "simplecalls.settings.base", "DEBUG": "0", "SECRET_KEY": settings.SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1", "DEMO": "0", "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", "CDR_CSV": str(cdr_csv),
        }
        self.pbx = self.spawn("pbx", [
            "-m", "telephony.management.commands._bench_load_pbx", "--port", str(self.ami_port), "--cdr-csv", str(cdr_csv),
            "--extensions", ",".join(self.extensions), "--rate", str(self.rate), "--seconds", str(self.seconds), "--out", str(self.played),
        ], environ)
        if not wait_until(lambda: port_open(self.ami_port) or not self.pbx.alive(), STARTUP_SECONDS, every=0.1) or not self.pbx.alive():
            raise CommandError(f"the PBX did not start:\n{self.pbx.log()[-2000:]}")
        for number, port in enumerate(self.web_ports, 1):  # as simplecalls-web@.service runs them
            self.spawn(f"daphne-{number}", ["-m", "daphne", "--proxy-headers", "-v", "0", "-b", "127.0.0.1", "-p", str(port), "simplecalls.asgi:application"], environ | {"DATABASE_POOL_SIZE": "8"})
        self.spawn("worker", ["-m", "celery", "-A", "simplecalls", "worker", "--loglevel", "INFO"], environ)
        self.spawn("beat", ["-m", "celery", "-A", "simplecalls", "beat", "--loglevel", "INFO", "--schedule", str(self.workdir / "celerybeat-schedule")], environ)
        self.listeners = [self.spawn(f"listener-{number}", ["manage.py", "pbx_listen"], environ) for number in (1, 2)]
        checks = [
            ("daphne", lambda: all(port_open(port) for port in self.web_ports)),
            ("the Celery worker", lambda: bool(app.control.ping(timeout=0.5))),
            ("the listeners", lambda: all("connected to" in listener.log() for listener in self.listeners)),
            ("the listener's lease", lambda: ListenerLease.objects.filter(name=self.ami_address, expires_at__gt=Now()).exists()),
        ]
        for what, check in checks:
            if not wait_until(lambda: check() or not all(process.alive() for process in self.processes), STARTUP_SECONDS, every=0.2) or not all(process.alive() for process in self.processes):
                raise CommandError(f"{what} did not start:\n{self.logs()}")

    def spawn(self, name: str, args: list[str], environ: dict) -> Process:
        process = Process(name, [sys.executable, *args], workdir=self.workdir, environ=environ)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for listener in self.listeners:  # both at once: a standby left alone would take over and repair
            listener.terminate()
        for process in self.processes:
            process.stop()

    def usage(self) -> dict[str, tuple[float | None, float]]:
        """(resident memory in MB (VmRSS), CPU seconds so far) of every process, the worker's pool children included, and this one."""
        named = [(process.name, process.pid) for process in self.processes] + [("bench (the pages)", os.getpid())]
        worker = next(process for process in self.processes if process.name == "worker")
        named += [(f"worker-child-{number}", pid) for number, pid in enumerate(children(worker.pid), 1)]
        usage = {name: (rss_mb(pid), cpu_seconds(pid)) for name, pid in named}
        with connection.cursor() as cursor:  # PostgreSQL's sessions on this database: their CPU, not their memory (mostly shared buffers)
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            usage |= {f"postgresql-{pid}": (None, cpu_seconds(pid)) for pid, in cursor.fetchall()}
        return usage

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(f"--- {process.name} (pid {process.pid}) ---\n{process.log()[-tail:]}" for process in self.processes)


def children(pid: int) -> list[int]:
    try:
        return sorted(int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (/proc/<pid>/stat), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def host_cpu() -> tuple[int, int]:
    """The host's (busy, total) CPU ticks so far, every core, from /proc/stat: busy is all but idle and iowait."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None
