"""Faults on real processes: the simulator and pbx_listen each run as their own process on PostgreSQL.

Each test breaks one thing while calls go on (the writing listener, its database sessions, Redis,
the AMI link) and checks every call of the simulator's Master.csv against `history.Call`.
"""

import shutil
import signal
import time
from collections import Counter

import pytest
from django.conf import settings
from django.db import connection

from history.models import Call
from telephony.ami import AMIConnection
from telephony.cdr import calls_from_cdr, read_csv
from telephony.management.commands.bench_failover import Process, Rig, free_port, port_open, wait_until
from telephony.models import Operator
from tests.conftest import needs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def start_rig(transactional_db, tmp_path, django_user_model):
    """Starts a Rig (simulator and listeners); every process it started is stopped at teardown, pass or fail."""
    needs(connection.vendor == "postgresql", "the fault tests run listeners as processes that share a PostgreSQL database")
    for username, extension in (("operator1", "100"), ("operator2", "101")):
        Operator.objects.create(user=django_user_model.objects.create_user(username), extension=extension, channel=f"PJSIP/{extension}")
    rigs = []

    def start(**options) -> Rig:
        workdir = tmp_path / f"rig{len(rigs)}"
        workdir.mkdir()
        rig = Rig(workdir, **options)
        rigs.append(rig)
        rig.start()
        return rig

    yield start
    for rig in rigs:
        rig.stop()
        print(rig.logs(tail=30_000))  # shown by pytest only when the test failed


