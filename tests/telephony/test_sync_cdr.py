"""sync_cdr and the periodic reconciliation: the simulator's Master.csv, CDR tables in PostgreSQL, the database."""

import logging
import shutil
import threading
import time
import uuid
from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.utils import timezone

from clients.models import Client
from history.models import Call
from simplecalls.env import database_url
from telephony.ami import AMIConnection
from telephony.cdr import calls_from_cdr, read_csv
from telephony.management.commands.run_embedded import reconcile_periodically, use_simulator_cdr
from telephony.reconcile import cdr_reconcile, cdr_reconcile_recent
from telephony.simulator.cdr import Cdr, csv_line
from telephony.tasks import reconcile_cdr
from tests.conftest import needs
from tests.helpers import CDR_FIXTURES as FIXTURES
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

MOSCOW = ZoneInfo("Europe/Moscow")


def sync(*args, **options):
    out, err = StringIO(), StringIO()
    call_command("sync_cdr", *map(str, args), stdout=out, stderr=err, **options)
    return out.getvalue().strip(), err.getvalue().splitlines()


def rows():
    return list(Call.objects.order_by("pk").values())


@pytest.fixture
def master_csv(simulator, tmp_path):
    return tmp_path / "Master.csv"  # where the `simulator` fixture writes its CDR


def originate(simulator, master_csv, number):
    ami = AMIConnection(simulator.config())
    ami.connect()
    ami.login()
    try:
        ami.send_action({"Action": "SimOutcome", "Exten": number, "Outcome": "answered", "Ring": "1", "Talk": "110"})
        response = ami.send_action({
            "Action": "Originate", "Channel": "Local/100@from-internal", "Context": "from-internal", "Exten": number,
            "Priority": "1", "Async": "true", "CallerID": f"Савицкая <{number}>", "Timeout": "30000",
        })
        assert response.get_header("Response") == "Success"
        wait_for(lambda: master_csv.exists() and ';1"' in master_csv.read_text())  # both halves' rows come at the end
    finally:
        ami.close()


# (a) Master.csv as the simulator writes it, with no listener running.

def test_calls_nobody_listened_to_are_created_from_the_simulator_cdr(simulator, master_csv, operators):
    ivanov = Client.objects.create(last_name="Иванов", phone_mobile="+74957894561")
    for name in ("Савицкая", "Савицкий"):  # two clients share the number called: neither is guessed
        Client.objects.create(last_name=name, phone_home="+74951234567")
    began = timezone.now().replace(microsecond=0) - timedelta(seconds=1)
    answered = simulator.call("inbound_answered", extensions=["100"], talk=110)
    missed = simulator.call("inbound_missed", extensions=["100", "101"])
    busy = simulator.call("inbound_busy", extensions=["101"])
    originate(simulator, master_csv, "84951234567")

    summary, errors = sync(master_csv, timezone=settings.TIME_ZONE)

    assert summary == "sync_cdr: 6 rows, 4 calls: 4 created, 0 closed, 0 unchanged, 0 lines skipped"
    assert errors == []
    calls = {call.linkedid: call for call in Call.objects.select_related("operator")}
    facts = {key: (c.direction, c.disposition, c.phone, c.extension, c.operator.username, c.billsec) for key, c in calls.items()}
    outbound = next(call for call in calls.values() if call.direction == "out")
    assert facts == {
        answered: ("in", "answered", "+74957894561", "100", "operator1", 1),
        missed: ("in", "no_answer", "+74957894561", "100", "operator1", 0),
        busy: ("in", "busy", "+74957894561", "101", "operator2", 0),
        outbound.linkedid: ("out", "answered", "+74951234567", "100", "operator1", 1),
    }
    assert {call.source for call in calls.values()} == {Call.Source.CDR}
    assert (calls[answered].client, calls[busy].client, outbound.client) == (ivanov, ivanov, None)
    for call in calls.values():  # read in the right time zone: within this test, not hours away
        assert began <= call.started_at <= call.ended_at <= timezone.now()
        assert call.duration == (call.ended_at - call.started_at).seconds
    assert calls[answered].duration in (1, 2)
    assert calls[answered].started_at <= calls[answered].answered_at <= calls[answered].ended_at
    assert calls[missed].answered_at is None

    before = rows()
    summary, _ = sync(master_csv, timezone=settings.TIME_ZONE)
    assert summary == "sync_cdr: 6 rows, 4 calls: 0 created, 0 closed, 4 unchanged, 0 lines skipped"
    assert rows() == before


