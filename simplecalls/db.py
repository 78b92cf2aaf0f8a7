"""Two ways around the ORM's costs for the few statements on a hot path (the listener's writes, the caller lookup).

Both keep Django's cursor, so the connection is checked or reopened, queries are logged with DEBUG on,
and errors come out as Django's.
"""

import contextlib

from django.db import connection


def server_bound(cursor):
    """Django's cursor, binding on the server on PostgreSQL.

    Django's own cursors bind on the client, which psycopg never prepares; bound on the server, a statement
    run `prepare_threshold` times on a connection is prepared: parsed and planned once per connection.
    """
    if connection.vendor == "postgresql":
        from django.db.backends.postgresql.base import ServerBindingCursor

        cursor.cursor = ServerBindingCursor(connection.connection)
    return cursor


@contextlib.contextmanager
def pipelined():
    """Statements sent one after another without waiting for each reply: one round trip for all of them on PostgreSQL
    (psycopg's pipeline mode); elsewhere each runs as it is sent.

    Read no result inside the block (that waits for it): keep the cursors and read them after it. PostgreSQL still
    runs the statements in order, in the transaction around the block, and the first that fails is raised at its end.
    """
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield
