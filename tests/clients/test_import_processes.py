"""`import_clients` as an administrator runs it, a process of its own on PostgreSQL: killed, frozen, or run twice at once."""

import os
import signal
import sys

import pytest
from django.db import connection
from django.db.models import Count

from clients.models import Client
from simplecalls.env import database_url
from telephony.management.commands.bench_failover import Process, wait_until
from tests.conftest import needs

pytestmark = pytest.mark.django_db(transaction=True)

WAITING = "another import is running"


@pytest.fixture
def start_import(tmp_path):
    """Runs `import_clients <file>` as a process on the test database; every one started is stopped at teardown."""
    needs(connection.vendor == "postgresql", "the import's processes share a PostgreSQL database")
    processes = []

    def start(path, name: str) -> Process:
        environ = os.environ | {"PYTHONUNBUFFERED": "1", "DATABASE_URL": database_url(connection.settings_dict)}
        process = Process(name, [sys.executable, "manage.py", "import_clients", str(path)], workdir=tmp_path, environ=environ)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()


def clients_file(path, numbers: range, name: str = "Петров"):
    """A client a line, each with a card and a mobile number of its own."""
    path.write_text("last_name,phone_mobile,card_number\n" + "".join(f"{name}{n},89{n:09d},C-{n}\n" for n in numbers), encoding="utf-8")
    return path


def streaming() -> bool:
    """Whether a session is sending new clients by COPY now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY%%' AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0] > 0


def finished(process: Process, timeout: float = 60) -> str:
    assert wait_until(lambda: not process.alive(), timeout), f"{process.name} did not end:\n{process.log()[-2000:]}"
    assert process.popen.returncode == 0, process.log()[-2000:]
    return process.log()


def test_an_import_killed_while_it_streams_keeps_nothing_and_the_next_one_runs(start_import, tmp_path):
    killed = start_import(clients_file(tmp_path / "big.csv", range(150_000)), "killed")
    assert wait_until(streaming, 60, every=0.02), killed.log()[-2000:]
    killed.signal(signal.SIGKILL)
    # The server sees the client gone, rolls its transaction back and lets the import lock go.
    assert wait_until(lambda: not streaming(), 30)
    assert not Client.objects.exists()

    out = finished(start_import(clients_file(tmp_path / "small.csv", range(1000)), "next"))
    assert "1000 created" in out and WAITING not in out
    assert Client.objects.count() == 1000


def test_an_import_started_while_another_is_frozen_waits_for_it_and_then_finds_its_clients(start_import, tmp_path):
    first = start_import(clients_file(tmp_path / "first.csv", range(100_000)), "first")
    assert wait_until(streaming, 60, every=0.02), first.log()[-2000:]
    first.signal(signal.SIGSTOP)
    # The second file holds 1,000 of the first one's clients (by card, renamed) and 1,000 of its own.
    second = start_import(clients_file(tmp_path / "second.csv", range(99_000, 101_000), name="Сидоров"), "second")
    assert wait_until(lambda: WAITING in second.log(), 30), second.log()[-2000:]
    assert second.alive() and not Client.objects.exists(), "nothing is written while the first is frozen"

    first.signal(signal.SIGCONT)
    assert "100000 created" in finished(first)
    assert "1000 created, 1000 updated" in finished(second)
    assert Client.objects.count() == 101_000
    assert not Client.objects.values("card_number").annotate(n=Count("pk")).filter(n__gt=1).exists(), "no card was made twice"
    assert Client.objects.filter(last_name__startswith="Сидоров").count() == 2000


def test_two_imports_of_one_file_at_once_make_each_client_once(start_import, tmp_path):
    path = clients_file(tmp_path / "same.csv", range(30_000))
    outputs = [finished(process) for process in [start_import(path, "one"), start_import(path, "two")]]
    assert sorted("30000 created" in out for out in outputs) == [False, True], outputs
    assert any("30000 unchanged" in out for out in outputs), outputs
    assert Client.objects.count() == 30_000
