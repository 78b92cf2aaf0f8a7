"""Click-to-call latency through the production path: operators POST to daphne, a Celery worker sends the Originate.

The simulator runs in this process and notes when each Originate arrives (`Simulator(on_action=…)`),
so both ends of the measurement are read from one clock.
"""

import asyncio
import json
import math
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils.crypto import get_random_string

from history.models import Call
from simplecalls.celery import app
from simplecalls.env import database_url
from telephony.management.commands.bench_failover import Process, free_port, port_open, wait_until
from telephony.management.commands.bench_popup import operator_sessions
from telephony.simulator import Simulator

USERNAME, SECRET = "bench", "bench-secret"
STARTUP_SECONDS = 60
ORIGINATE_TIMEOUT = 15  # seconds a POST's Originate may take to reach the simulator before it counts as an error
ROUND_PAUSE = 1.0
TARGET = {"p99_ms_below": 200}


class Command(BaseCommand):
    help = (
        "Click-to-call latency on PostgreSQL and Redis: daphne and a Celery worker as separate processes, the PBX "
        "simulator in this one; each round, N operators POST /telephony/originate/ at once. Prints JSON: from each POST "
        "to its Originate reaching the simulator, and to its JSON answer (ms). One unmeasured round warms the processes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--operators", type=int, default=20)
        parser.add_argument("--rounds", type=int, default=5)
        parser.add_argument("--web", type=int, default=2, help="daphne processes (one per core), the operators spread over them as a load balancer would")

    def handle(self, *args, operators, rounds, web, **options):
        if connection.vendor != "postgresql" or not settings.REDIS_URL:
            raise CommandError("bench_originate runs daphne and a Celery worker as separate processes: set DATABASE_URL (PostgreSQL) and REDIS_URL")
        if not (0 < operators < 1000 and 0 < rounds < 100 and 0 < web <= 8):
            raise CommandError("--operators must be 1 to 999, --rounds 1 to 99 and --web 1 to 8")
        cookies = [cookie for _, cookie in operator_sessions(operators)]
        arrivals: dict[str, float] = {}

        def on_action(request) -> None:
            if request.action.lower() == "originate":
                arrivals.setdefault(request.get("channelid"), time.time())

        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        simulator = Simulator(host="127.0.0.1", port=0, username=USERNAME, secret=SECRET, on_action=on_action)
        asyncio.run_coroutine_threadsafe(simulator.start(), loop).result()
        simulator.engine.set_outcome("*", extension="failed")  # nobody picks up: each call ends at once
        workdir = Path(tempfile.mkdtemp(prefix="bench_originate-"))
        web_ports = [free_port() for _ in range(web)]
        # As in production: DEBUG off, with the key this process signed the operators' sessions with.
        environ = os.environ | {
            "DATABASE_URL": database_url(connection.settings_dict), "REDIS_URL": settings.REDIS_URL,
            "AMI_HOST": "127.0.0.1", "AMI_PORT": str(simulator.port), "AMI_USERNAME": USERNAME, "AMI_SECRET": SECRET,
            "DJANGO_SETTINGS_MODULE": "simplecalls.settings.base", "DEBUG": "0", "SECRET_KEY": settings.SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING",
            "ORIGINATE_PER_MINUTE": "1000", "PYTHONUNBUFFERED": "1",
        }
        processes = []
        try:
            for number, port in enumerate(web_ports):
                processes.append(Process(
                    f"daphne-{number}", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "simplecalls.asgi:application"],
                    workdir=workdir, environ=environ | {"DATABASE_POOL_SIZE": "8"},  # as the web processes run in production
                ))
            # No -Q: the worker consumes CELERY_TASK_DEFAULT_QUEUE (CHANNEL_PREFIX), the queue the web sends to.
            worker = Process("worker", [sys.executable, "-m", "celery", "-A", "simplecalls", "worker", "--loglevel=WARNING", "--concurrency", "2"], workdir=workdir, environ=environ)
            processes.append(worker)
            if not wait_until(lambda: all(port_open(port) for port in web_ports), STARTUP_SECONDS, every=0.1):
                raise CommandError(f"daphne did not start:\n{processes[0].log()[-2000:]}")
            if not wait_until(lambda: bool(app.control.ping(timeout=0.5)), STARTUP_SECONDS, every=0.1):
                raise CommandError(f"the Celery worker did not answer a ping:\n{worker.log()[-2000:]}")
            bench = Bench([f"127.0.0.1:{port}" for port in web_ports], cookies, arrivals)
            bench.round(0)  # unmeasured: the first requests and tasks pay for imports and connections
            samples = []
            for number in range(1, rounds + 1):
                time.sleep(ROUND_PAUSE)
                samples += bench.round(number)
            result = figures(samples, operators=operators, rounds=rounds) | {"web_processes": web}
            if any(result["errors"].values()):  # the processes' own words on why, before their logs go
                for process in processes:
                    self.stderr.write(f"--- {process.name} ---\n{process.log()[-3000:]}")
        finally:
            for process in processes:
                process.stop()
            asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result()
            loop.call_soon_threadsafe(loop.stop)
            Call.objects.filter(operator__username__startswith="bench-operator-").delete()
            shutil.rmtree(workdir, ignore_errors=True)
        self.stdout.write(json.dumps(result))