def test_a_call_left_open_is_closed_and_only_its_gaps_are_filled(simulator, master_csv, operators):
    Client.objects.create(last_name="Иванов", phone_mobile="+74957894561")
    linkedid = simulator.call("inbound_answered", extensions=["100"], talk=110)
    # The listener saw it ring with an odd number, then lost the PBX link before the hang-up.
    started = timezone.now() - timedelta(seconds=30)
    Call.objects.create(linkedid=linkedid, direction="in", phone="+74950000000", started_at=started)

    summary, _ = sync(master_csv, timezone=settings.TIME_ZONE)

    assert summary == "sync_cdr: 1 rows, 1 calls: 0 created, 1 closed, 0 unchanged, 0 lines skipped"
    call = Call.objects.select_related("operator").get()
    assert (call.disposition, call.extension, call.operator.username, call.billsec) == ("answered", "100", "operator1", 1)
    assert call.ended_at is not None and call.answered_at is not None
    assert (call.phone, call.started_at, call.source, call.client) == ("+74950000000", started, Call.Source.AMI, None)
    assert call.duration in (1, 2)  # the CDR's, from its own start


def test_a_call_the_listener_saw_answered_stays_answered_and_never_ends_before_its_answer():
    # The simulator's inbound busy call (its CDR ends at 01:34:56), which the listener saw answered
    # within that same second: the CDR's whole seconds must not end it before it began.
    started_at = datetime(2025, 3, 14, 1, 34, 56, 200000, tzinfo=MOSCOW)
    answered_at = started_at + timedelta(milliseconds=300)
    Call.objects.create(linkedid="1796423696.11", direction="in", started_at=started_at, answered_at=answered_at, disposition="answered")
    summary, _ = sync(FIXTURES / "simulator.csv", timezone="Europe/Moscow")
    assert summary == "sync_cdr: 17 rows, 11 calls: 10 created, 1 closed, 0 unchanged, 0 lines skipped"
    call = Call.objects.get(linkedid="1796423696.11")
    assert (call.disposition, call.answered_at, call.ended_at, call.extension) == ("answered", answered_at, answered_at, "100")


def test_a_complete_call_is_left_alone_even_when_the_cdr_disagrees(simulator, master_csv, operators):
    linkedid = simulator.call("inbound_busy", extensions=["100"])
    now = timezone.now()
    Call.objects.create(
        linkedid=linkedid, direction="in", disposition="no_answer", phone="+74950000000", started_at=now - timedelta(minutes=5),
        ended_at=now, duration=300,
    )
    before = rows()
    summary, _ = sync(master_csv, timezone=settings.TIME_ZONE)
    assert summary == "sync_cdr: 1 rows, 1 calls: 0 created, 0 closed, 1 unchanged, 0 lines skipped"
    assert rows() == before


def test_malformed_lines_are_printed_skipped_and_counted():
    summary, errors = sync(FIXTURES / "broken.csv", timezone="Europe/Moscow")
    assert summary == "sync_cdr: 3 rows, 3 calls: 3 created, 0 closed, 0 unchanged, 5 lines skipped"
    assert errors[0] == "line 2: bad quoting (unexpected end of data)"
    assert [line.split(":")[0] for line in errors] == ["line 2", "line 4", "line 5", "line 6", "line 7"]
    assert Call.objects.get(phone="+74957894561").started_at == datetime(2025, 3, 14, 10, 0, tzinfo=MOSCOW)


