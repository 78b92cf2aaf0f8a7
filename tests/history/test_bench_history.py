import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from history.models import Call, Recording
from tests.conftest import needs

pytestmark = pytest.mark.django_db(transaction=True)


def test_bench_history_refuses_sqlite():
    if connection.vendor == "postgresql":
        pytest.skip("this is about SQLite")
    with pytest.raises(CommandError, match="PostgreSQL"):
        call_command("bench_history", calls=100, client_calls=10, repeat=2, stdout=io.StringIO())


def test_bench_history_fills_once_and_prints_the_figures_against_their_targets():
    needs(connection.vendor == "postgresql", "bench_history fills its calls with PostgreSQL's generate_series")

    def run(*args) -> dict:
        out = io.StringIO()
        call_command("bench_history", "--calls", "2000", "--client-calls", "100", "--repeat", "2", *args, stdout=out, stderr=io.StringIO())
        return json.loads(out.getvalue())

    figures = run()
    assert figures["calls"] == Call.objects.count() == 2000 and figures["filled_s"] is not None
    assert 500 <= figures["recordings"] == Recording.objects.count() <= 700  # about 30%
    assert figures["client_history"]["client_calls"] == 100
    for name in ("recordings_report", "client_history"):
        assert 0 < figures[name]["ms"]["p50"] <= figures[name]["ms"]["max"] and name in figures["met"]
    assert run()["filled_s"] is None  # kept for the next run
    assert run("--rebuild")["filled_s"] is not None and Call.objects.count() == 2000
