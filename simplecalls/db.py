"""Two ways around the ORM's costs for the few statements on a hot path (the listener's writes, the caller lookup).

Both keep Django's cursor, so the connection is checked or reopened, queries are logged with DEBUG on,
and errors come out as Django's.
"""

import contextlib
from collections.abc import Iterable

from django.db import connection, transaction


def server_bound(cursor):
    """Django's cursor, binding on the server on PostgreSQL.

    Django's own cursors bind on the client, which psycopg never prepares; bound on the server, a statement
    run `prepare_threshold` times on a connection is prepared: parsed and planned once per connection.
    """
    if connection.vendor == "postgresql":
        from django.db.backends.postgresql.base import ServerBindingCursor

        cursor.cursor = ServerBindingCursor(connection.connection)
    return cursor


def array_literal(values: Iterable) -> str:
    """PostgreSQL's text form of an array of these values (strings, numbers, booleans, dates and times; None as NULL),
    for a parameter cast to the array's type: the driver's dumping of a list, element by element in Python, costs more
    than the statement it goes with."""
    return "{" + ",".join("NULL" if value is None else '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values) + "}"


@contextlib.contextmanager
def pipelined_transaction(*, writes: bool = True):
    """One transaction whose statements are sent without waiting for each reply (psycopg's pipeline mode on PostgreSQL).

    Read no result inside the block unless the next statements need it: reading one waits for it. Keep the cursors and
    read them after the block. On its own, the block is the implicit transaction PostgreSQL keeps up to the Sync that
    ends a pipeline: no BEGIN or COMMIT to send, every statement committed by that Sync, or all of them rolled back on
    the first that fails, which is raised at the end of the block. (Django's `atomic` would add two round trips: psycopg
    waits for the pipeline to drain as autocommit is switched off and on again.) Inside another transaction, a
    savepoint; elsewhere than PostgreSQL, `atomic`, each statement run as it is sent. `writes=False` for a block that
    only reads: it has no foreign key to check, and saves a statement.
    """
    if connection.vendor != "postgresql":
        with transaction.atomic():
            yield
        return
    connection.ensure_connection()
    if connection.in_atomic_block:
        with transaction.atomic(), connection.wrap_database_errors, connection.connection.pipeline():
            yield
        return
    with connection.wrap_database_errors, connection.connection.pipeline():
        if not writes:
            yield
            return
        # Django's foreign keys are checked at commit; a commit refused at the Sync is an error psycopg cannot pair with
        # any statement, which leaves the connection unusable. Checked at each statement, the error is that statement's.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        yield