def test_since_limits_the_calls_to_those_from_that_day_on():
    summary, _ = sync(FIXTURES / "simulator.csv", since="2025-03-15", timezone="Europe/Moscow")
    assert summary == "sync_cdr: 0 rows, 0 calls: 0 created, 0 closed, 0 unchanged, 0 lines skipped"
    summary, _ = sync(FIXTURES / "simulator.csv", since="2025-03-14", timezone="Europe/Moscow")
    assert summary == "sync_cdr: 17 rows, 11 calls: 11 created, 0 closed, 0 unchanged, 0 lines skipped"


@pytest.mark.parametrize("args, message", [
    (["nowhere/Master.csv"], "cannot read nowhere/Master.csv: No such file or directory"),
    (["--dsn", "postgres://nobody@127.0.0.1:1/cdr"], "cannot read the CDR table: connection failed:"),
    ([], "give either the path of Master.csv or --dsn"),
    (["Master.csv", "--since", "14.03.2025"], "--since must be a date, YYYY-MM-DD; got '14.03.2025'"),
    (["Master.csv", "--timezone", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
])
def test_a_source_that_cannot_be_read_is_one_clear_error(args, message):
    with pytest.raises(CommandError) as error:
        sync(*args)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)
    assert not Call.objects.exists()


# (b) CDR tables in PostgreSQL: cdr_pgsql's classic one and Asterisk's Alembic one.

CLASSIC = """CREATE TABLE {table} (calldate timestamp NOT NULL, clid varchar(80), src varchar(80), dst varchar(80),
    dcontext varchar(80), channel varchar(80), dstchannel varchar(80), lastapp varchar(80), lastdata varchar(80),
    duration int, billsec int, disposition varchar(45), amaflags int, accountcode varchar(20), uniqueid varchar(150),
    userfield varchar(255))"""
ALEMBIC = """CREATE TABLE {table} (id serial PRIMARY KEY, accountcode varchar(80), src varchar(80), dst varchar(80),
    dcontext varchar(80), clid varchar(80), channel varchar(80), dstchannel varchar(80), lastapp varchar(80),
    lastdata varchar(80), start {time}, answer {time}, "end" {time}, duration int, billsec int, disposition varchar(45),
    amaflags varchar(45), userfield varchar(256), uniqueid varchar(150), linkedid varchar(150), peeraccount varchar(80),
    sequence int)"""
# (uniqueid, linkedid, dstchannel, start, answer, end, duration, billsec, disposition): an answered call, a missed one
CALLS = [
    ("9.1", "9.1", "PJSIP/100-00000002", "10:00:00", "10:00:05", "10:01:05", 65, 60, "ANSWERED"),
    ("9.3", "9.3", "PJSIP/100-00000004", "11:00:00", None, "11:00:20", 20, 0, "NO ANSWER"),
    ("9.3", "9.3", "PJSIP/101-00000005", "11:00:00", None, "11:00:20", 20, 0, "NO ANSWER"),
]


@pytest.fixture
def cdr_table():
    needs(connection.vendor == "postgresql", "CDR tables are read from PostgreSQL: set DATABASE_URL")
    name = f"CDR-{uuid.uuid4().hex[:8]}"  # a name that needs quoting
    yield name
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE IF EXISTS "{name}"')


def insert(table, columns, values):
    with connection.cursor() as cursor:
        cursor.executemany(f'INSERT INTO "{table}" ({columns}) VALUES ({", ".join(["%s"] * len(values[0]))})', values)


def assert_two_calls_from_the_table():
    calls = {call.linkedid: call for call in Call.objects.select_related("operator")}
    answered, missed = calls["9.1"], calls["9.3"]
    assert (answered.direction, answered.disposition, answered.phone, answered.extension) == ("in", "answered", "+74957894561", "100")
    assert (answered.started_at, answered.answered_at, answered.ended_at) == (
        datetime(2025, 3, 14, 10, 0, tzinfo=MOSCOW), datetime(2025, 3, 14, 10, 0, 5, tzinfo=MOSCOW),
        datetime(2025, 3, 14, 10, 1, 5, tzinfo=MOSCOW),
    )
    assert (answered.duration, answered.billsec, answered.operator.username, answered.source) == (65, 60, "operator1", "cdr")
    assert (missed.disposition, missed.extension, missed.answered_at, missed.duration, missed.billsec) == ("no_answer", "100", None, 20, 0)


def test_a_classic_cdr_pgsql_table_without_linkedid_is_read(cdr_table, operators):
    with connection.cursor() as cursor:
        cursor.execute(CLASSIC.format(table=f'"{cdr_table}"'))
    insert(cdr_table, "calldate, src, dst, channel, dstchannel, duration, billsec, disposition, amaflags, uniqueid", [
        (f"2025-03-14 {start}", "84957894561", "74951234500", "PJSIP/trunk-00000001", dstchannel, duration, billsec,
         disposition, 3, uniqueid)
        for uniqueid, _, dstchannel, start, _, _, duration, billsec, disposition in CALLS
    ])
    dsn = database_url(connection.settings_dict)

    summary, _ = sync("--dsn", dsn, "--table", f"public.{cdr_table}", timezone="Europe/Moscow")

    assert summary == "sync_cdr: 3 rows, 2 calls: 2 created, 0 closed, 0 unchanged"
    assert_two_calls_from_the_table()
    summary, _ = sync("--dsn", dsn, "--table", cdr_table, "--since", "2025-03-15", timezone="Europe/Moscow")
    assert summary == "sync_cdr: 0 rows, 0 calls: 0 created, 0 closed, 0 unchanged"


@pytest.mark.parametrize("column_type, offset", [("timestamp", ""), ("timestamptz", "+03")])
def test_an_alembic_cdr_table_is_read_with_or_without_time_zones(cdr_table, operators, column_type, offset):
    with connection.cursor() as cursor:
        cursor.execute(ALEMBIC.format(table=f'"{cdr_table}"', time=column_type))
    day = "2025-03-14 "
    insert(cdr_table, 'src, dst, channel, dstchannel, start, answer, "end", duration, billsec, disposition, amaflags, uniqueid, linkedid, sequence', [
        ("84957894561", "74951234500", "PJSIP/trunk-00000001", dstchannel, day + start + offset,
         day + answer + offset if answer else None, day + end + offset, duration, billsec, disposition, "DOCUMENTATION",
         uniqueid, linkedid, sequence)
        for sequence, (uniqueid, linkedid, dstchannel, start, answer, end, duration, billsec, disposition) in enumerate(CALLS)
    ])

    summary, _ = sync("--dsn", database_url(connection.settings_dict), "--table", cdr_table, timezone="Europe/Moscow")

    assert summary == "sync_cdr: 3 rows, 2 calls: 2 created, 0 closed, 0 unchanged"
    assert_two_calls_from_the_table()


def test_a_missing_table_is_one_clear_error(cdr_table):
    with pytest.raises(CommandError, match=f"^cannot read the CDR table: no table {cdr_table}$"):
        sync("--dsn", database_url(connection.settings_dict), "--table", cdr_table)


# (c) The periodic run over the configured source, (d) its Celery task, and the embedded mode's timer.

def cdr_line(linkedid, *, hours_ago):
    start = time.time() - hours_ago * 3600
    return csv_line(Cdr(
        src="84957894561", dst="74951234500", dcontext="from-trunk", clid='"" <84957894561>',
        channel="PJSIP/trunk-00000001", dstchannel="PJSIP/100-00000002", lastapp="Dial", lastdata="PJSIP/100,30",
        start=start, answer=start + 5, end=start + 65, disposition="ANSWERED", uniqueid=linkedid, linkedid=linkedid,
        sequence=1,
    ))


@pytest.fixture
def configured_csv(settings, tmp_path):
    path = tmp_path / "Master.csv"
    path.write_text(cdr_line("recent.1", hours_ago=1) + cdr_line("old.1", hours_ago=48))  # the window is 24 h
    settings.CDR_CSV, settings.CDR_DSN = str(path), ""
    settings.CDR_TIMEZONE = settings.TIME_ZONE  # the lines were written in this process's local time
    return path


def test_the_periodic_run_reconciles_the_recent_calls_of_the_configured_csv(configured_csv, caplog):
    caplog.set_level(logging.INFO, logger="telephony.reconcile")
    with configured_csv.open("a") as handle:
        handle.write('"broken\n' * 25)

    assert cdr_reconcile_recent() == {"created": 1, "closed": 0, "unchanged": 0}

    call = Call.objects.get()
    assert (call.linkedid, call.disposition, call.duration, call.billsec) == ("recent.1", "answered", 65, 60)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 21
    assert warnings[0] == f"{configured_csv}: line 3: bad quoting (unexpected end of data)"
    assert warnings[-1] == f"{configured_csv}: 5 more malformed lines"
    assert caplog.records[-1].getMessage() == (
        f"CDR reconciled from {configured_csv}: 1 rows, 1 calls: 1 created, 0 closed, 0 unchanged"
    )
    assert cdr_reconcile_recent() == {"created": 0, "closed": 0, "unchanged": 1}


def test_the_periodic_run_does_nothing_without_a_source(settings):
    settings.CDR_CSV, settings.CDR_DSN = "", ""
    assert cdr_reconcile_recent() is None


@pytest.mark.parametrize("csv, dsn", [("/nowhere/Master.csv", ""), ("", "postgres://nobody@127.0.0.1:1/cdr")])
def test_the_periodic_run_logs_one_error_for_a_source_it_cannot_read(settings, caplog, csv, dsn):
    settings.CDR_CSV, settings.CDR_DSN = csv, dsn
    assert cdr_reconcile_recent() is None
    errors = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR
    assert errors[0].getMessage().startswith(f"CDR not read from {csv or 'table cdr'}: ")
    assert errors[0].exc_info is None


def test_a_csv_the_pbx_has_not_created_yet_is_a_warning_not_an_error(settings, caplog, tmp_path):
    settings.CDR_CSV, settings.CDR_DSN = str(tmp_path / "Master.csv"), ""  # a fresh PBX: the directory, no call yet
    assert cdr_reconcile_recent() is None
    complaints = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.levelno for record in complaints] == [logging.WARNING]
    assert "does not exist yet" in complaints[0].getMessage()