class RedisServer:
    """A redis-server of the test's own, on a port that stays the same across restarts."""

    def __init__(self, workdir):
        self.workdir, self.port = workdir, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: Process | None = None

    def start(self) -> None:
        arguments = [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = Process("redis", arguments, workdir=self.workdir, environ={})
        assert wait_until(lambda: port_open(self.port), 10), self.process.log()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@pytest.fixture
def redis_server(tmp_path):
    needs(shutil.which("redis-server") is not None, "no redis-server binary to run a private Redis")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def cdr_calls(rig: Rig) -> dict:
    """Each call as the simulator's CDR tells it, by linkedid."""
    rows, errors = read_csv(rig.cdr_csv, tz=settings.CDR_TIMEZONE)
    assert not errors
    calls = calls_from_cdr(rows, region=settings.PHONE_REGION, extension_pattern=settings.EXTENSION_PATTERN)
    return {call.key: call for call in calls}


def all_placed_calls_closed(rig: Rig, started: int, timeout: float) -> set[str]:
    """Wait until Master.csv has every started call and `history.Call` has them all closed; return their linkedids."""
    assert wait_until(lambda: len(rig.linkedids()) == started, 15), f"{started} calls started, Master.csv has {len(rig.linkedids())}"
    placed = rig.linkedids()
    closed = wait_until(lambda: rig.all_closed(placed), timeout, every=0.1)
    open_calls = placed - set(Call.objects.filter(ended_at__isnull=False).values_list("linkedid", flat=True))
    assert closed, f"{len(open_calls)} of {len(placed)} calls still missing or open: {sorted(open_calls)[:10]}"
    return placed


def differences_from_the_cdr(rig: Rig) -> list[str]:
    """Calls whose row does not say what the CDR says (seconds to ±1: the CDR truncates its times)."""
    rows = {call.linkedid: call for call in Call.objects.all()}
    wrong = []
    for linkedid, expected in cdr_calls(rig).items():
        row = rows.get(linkedid)
        if row is None or row.ended_at is None:
            wrong.append(f"{linkedid}: {'no row' if row is None else 'open'}")
        elif ((row.disposition, row.extension) != (expected.disposition, expected.extension)
              or abs(row.billsec - expected.billsec) > 1 or abs(row.duration - expected.duration) > 1):
            wrong.append(f"{linkedid}: {row.disposition} {row.extension} billsec {row.billsec} duration {row.duration}; "
                         f"CDR {expected.disposition} {expected.extension} billsec {expected.billsec} duration {expected.duration}")
    return wrong


def row_versions() -> dict[str, str]:
    """linkedid → xmin of every call row: a row written again, even with the same values, gets a new xmin."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT linkedid, xmin::text FROM history_call")
        return dict(cursor.fetchall())


def terminate_other_sessions() -> int:
    """End every session on this database but the test's own, as a DBA or a failover would."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return sum(terminated for (terminated,) in cursor.fetchall())


def test_killing_the_leader_mid_load_loses_doubles_and_leaves_open_nothing(start_rig):
    rig = start_rig()
    load = rig.start_load(
        {"scenario": "inbound_answered", "rate": 7, "seconds": 6, "ring": 0.5, "talk": 2},
        {"scenario": "inbound_missed", "rate": 2, "seconds": 6, "ring": 1.5},
        {"scenario": "inbound_busy", "rate": 1, "seconds": 6},
    )
    time.sleep(2)
    leader, holder = rig.leader(), rig.holder()
    assert leader is not None
    leader.signal(signal.SIGKILL)

    assert wait_until(lambda: rig.holder() not in ("", holder), 5), "the standby takes over within 5 s"
    started = load.wait()
    assert wait_until(lambda: len(rig.linkedids()) == started, 15)
    since_last_end = time.time() - rig.cdr_csv.stat().st_mtime
    placed = all_placed_calls_closed(rig, started, timeout=15 - since_last_end)
    rows = Counter(Call.objects.values_list("linkedid", flat=True))
    assert set(rows) == placed and max(rows.values()) == 1, "one row per call the PBX placed, under its linkedid"
    assert differences_from_the_cdr(rig) == []


def test_a_leader_frozen_past_its_lease_writes_nothing_once_it_wakes(start_rig):
    rig = start_rig(environ={"LISTENER_LEASE_SECONDS": "2"})
    load = rig.start_load(
        {"scenario": "inbound_answered", "rate": 4, "seconds": 4, "ring": 0.5, "talk": 1.5},
        {"scenario": "inbound_missed", "rate": 1, "seconds": 4, "ring": 1},
    )
    time.sleep(1)
    frozen, holder = rig.leader(), rig.holder()
    assert frozen is not None
    log_before = len(frozen.log())
    frozen.signal(signal.SIGSTOP)
    frozen_at = time.monotonic()

    assert wait_until(lambda: rig.holder() not in ("", holder), 10), "the standby takes over"
    # Still talking when the frozen one wakes: what it heard of them is queued, and must not reach their rows.
    talking = {rig.action({"Action": "SimCall", "Scenario": "inbound_answered", "Ring": 0.5, "Talk": 12}).get_header("Linkedid") for _ in range(2)}
    placed = all_placed_calls_closed(rig, load.wait(), timeout=15)
    time.sleep(max(0.0, 6 - (time.monotonic() - frozen_at)))
    before = row_versions()
    assert placed | talking <= before.keys()
    assert Call.objects.filter(linkedid__in=talking, disposition="answered", ended_at__isnull=True).count() == 2
    frozen.signal(signal.SIGCONT)
    rig.action({"Action": "SimCall", "Scenario": "inbound_answered", "Ring": 0.5, "Talk": 1})  # news the woken one must not write

    woken = lambda: frozen.log()[log_before:]  # noqa: E731
    assert wait_until(lambda: "lost the listener lease" in woken() or "another listener took over" in woken(), 5), woken()
    time.sleep(3)
    assert {linkedid: xmin for linkedid, xmin in row_versions().items() if linkedid in before} == before, "no call row was written again"
    assert "took the listener lease" not in woken() and frozen.alive()
    all_placed_calls_closed(rig, len(placed) + 3, timeout=15)
    assert differences_from_the_cdr(rig) == []
    assert all(call.duration > 0 and call.billsec > 0 for call in Call.objects.filter(disposition="answered"))


def test_the_listeners_outlive_their_database_sessions_being_terminated(start_rig):
    rig = start_rig()
    load = rig.start_load(
        {"scenario": "inbound_answered", "rate": 6, "seconds": 7, "ring": 0.5, "talk": 2},
        {"scenario": "inbound_missed", "rate": 2, "seconds": 7, "ring": 1.5},
    )
    for _ in range(2):
        time.sleep(2.5)
        assert terminate_other_sessions() > 0, "the listeners had sessions to terminate"

    started = load.wait()
    all_placed_calls_closed(rig, started, timeout=15)
    assert all(listener.alive() for listener in rig.listeners)
    assert any("database unreachable" in listener.log() or "could not renew" in listener.log() for listener in rig.listeners)
    assert differences_from_the_cdr(rig) == []


def calls_ended_so_far_are_closed(rig: Rig) -> bool:
    ended = rig.linkedids()
    return bool(ended) and wait_until(lambda: rig.all_closed(ended), 3)


def test_redis_frozen_or_gone_holds_up_no_call(start_rig, redis_server):
    rig = start_rig(listeners=1, environ={"REDIS_URL": redis_server.url})
    load = rig.start_load(
        {"scenario": "inbound_answered", "rate": 4, "seconds": 13, "ring": 0.5, "talk": 1.5},
        {"scenario": "inbound_answered", "extensions": "101", "rate": 2, "seconds": 13, "ring": 0.5, "talk": 1},
    )
    time.sleep(1.5)
    redis_server.process.signal(signal.SIGSTOP)
    time.sleep(3)
    assert calls_ended_so_far_are_closed(rig), "writing goes on while Redis is frozen"
    redis_server.process.signal(signal.SIGCONT)
    time.sleep(1)
    redis_server.process.signal(signal.SIGKILL)
    time.sleep(3)
    assert calls_ended_so_far_are_closed(rig), "writing goes on while Redis is gone"
    redis_server.start()

    started = load.wait()
    all_placed_calls_closed(rig, started, timeout=15)
    listener = rig.listeners[0]
    assert listener.alive()
    assert "could not push" in listener.log(), "the pushes did meet the fault"
    assert differences_from_the_cdr(rig) == []


def cut_the_ami_link(rig: Rig, seconds: float) -> None:
    """SimDrop again and again: the listeners' sessions and their reconnects are cut for `seconds`."""
    ami = AMIConnection(rig.config)
    ami.connect()
    ami.login()
    ami.send_action({"Action": "Events", "EventMask": "off"})
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert ami.send_action({"Action": "SimDrop"}).get_header("Response") == "Success"
        time.sleep(0.1)
    ami.close()


@pytest.mark.parametrize("cdr", [True, False], ids=["with-cdr", "without-cdr"])
def test_calls_that_end_while_the_ami_link_is_down_are_closed_once_it_is_back(start_rig, cdr):
    rig = start_rig(listeners=1, environ={} if cdr else {"CDR_CSV": ""})
    started = rig.start_load(
        {"scenario": "inbound_answered", "rate": 8, "seconds": 2, "ring": 0.5, "talk": 3},
        {"scenario": "inbound_missed", "rate": 2, "seconds": 2, "ring": 3},
    ).wait()
    time.sleep(0.8)  # every call rung, most answered, none ended yet
    cut_the_ami_link(rig, seconds=3)  # while most of them end

    placed = all_placed_calls_closed(rig, started, timeout=15)
    log = rig.listeners[0].log()
    assert log.count("connected to") >= 2 and rig.listeners[0].alive()
    if cdr:
        assert "CDR reconciled" in log
        assert differences_from_the_cdr(rig) == [], "the CDR's figures for the calls whose end was not heard"
    else:
        assert "the PBX no longer has it; closed" in log, "some ends were lost, and the channel list closed them"
        dispositions = dict(Call.objects.filter(linkedid__in=placed).values_list("linkedid", "disposition"))
        assert dispositions == {linkedid: call.disposition for linkedid, call in cdr_calls(rig).items()}
