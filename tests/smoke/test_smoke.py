"""`make smoke`: the production processes, each on its own, on PostgreSQL and Redis, driven through Chromium.

daphne, a Celery worker, Celery beat, two `pbx_listen` (leader and hot standby) and the PBX simulator start
as deploy/systemd runs them (simplecalls.settings.base, DEBUG=0), on this test database. An operator then
logs in, takes a known client's call and registers it, calls the client back, finds that call's recording,
and keeps a call whose leading listener is killed mid-call; at the end every process must stop on SIGTERM.
Not collected by `make test` (pyproject's --ignore); `make smoke` runs it, after `make test` in .ci/run.
"""

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.db.models.functions import Now
from django.utils import timezone
from playwright.sync_api import expect

from clients.models import Client
from history.models import Call, CallReason, CallResult, Recording
from simplecalls.env import database_url
from telephony.ami import AMIConfig
from telephony.management.commands.bench_failover import Process, free_port, port_open, wait_until
from telephony.models import ListenerLease, Operator
from tests.browser.conftest import SCREENSHOTS, Stack, browser_page, chromium, log_in
from tests.conftest import services_missing

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

USERNAME, PASSWORD = "operator1", "smoke-pass-1"
AMI_USERNAME = "simplecalls"
LISTENERS = ("listener1", "listener2")
EVERYONE = ("simulator", "web", "worker", "beat", *LISTENERS)
LEASE_SECONDS = 2  # a standby takes over about this long after the leader's death
STARTUP_SECONDS = 60
STOP_SECONDS = {"worker": 30}  # the units' TimeoutStopSec: 20 s but for the worker's running tasks
BEAT_SECONDS = 90  # its schedule runs the reconciliation every 60 s, the first a minute after it starts
CALL_SECONDS = 30  # for a call's row to reach a state: far above what it takes, so only a fault hits it
CALLER = "84957894561"  # the client's mobile as a Russian trunk presents it
CLIENT_NAME = "Савицкая Наталья Геннадьевна"