class Bench:
    """The operators' browsers: one round is every operator clicking at once, each a number of its own."""

    def __init__(self, addresses: list[str], cookies: list[str], arrivals: dict[str, float]):
        self.addresses = addresses
        self.cookies = cookies
        self.arrivals = arrivals
        self.run = random.randrange(100)  # numbers differ from a run a few seconds earlier: no duplicate refusals

    def round(self, number: int) -> list[dict]:
        """One sample per operator: POST start, answer time, status, and when its Originate arrived (None: never)."""
        barrier = threading.Barrier(len(self.cookies))
        with ThreadPoolExecutor(len(self.cookies)) as pool:
            posts = list(pool.map(lambda item: self.post(barrier, item[0], item[1], f"+7903{self.run:02d}{number:02d}{item[0]:03d}"), enumerate(self.cookies)))
        linkedids = dict(Call.objects.filter(pk__in=[post["call"] for post in posts if post["call"]]).values_list("pk", "linkedid"))
        for post in posts:
            post["linkedid"] = linkedids.get(post["call"])
        wait_until(lambda: all(post["linkedid"] in self.arrivals for post in posts if post["linkedid"]), ORIGINATE_TIMEOUT)
        for post in posts:
            post["arrived"] = self.arrivals.get(post["linkedid"])
        return posts

    def post(self, barrier: threading.Barrier, operator: int, cookie: str, phone: str) -> dict:
        token = get_random_string(32)
        http = HTTPConnection(self.addresses[operator % len(self.addresses)], timeout=30)
        http.connect()
        barrier.wait()
        started = time.time()
        http.request("POST", "/telephony/originate/", urlencode({"phone": phone}), {
            "Cookie": f"{cookie}; {settings.CSRF_COOKIE_NAME}={token}", "X-CSRFToken": token,
            "Content-Type": "application/x-www-form-urlencoded",
        })
        response = http.getresponse()
        body = response.read()
        answered = time.time()
        http.close()
        try:
            answer = json.loads(body)
        except ValueError:
            answer = {"status": f"HTTP {response.status}", "call": None}
        return {"started": started, "answered": answered, "status": answer.get("status"), "call": answer.get("call")}


def figures(samples: list[dict], *, operators: int, rounds: int) -> dict:
    """The JSON printed: percentiles over the samples whose Originate arrived, the others counted as errors."""
    arrived = [sample for sample in samples if sample["status"] == "dialling" and sample.get("arrived")]
    return {
        "operators": operators, "rounds": rounds, "samples": len(samples), "answers": dict(Counter(sample["status"] for sample in samples)),
        "post_to_originate_ms": percentiles([(sample["arrived"] - sample["started"]) * 1000 for sample in arrived]),
        "post_to_answer_ms": percentiles([(sample["answered"] - sample["started"]) * 1000 for sample in samples], ("p50", "p99")),
        "answer_to_originate_ms": percentiles([(sample["arrived"] - sample["answered"]) * 1000 for sample in arrived], ("p50", "p99")),
        "errors": {
            "not_dialling": sum(1 for sample in samples if sample["status"] != "dialling"),
            "originate_not_seen": sum(1 for sample in samples if sample["status"] == "dialling" and not sample.get("arrived")),
        },
        "target": TARGET,
    }


def percentiles(values: list[float], names=("p50", "p95", "p99", "max")) -> dict[str, float | None]:
    """Nearest-rank percentiles of `values` (pN: the smallest value with N % of them at or below it), to 0.1."""
    ordered = sorted(values)
    result = {}
    for name in names:
        share = 1.0 if name == "max" else int(name[1:]) / 100
        result[name] = round(ordered[max(math.ceil(share * len(ordered)) - 1, 0)], 1) if ordered else None
    return result
