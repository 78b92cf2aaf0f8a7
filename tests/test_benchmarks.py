"""The benchmark commands run and print their figures (the figures themselves are measured by hand)."""

import io
import json

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args) -> dict:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue())


def test_bench_import_prints_rows_per_second():
    figures = run("bench_import", "--rows", "300")
    assert figures["first_import"]["created"] == 300 and figures["reimport_unchanged"]["unchanged"] == 300
    assert figures["first_import"]["rows_per_second"] > 0


def test_bench_lookup_prints_percentiles():
    figures = run("bench_lookup", "--clients", "400", "--lookups", "50")
    assert figures["clients"] == 400 and 0 < figures["found"] < 50
    assert figures["ms"]["p50"] <= figures["ms"]["p99"] and "plan_uses_phone_indexes" in figures


def test_bench_listener_prints_events_per_second():
    figures = run("bench_listener", "--events", "300")
    assert figures["events"] >= 300 and figures["listener_calls_written"] > 0
    for key in ("stock_pyst2_events_per_s", "telephony_ami_events_per_s", "listener_with_db_events_per_s"):
        assert figures[key] > 0


def test_bench_popup_prints_latency_percentiles(settings):
    from tests.conftest import needs

    needs(bool(settings.REDIS_URL), "bench_popup needs REDIS_URL: its web server and listener are separate processes")
    figures = run("bench_popup", "--operators", "3", "--calls", "6")
    assert figures["popups_received"] == 6
    assert 0 < figures["latency_ms"]["p50"] <= figures["latency_ms"]["p99"]


def test_bench_failover_loses_doubles_and_leaves_open_nothing():
    from django.db import connection

    from tests.conftest import needs

    needs(connection.vendor == "postgresql", "bench_failover runs its listeners as processes that share a PostgreSQL database")
    out = io.StringIO()
    call_command("bench_failover", rate=5, seconds=4, kill_after=2, stdout=out, stderr=io.StringIO())
    figures = json.loads(out.getvalue())
    assert figures["placed"] > 0 and figures["takeover_s"] is not None
    assert figures["lost"] == figures["doubled"] == figures["left_open"] == 0