@pytest.fixture(scope="module")
def services():
    """The smoke fails, never skips, without what production runs on: it is run only to prove the stack works."""
    if problems := services_missing():
        pytest.fail("make smoke runs the production processes in a real browser: " + "; ".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def browser(services):
    with chromium() as browser:
        yield browser


@pytest.fixture
def office(services, transactional_db, django_user_model):
    """What an installation has before its first call: the dictionaries, an operator at extension 100 allowed to
    listen to recordings, and a client."""
    call_command("loaddata", "dictionaries", verbosity=0)
    # The processes run the production hashers; this process's test settings hash with MD5 only.
    hasher = PBKDF2PasswordHasher()
    operator = django_user_model.objects.create(
        username=USERNAME, password=hasher.encode(PASSWORD, hasher.salt()), first_name="Анна", last_name="Администраторова",
    )
    Operator.objects.create(user=operator, extension="100", channel="PJSIP/100")
    operator.user_permissions.add(Permission.objects.get(codename="listen_recording"))
    client = Client.objects.create(
        last_name="Савицкая", first_name="Наталья", middle_name="Геннадьевна", phone_mobile="+74957894561", card_number="D000100",
    )
    return operator, client


@pytest.fixture
def smoke(office, tmp_path):
    running = Smoke(tmp_path)
    try:
        yield running
    finally:
        running.stop(check=False)  # after a failure: whatever still runs goes, before the database is flushed


@pytest.fixture
def page(smoke, browser):
    with browser_page(browser, smoke.url, 1280, 1000) as page:
        page.set_default_timeout(CALL_SECONDS * 1000)
        yield page


class Smoke(Stack):
    """The processes of a production host, their logs in `workdir`; `ring` and `outcome` drive the simulator as Stack's do."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port, ami_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ami = AMIConfig("127.0.0.1", ami_port, AMI_USERNAME, secrets.token_hex(12), ping_interval=0)
        self.recordings = workdir / "recordings"
        self.cdr_csv = workdir / "Master.csv"
        self.processes: dict[str, Process] = {}
        self.killed: set[str] = set()  # killed on purpose: not a failure
        # /etc/simplecalls/simplecalls.env as deploy/simplecalls.env.example has it, on this test database.
        self.environ = os.environ | {
            "DJANGO_SETTINGS_MODULE": "simplecalls.settings.base", "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1", "SECURE_COOKIES": "0",  # plain http: no nginx and no TLS in front
            "DATABASE_URL": database_url(connection.settings_dict), "REDIS_URL": settings.REDIS_URL,
            "CHANNEL_PREFIX": f"smoke{os.getpid()}",  # its Celery queue and live messages apart from anything else on this Redis
            "AMI_HOST": self.ami.host, "AMI_PORT": str(self.ami.port), "AMI_USERNAME": self.ami.username, "AMI_SECRET": self.ami.secret,
            "RECORDINGS_DIR": str(self.recordings), "CDR_CSV": str(self.cdr_csv), "DIALPLAN_TOKEN": secrets.token_hex(24),
            "LISTENER_LEASE_SECONDS": str(LEASE_SECONDS), "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
            # What a production settings file in this shell's environment must not change here: daphne sends the audio
            # itself (no nginx), a quiet PBX is healthy, the CDR is the simulator's file, the web alone takes a pool.
            "RECORDINGS_ACCEL_PREFIX": "", "HEALTHZ_EVENT_MAX_AGE": "0", "CDR_DSN": "", "DATABASE_POOL_SIZE": "0", "DEMO": "0",
        }

    # -- the processes ---------------------------------------------------------------------------

    def start(self) -> None:
        self.recordings.mkdir(exist_ok=True)
        # With DEBUG off whitenoise serves STATIC_ROOT only, filled as deploy/README.md's step 7 does.
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=settings.BASE_DIR, env=self.environ, check=True)
        self.spawn("simulator", "manage.py", "pbx_simulator", "--host", self.ami.host, "--port", str(self.ami.port),
                   "--username", self.ami.username, "--secret", self.ami.secret,
                   "--cdr-csv", str(self.cdr_csv), "--recordings-dir", str(self.recordings))
        self.wait_for("the simulator to listen", lambda: port_open(self.ami.port))
        # The units' command lines (deploy/systemd); the worker's children pinned, where the unit takes one per core.
        self.spawn("web", "-m", "daphne", "--proxy-headers", "-v", "0", "-b", "127.0.0.1", "-p", str(self.port),
                   "simplecalls.asgi:application", environ={"DATABASE_POOL_SIZE": "8"})
        self.spawn("worker", "-m", "celery", "-A", "simplecalls", "worker", "--loglevel", "INFO", "--concurrency", "2")
        self.spawn("beat", "-m", "celery", "-A", "simplecalls", "beat", "--loglevel", "INFO",
                   "--schedule", str(self.workdir / "celerybeat-schedule"))
        for name in LISTENERS:
            self.spawn(name, "manage.py", "pbx_listen")
        self.wait_for("/healthz to answer 200", self.healthy)
        self.wait_for("the worker to be ready", lambda: " ready." in self.processes["worker"].log())
        self.wait_for("beat to start", lambda: "beat: Starting..." in self.processes["beat"].log())
        self.wait_for("both listeners to connect to the PBX", lambda: all("connected to" in self.processes[name].log() for name in LISTENERS))
        self.wait_for("a listener to take the lease", lambda: self.leader() is not None)

    def spawn(self, name: str, *args: str, environ: dict[str, str] | None = None) -> None:
        self.processes[name] = Process(name, [sys.executable, *args], workdir=self.workdir, environ=self.environ | (environ or {}))

    def stop(self, *, check: bool = True) -> None:
        """SIGTERM to every process at once; each must exit by itself, with 0 or by that signal, within its unit's stop timeout."""
        running = [process for process in self.processes.values() if process.alive()]
        problems = [f"{self.describe(process)} before the stop" for process in self.dead()]
        for process in running:
            process.terminate()
        asked = time.monotonic()
        exited: dict[str, float] = {}
        while len(exited) < len(running) and time.monotonic() < asked + max(map(self.stop_seconds, running), default=0):
            exited |= {process.name: time.monotonic() - asked for process in running if process.name not in exited and not process.alive()}
            time.sleep(0.05)
        for process in running:
            if exited.get(process.name, float("inf")) > self.stop_seconds(process):
                process.popen.kill()
                process.popen.wait()
                problems.append(f"{process.name} (pid {process.pid}) was still running {self.stop_seconds(process)} s after SIGTERM")
            elif process.popen.returncode not in (0, -signal.SIGTERM):
                problems.append(f"{process.name} (pid {process.pid}) exited with {process.popen.returncode} on SIGTERM")
        if check:
            print("smoke: stopped after " + ", ".join(f"{name} {seconds:.1f} s (exit {self.processes[name].popen.returncode})" for name, seconds in exited.items()), flush=True)
        if check and problems:
            raise AssertionError("; ".join(problems))

    @staticmethod
    def stop_seconds(process: Process) -> float:
        return STOP_SECONDS.get(process.name, 20)

    def dead(self) -> list[Process]:
        """The processes that ended without being asked to."""
        return [process for process in self.processes.values() if not process.alive() and process.name not in self.killed]

    def wait_for(self, what: str, condition, timeout: float = STARTUP_SECONDS) -> None:
        """Poll `condition`; fail at once when a process has died, and after `timeout` seconds."""
        def done() -> bool:
            if self.dead():
                raise AssertionError(f"while waiting for {what}: " + "; ".join(self.describe(process) for process in self.dead()))
            return condition()

        if not wait_until(done, timeout, every=0.1):
            raise AssertionError(f"{what}: not within {timeout:g} s")

    def describe(self, process: Process) -> str:
        code = process.popen.poll()
        return f"{process.name} (pid {process.pid}) " + ("runs" if code is None else f"exited with {code}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:  # 503 (HTTPError) included
            return False

    def leader(self) -> Process | None:
        """The listener holding the lease now, found by the pid in its holder (host:pid:nonce)."""
        lease = ListenerLease.objects.filter(name=self.ami.address, expires_at__gt=Now())
        holder = lease.values_list("holder", flat=True).first() or ""
        pid = holder.split(":")[1] if holder.count(":") >= 2 else ""
        return next((self.processes[name] for name in LISTENERS if name in self.processes and str(self.processes[name].pid) == pid), None)

    # -- the steps ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def step(self, title: str, *relevant: str):
        """One step of the smoke: on failure, its title, every process's state and the relevant processes' log tails."""
        started = time.monotonic()
        print(f"smoke: {title} …", flush=True)
        try:
            yield
        except Exception as error:
            pytest.fail(f"smoke step «{title}» failed: {error}\n\n{self.report(relevant)}", pytrace=False)
        print(f"smoke: {title}: ok ({time.monotonic() - started:.1f} s)", flush=True)

    def report(self, relevant: tuple[str, ...], tail: int = 2500) -> str:
        shown = [process for process in self.processes.values() if process.name in relevant or process in self.dead()]
        lines = ["processes: " + "; ".join(self.describe(process) for process in self.processes.values()), f"logs in {self.workdir}"]
        lines += [f"--- {process.name}.log (last {tail} characters) ---\n{process.log()[-tail:]}" for process in shown]
        return "\n".join(lines)


def test_the_production_processes_serve_an_operator_and_keep_a_call_through_the_leading_listeners_death(smoke, page, office):
    operator, client = office
    reason, result = CallReason.objects.filter(is_active=True).first(), CallResult.objects.filter(is_active=True).first()

    with smoke.step("start daphne, the worker, beat, two listeners and the simulator", *EVERYONE):
        smoke.start()
    panel = page.locator(".popup-panel")

    with smoke.step("the operator logs in and the page's live link is up", "web"):
        log_in(page, USERNAME, PASSWORD)
        expect(page.locator("#call-popups")).to_have_attribute("data-link", "up")

    with smoke.step("an incoming call from the client pops up the client's card", "simulator", *LISTENERS, "web"):
        linkedid = smoke.ring(CALLER, ring=1, talk=3)
        expect(panel.locator("h2")).to_have_text(CLIENT_NAME)
        expect(panel.locator(".call-status")).to_have_text("отвечен")

    with smoke.step("the operator registers the call", "web"):
        panel.locator("input[name=caller_kind][value=regular]").check()
        panel.locator("#id_reason").select_option(str(reason.pk))
        panel.locator("#id_result").select_option(str(result.pk))
        panel.locator("#id_comment").fill("проверка после установки")
        panel.locator("button[value=register]").click()
        expect(panel).to_be_hidden()
        call = Call.objects.get(linkedid=linkedid)
        assert (call.direction, call.client, call.operator, call.caller_kind, call.reason, call.result, call.comment, bool(call.registered_at)) == (
            "in", client, operator, "regular", reason, result, "проверка после установки", True,
        ), f"the registered call: {call.__dict__}"

    with smoke.step("«Позвонить» on the client's card calls them through the worker and the PBX", "web", "worker", "simulator", *LISTENERS):
        smoke.outcome(ring=1, talk=2)
        page.goto(f"/clients/{client.pk}/")
        expect(page.locator("#call-popups")).to_have_attribute("data-link", "up")
        page.locator("button.dial[data-dial='+74957894561']").first.click()
        bar = page.locator("#call-popups .dialling")
        expect(bar).to_have_attribute("data-stage", "connected")
        expect(panel.locator("h2")).to_have_text(CLIENT_NAME)
        expect(bar).to_have_attribute("data-stage", "ended")
        panel.locator("#id_reason").select_option(str(reason.pk))
        panel.locator("#id_result").select_option(str(result.pk))
        panel.locator("button[value=register]").click()
        expect(panel).to_be_hidden()
        outgoing = Call.objects.get(direction="out")
        assert (outgoing.client, outgoing.operator, outgoing.disposition) == (client, operator, "answered"), f"the outgoing call: {outgoing.__dict__}"

    with smoke.step("the outgoing call's recording is in the recordings report and its audio answers", "web", *LISTENERS, "simulator"):
        smoke.wait_for("the listener to store the recording", lambda: Recording.objects.filter(call=outgoing).exists(), CALL_SECONDS)
        recording = Recording.objects.get(call=outgoing)
        page.goto("/history/recordings/")
        row = page.locator(f"tr[data-recording='{recording.pk}']")
        expect(row).to_contain_text(CLIENT_NAME)
        expect(row).to_contain_text("Исходящий")
        audio = row.locator("audio").get_attribute("src")
        response = page.request.get(audio, headers={"Range": "bytes=0-"})
        assert response.status in (200, 206), f"GET {audio}: HTTP {response.status}"
        assert response.body()[:4] == b"RIFF", f"GET {audio}: not a WAV file: {response.body()[:16]!r}"

    with smoke.step("the leading listener is killed mid-call and the standby completes the call", *LISTENERS, "simulator", "web"):
        linkedid = smoke.ring(CALLER, ring=1, talk=6)
        expect(panel.locator(".call-status")).to_have_text("отвечен")
        smoke.wait_for("the call to be answered in the database", lambda: Call.objects.filter(linkedid=linkedid, answered_at__isnull=False).exists(), CALL_SECONDS)
        victim = smoke.leader()
        assert victim is not None, "no listener holds the lease"
        smoke.killed.add(victim.name)
        killed_at = timezone.now()
        victim.signal(signal.SIGKILL)
        print(f"smoke: killed {victim.name} (pid {victim.pid}), the leader, mid-call", flush=True)
        smoke.wait_for("the standby to take the lease", lambda: smoke.leader() not in (None, victim), CALL_SECONDS)
        smoke.wait_for("the call to end in the database", lambda: Call.objects.filter(linkedid=linkedid, ended_at__isnull=False).exists(), CALL_SECONDS)
        call = Call.objects.get(linkedid=linkedid)
        assert call.disposition == "answered" and call.answered_at and call.ended_at and call.duration > 0 and call.billsec > 0, (
            f"the call after the failover: {call.__dict__}"
        )
        assert call.ended_at > killed_at, f"the call ended at {call.ended_at}, before the kill at {killed_at}: nothing was left to the standby"
        expect(panel.locator(".call-status")).to_contain_text("звонок завершён")
        page.goto(f"/history/calls/{call.pk}/")
        expect(page.locator("[data-field=disposition]")).to_have_text("отвечен")
        expect(page.locator("[data-field=answered_at]")).not_to_be_empty()
        expect(page.locator("[data-field=ended_at]")).not_to_be_empty()
        expect(page.locator("[data-field=duration]")).to_have_text(re.compile(r"^00:00:(0[1-9]|[1-5]\d)$"))
        expect(page.locator(".recording[data-recording] audio")).to_have_count(1)  # kept by the standby at the call's end
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "smoke-call-after-failover.png"), full_page=True)

    with smoke.step("beat has the worker reconcile the PBX's CDR, which finds no call missing or left open", "beat", "worker"):
        # Beat's first run comes a minute after it started; on a slow machine it may come before the last call ended.
        reconciled = re.compile(r"CDR reconciled from \S+: \d+ rows, 3 calls: (\d+) created, (\d+) closed")
        smoke.wait_for("a reconciliation of the three calls", lambda: reconciled.search(smoke.processes["worker"].log()), BEAT_SECONDS)
        created, closed = map(int, reconciled.search(smoke.processes["worker"].log()).groups())
        assert "Sending due task reconcile-cdr" in smoke.processes["beat"].log(), "the reconciliation did not come from beat"
        assert (created, closed) == (0, 0), f"the CDR had {created} calls the listeners missed and {closed} they left open"

    with smoke.step("every process stops on SIGTERM, the operator's page still open", *EVERYONE):
        smoke.stop()
