"""The web processes' connection pool (DATABASE_POOL_SIZE) on a real PostgreSQL, under a dropped session."""

import os
import subprocess
import sys
import textwrap

import pytest
from django.conf import settings
from django.db import connection

from simplecalls.env import database_url
from tests.conftest import needs

SCRIPT = textwrap.dedent("""
    import django, psycopg
    django.setup()
    from django.db import connection

    def backend():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    seen = set()
    for _ in range(10):  # ten requests, each giving its connection back at its end
        seen.add(backend())
        connection.close()
    params = connection.get_connection_params()
    params.pop("pool", None)
    with psycopg.connect(**params, autocommit=True) as killer:
        for pid in seen:
            killer.execute("SELECT pg_terminate_backend(%s)", [pid])
    after = backend()
    print(len(seen) <= 2, after not in seen)
""")


@pytest.mark.django_db
def test_a_pooled_connection_is_reused_and_one_the_server_dropped_is_replaced():
    needs(connection.vendor == "postgresql", "the pool is PostgreSQL's")
    environ = os.environ | {
        "DATABASE_URL": database_url(connection.settings_dict), "DATABASE_POOL_SIZE": "2",
        "DJANGO_SETTINGS_MODULE": "simplecalls.settings.base", "DEBUG": "1",
    }
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=environ, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True"], "reused from the pool; a dropped session is not handed out"
