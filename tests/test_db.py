"""`simplecalls.db`: statements sent together still commit, or roll back, together; arrays spelled out arrive intact."""

import datetime

import pytest
from django.db import IntegrityError, connection, transaction

from history.models import Call
from simplecalls.db import array_literal, pipelined_transaction, server_bound
from tests.conftest import needs


def rows() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT x FROM pipelined ORDER BY x")
        return [x for x, in cursor.fetchall()]


def insert(*values: int) -> None:
    with server_bound(connection.cursor()) as cursor:
        cursor.execute(f"INSERT INTO pipelined VALUES {', '.join(['(%s)'] * len(values))}", list(values))


@pytest.fixture
def table():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE pipelined (x integer PRIMARY KEY)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE pipelined")


@pytest.mark.django_db(transaction=True)
def test_what_is_read_inside_sees_what_was_sent_before_and_everything_commits_at_the_end(table):
    with pipelined_transaction():
        insert(1, 2)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pipelined")
            assert cursor.fetchone() == (2,)
        insert(3)
    assert rows() == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_the_first_statement_that_fails_rolls_back_every_one_before_it(table):
    with pytest.raises(IntegrityError), pipelined_transaction():
        insert(1)
        insert(2, 1)
        insert(3)
    assert rows() == []
    with pipelined_transaction():  # the connection goes on as if nothing happened
        insert(4)
    assert rows() == [4]


@pytest.mark.django_db(transaction=True)
def test_a_foreign_key_refused_is_the_statements_error_and_the_connection_stays_usable():
    needs(connection.vendor == "postgresql", "the pipeline is psycopg's")
    with pytest.raises(IntegrityError), pipelined_transaction():
        with connection.cursor() as cursor:  # Django's keys are checked at commit unless told otherwise
            cursor.execute(
                "INSERT INTO history_call (linkedid, direction, disposition, phone, extension, operator_id, started_at, duration, billsec,"
                " source, caller_kind, comment) VALUES ('fk.1', 'in', 'ringing', '', '', 999999, now(), 0, 0, 'ami', '', '')"
            )
    assert not Call.objects.exists()


@pytest.mark.django_db
def test_inside_another_transaction_a_failure_undoes_only_its_own_statements(table):
    insert(1)
    with pytest.raises(IntegrityError), pipelined_transaction():
        insert(2)
        insert(1)
    assert rows() == [1]
    with transaction.atomic():
        insert(5)
    assert rows() == [1, 5]


@pytest.mark.django_db
def test_an_array_literal_brings_back_every_value_as_it_was():
    needs(connection.vendor == "postgresql", "the literal is PostgreSQL's")
    texts = ['a "quoted" \\ back,slash {brace}', "", "NULL", " spaced ", "Иванов", "1732711200.42", None]
    moments = [datetime.datetime(2026, 12, 6, 11, 0, 57, 86235, tzinfo=datetime.UTC),
               datetime.datetime(2026, 12, 6, 14, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=3))), None]
    with server_bound(connection.cursor()) as cursor:
        cursor.execute("SELECT %s::varchar[], %s::timestamptz[], %s::integer[], %s::boolean[]",
                       [array_literal(texts), array_literal(moments), array_literal([7, None, -1]), array_literal([True, False])])
        assert cursor.fetchone() == (texts, moments, [7, None, -1], [True, False])