def test_the_celery_task_runs_the_periodic_reconciliation(configured_csv):
    assert reconcile_cdr() == {"created": 1, "closed": 0, "unchanged": 0}
    assert Call.objects.get().linkedid == "recent.1"


def test_the_embedded_timer_reconciles_until_stopped(configured_csv):
    stop = threading.Event()
    thread = threading.Thread(target=reconcile_periodically, args=(stop, 0.05))
    thread.start()
    try:
        wait_for(lambda: Call.objects.filter(linkedid="recent.1").exists())
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_the_embedded_mode_reconciles_from_a_fresh_simulator_file(settings, tmp_path):
    settings.CDR_TIMEZONE = "UTC"
    path = tmp_path / "var" / "Master.csv"
    path.parent.mkdir()
    path.write_text(cdr_line("earlier-run.1", hours_ago=1))
    use_simulator_cdr(path)
    assert (settings.CDR_CSV, settings.CDR_TIMEZONE) == (str(path), settings.TIME_ZONE)
    assert path.read_text() == "" and "earlier-run.1" in path.with_name("Master.csv.old").read_text()
    assert cdr_reconcile_recent() == {"created": 0, "closed": 0, "unchanged": 0}


def test_reconciliations_running_at_once_write_each_call_once(tmp_path):
    path = tmp_path / "Master.csv"
    shutil.copy(FIXTURES / "simulator.csv", path)
    rows_read, _ = read_csv(path, tz="Europe/Moscow")
    calls = calls_from_cdr(rows_read, region="RU", extension_pattern=r"^\d{2,6}$")
    failures = []

    def reconcile():
        try:
            cdr_reconcile(calls=calls)
        except Exception as error:  # reported below, with the main thread's assertion
            failures.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reconcile) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert Call.objects.count() == len(calls) == 11
