"""Failover under load: the PBX simulator and two `pbx_listen` as separate processes, the writing one killed mid-load.

`Rig` (the processes and their plumbing) is also what tests/telephony/test_faults.py drives.
"""

import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models.functions import Now

from history.models import Call
from simplecalls.env import database_url
from telephony.ami import AMIConfig, AMIConnection
from telephony.models import ListenerLease

USERNAME, SECRET = "bench", "bench-secret"
LEASE_SECONDS = 3
LINKEDID_COLUMN = 19  # cdr_csv's 20th field (telephony/simulator/cdr.py)
STARTUP_SECONDS = 60
SETTLE_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def wait_until(condition, timeout: float, every: float = 0.05) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


class Process:
    """A child process, its output in `<workdir>/<name>.log`."""

    def __init__(self, name: str, args: list[str], *, workdir: Path, environ: dict[str, str]):
        self.name = name
        self.log_path = workdir / f"{name}.log"
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(args, env=environ, cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        if self.alive():
            self.popen.send_signal(signum)

    def terminate(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGCONT)  # a stopped process would keep SIGTERM pending
            self.popen.terminate()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not ended within `timeout`."""
        self.terminate()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout)


class Rig:
    """The PBX simulator and `listeners` copies of `pbx_listen`, each a process of its own, on this database.

    `environ` overrides the listeners' environment (LISTENER_LEASE_SECONDS, CDR_CSV, REDIS_URL…).
    """

    def __init__(self, workdir: Path, *, listeners: int = 2, environ: dict[str, str] | None = None):
        self.workdir = Path(workdir)
        self.cdr_csv = self.workdir / "Master.csv"
        self.port = free_port()
        self.config = AMIConfig("127.0.0.1", self.port, USERNAME, SECRET, timeout=10, ping_interval=0)
        self.listener_count = listeners
        self.environ = environ or {}
        self.simulator: Process | None = None
        self.listeners: list[Process] = []

    def start(self) -> None:
        common = os.environ | {"PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}
        self.simulator = Process("simulator", [
            sys.executable, "manage.py", "pbx_simulator", "--host", "127.0.0.1", "--port", str(self.port),
            "--username", USERNAME, "--secret", SECRET, "--cdr-csv", str(self.cdr_csv),
            "--recordings-dir", str(self.workdir / "recordings"),
        ], workdir=self.workdir, environ=common)
        if not wait_until(lambda: port_open(self.port) or not self.simulator.alive(), STARTUP_SECONDS, every=0.1) or not self.simulator.alive():
            raise CommandError(f"the simulator did not start on port {self.port}:\n{self.simulator.log()[-2000:]}")
        environ = common | {
            "DATABASE_URL": database_url(connection.settings_dict), "REDIS_URL": settings.REDIS_URL,
            "AMI_HOST": self.config.host, "AMI_PORT": str(self.port), "AMI_USERNAME": USERNAME, "AMI_SECRET": SECRET,
            "LISTENER_LEASE_SECONDS": str(LEASE_SECONDS), "CDR_CSV": str(self.cdr_csv),
        } | self.environ
        self.listeners = [
            Process(f"listener{number}", [sys.executable, "manage.py", "pbx_listen"], workdir=self.workdir, environ=environ)
            for number in range(1, self.listener_count + 1)
        ]
        if not wait_until(self.ready, STARTUP_SECONDS, every=0.2):
            raise CommandError(f"the listeners did not connect and elect a writer:\n{self.logs()}")

    def ready(self) -> bool:
        return all("connected to" in listener.log() for listener in self.listeners) and self.leader() is not None

    def stop(self) -> None:
        for listener in self.listeners:  # all at once: a standby left alone would take over and repair
            listener.terminate()
        for process in [*self.listeners, self.simulator]:
            if process is not None:
                process.stop()

    def logs(self, tail: int = 3000) -> str:
        processes = [process for process in [self.simulator, *self.listeners] if process is not None]
        return "\n".join(f"--- {process.name} (pid {process.pid}) ---\n{process.log()[-tail:]}" for process in processes)

    # -- the lease ----------------------------------------------------------------------------

    def holder(self) -> str:
        """Who holds the listener lease now ("" when nobody does)."""
        lease = ListenerLease.objects.filter(name=self.config.address, expires_at__gt=Now()).values_list("holder", flat=True)
        return lease.first() or ""

    def leader(self) -> Process | None:
        holder = self.holder()
        pid = int(holder.rsplit(":", 2)[1]) if holder.count(":") >= 2 else None
        return next((listener for listener in self.listeners if listener.pid == pid and listener.alive()), None)

    # -- the PBX ------------------------------------------------------------------------------

    def action(self, headers: dict, timeout: float = 10.0):
        """Send one AMI action on a connection of its own and return the response."""
        ami = AMIConnection(self.config)
        ami.connect()
        try:
            ami.login()
            ami.send_action({"Action": "Events", "EventMask": "off"})  # this connection only sends
            return ami.send_action(headers, timeout=timeout)
        finally:
            ami.close()

    def start_load(self, *loads: dict) -> "Load":
        return Load(self, loads)

    def linkedids(self) -> set[str]:
        """Every call the simulator has finished: the distinct linkedids of Master.csv."""
        try:
            data = self.cdr_csv.read_bytes()
        except FileNotFoundError:
            return set()
        complete = data[: data.rfind(b"\n") + 1].decode("utf-8", "replace")  # the simulator may be mid-line
        return {row[LINKEDID_COLUMN] for row in csv.reader(io.StringIO(complete)) if len(row) > LINKEDID_COLUMN}

    def all_closed(self, linkedids: set[str]) -> bool:
        return Call.objects.filter(linkedid__in=linkedids, ended_at__isnull=False).count() == len(linkedids)


class Load:
    """SimLoad actions running at once, each on its own connection; their rates add up."""

    def __init__(self, rig: Rig, loads: tuple[dict, ...]):
        pool = ThreadPoolExecutor(len(loads))
        self.futures = [pool.submit(self.place, rig, **load) for load in loads]
        pool.shutdown(wait=False)

    @staticmethod
    def place(rig: Rig, *, rate: float, seconds: float, scenario: str, extensions: str = "100", ring: float = 1.0, talk: float = 2.0) -> int:
        reply = rig.action({
            "Action": "SimLoad", "Rate": rate, "Seconds": seconds, "Scenario": scenario,
            "Extensions": extensions, "Ring": ring, "Talk": talk,
        }, timeout=seconds + 30)
        if reply.get_header("Response") != "Success":
            raise CommandError(f"SimLoad refused: {reply.get_header('Message', '')}")
        return int(reply.get_header("Calls"))

    def wait(self) -> int:
        """Once every call has started: how many were."""
        return sum(future.result() for future in self.futures)


def mix(rate: float, seconds: float) -> list[dict]:
    """A working day's calls: most answered after a short ring (some rung on two phones), some missed, some busy."""
    shares = [
        (0.5, {"scenario": "inbound_answered", "ring": 1, "talk": 3}),
        (0.2, {"scenario": "inbound_answered", "extensions": "101,100", "ring": 2, "talk": 6}),
        (0.15, {"scenario": "inbound_missed", "ring": 4}),
        (0.15, {"scenario": "inbound_busy"}),
    ]
    return [load | {"rate": rate * share, "seconds": seconds} for share, load in shares]


class Command(BaseCommand):
    help = (
        "Failover under load, on PostgreSQL: starts the PBX simulator and two pbx_listen as separate processes, "
        "places calls, SIGKILLs the listener holding the lease mid-load, and prints JSON: placed (calls in the "
        "simulator's Master.csv), lost (no Call row), doubled (rows under a key the PBX never gave), left_open, "
        "takeover_s (kill to the lease showing another holder) and settled_s (the last call's end to every call "
        "closed). Progress goes to stderr. The calls it wrote and its lease row are deleted afterwards; give it "
        "a database of its own (DATABASE_URL), migrated."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=20.0, help="calls started per second (default 20)")
        parser.add_argument("--seconds", type=float, default=20.0, help="for how long calls are started (default 20)")
        parser.add_argument("--kill-after", type=float, default=6.0, help="seconds into the load to kill the writing listener (default 6)")

    def handle(self, *args, rate, seconds, kill_after, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_failover needs PostgreSQL (DATABASE_URL=postgres://…): its listeners are processes sharing one lease row")
        if not 0 < kill_after < seconds:
            raise CommandError("--kill-after must fall inside the load: 0 < kill-after < seconds")
        workdir = Path(tempfile.mkdtemp(prefix="bench_failover-"))
        rig = Rig(workdir)
        last_id_before = Call.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        try:
            self.progress(f"starting the simulator on port {rig.port} and two listeners (logs in {workdir})")
            rig.start()
            figures = self.measure(rig, rate, seconds, kill_after, last_id_before)
        finally:
            rig.stop()
            Call.objects.filter(pk__gt=last_id_before).delete()  # their recordings go with them
            ListenerLease.objects.filter(name=rig.config.address).delete()
            shutil.rmtree(workdir, ignore_errors=True)
        self.stdout.write(json.dumps(figures))

    def measure(self, rig: Rig, rate: float, seconds: float, kill_after: float, last_id_before: int) -> dict:
        self.progress(f"placing {rate:g} calls/s for {seconds:g} s; the writer dies after {kill_after:g} s")
        load = rig.start_load(*mix(rate, seconds))
        time.sleep(kill_after)
        victim, holder = rig.leader(), rig.holder()
        if victim is None:
            raise CommandError(f"no listener holds the lease {kill_after:g} s into the load:\n{rig.logs()}")
        victim.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        took_over = wait_until(lambda: rig.holder() not in ("", holder), 30)
        takeover_s = round(time.monotonic() - killed_at, 2) if took_over else None
        self.progress(f"killed {victim.name} (pid {victim.pid}); takeover in {takeover_s} s")

        started = load.wait()
        if not wait_until(lambda: len(rig.linkedids()) >= started, SETTLE_SECONDS, every=0.1):
            raise CommandError(f"{started} calls started but Master.csv has {len(rig.linkedids())}")
        last_end = rig.cdr_csv.stat().st_mtime  # the last call's CDR rows were the last written
        linkedids = rig.linkedids()
        settled = wait_until(lambda: rig.all_closed(linkedids), SETTLE_SECONDS, every=0.1)
        settled_s = round(time.time() - last_end, 2) if settled else None
        self.progress(f"{len(linkedids)} calls placed; all closed {settled_s} s after the last one ended" if settled else "calls still open after 60 s")

        rows = list(Call.objects.filter(pk__gt=last_id_before).values_list("linkedid", "ended_at"))
        written = Counter(linkedid for linkedid, _ in rows)
        return {
            "placed": len(linkedids),
            "lost": len(linkedids - set(Call.objects.filter(linkedid__in=linkedids).values_list("linkedid", flat=True))),
            "doubled": sum(1 for linkedid in written if linkedid not in linkedids) + sum(count - 1 for count in written.values()),
            "left_open": sum(1 for _, ended_at in rows if ended_at is None),
            "takeover_s": takeover_s, "settled_s": settled_s, "rate": rate, "seconds": seconds,
        }

    def progress(self, line: str) -> None:
        self.stderr.write(line)
