"""The benchmark commands run and print their figures (the figures themselves are measured by hand)."""

import io
import json
import os

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args) -> dict:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue())


def test_bench_import_prints_rows_per_second_beside_postgresqls_copy_of_the_same_rows():
    from django.db import connection

    figures = run("bench_import", "--rows", "300")
    assert figures["first_import"]["created"] == 300 and figures["reimport_unchanged"]["unchanged"] == 300
    assert figures["first_import"]["rows_per_second"] > 0 and figures["target"]["rows_per_second"] == 50_000
    if connection.vendor == "postgresql":
        assert figures["floor"]["copy_plain_rows_per_second"] > 0 and figures["floor"]["copy_into_clients_rows_per_second"] > 0
        assert figures["ratio"]["first_import_vs_copy_plain"] > 0
    else:
        assert figures["floor"] is None, "COPY is PostgreSQL's"


def test_bench_import_can_import_into_a_filled_base_and_price_each_index():
    from django.db import connection

    figures = run("bench_import", "--rows", "200", "--clients", "300", "--index-costs")
    assert figures["clients_before"] >= 300 and figures["first_import"]["created"] == 200
    assert set(figures["first_import"]["breakdown_seconds"]) == {"reading", "matching", "writing", "late_binding"}
    assert figures["first_import"]["cpu_seconds"]["python"] > 0
    if connection.vendor == "postgresql":
        costs = figures["floor"]["microseconds_per_row_by_index"]
        assert {"client_mobile_rev_idx", "client_search_card_idx"} <= set(costs) and figures["floor"]["indexes"] == len(costs) - 1


def test_bench_lookup_prints_percentiles_beside_the_bare_drivers_on_the_same_numbers():
    figures = run("bench_lookup", "--clients", "400", "--lookups", "50")
    assert figures["clients"] == 400 and 0 < figures["found"] < 50
    assert figures["ms"]["p50"] <= figures["ms"]["p99"] and "plan_uses_phone_indexes" in figures
    assert 0 < figures["floor"]["ms"]["p50"] <= figures["floor"]["ms"]["p99"]
    assert figures["ratio"]["p99"] == round(figures["ms"]["p99"] / figures["floor"]["ms"]["p99"], 2)


def test_bench_listener_prints_events_per_second_beside_panoramisk_and_stock_pyst2_with_the_ratios():
    figures = run("bench_listener", "--events", "300", "--rounds", "1")
    assert figures["events"] >= 300 and figures["listener_calls_written"] > 0
    for key in ("stock_pyst2_events_per_s", "telephony_ami_events_per_s", "listener_with_db_events_per_s"):
        assert figures[key] > 0
    product, floor, ratio = figures["product"], figures["floor"], figures["ratio"]
    assert product["parse_events_per_s"] > 0 and floor["panoramisk_parse_events_per_s"] > 0 and floor["stock_pyst2_parse_events_per_s"] > 0
    assert ratio["parse_vs_panoramisk"] == round(product["parse_events_per_s"] / floor["panoramisk_parse_events_per_s"], 2)
    assert set(ratio) >= {"parse_cpu_vs_panoramisk", "parse_and_reduce_vs_panoramisk", "parse_vs_stock_pyst2"}
    assert figures["target"]["met"] == (ratio["parse_vs_panoramisk"] >= figures["target"]["parse_vs_panoramisk_at_least"])


def test_bench_popup_prints_latency_percentiles(settings):
    from tests.conftest import needs

    needs(bool(settings.REDIS_URL), "bench_popup needs REDIS_URL: its web server and listener are separate processes")
    figures = run("bench_popup", "--operators", "3", "--calls", "6", "--warm-up", "4")
    assert figures["popups_received"] == 6 and figures["warm_up_calls"] == 4, "the warm-up's pop-ups are not counted"
    assert 0 < figures["latency_ms"]["p50"] <= figures["latency_ms"]["p99"]
    floor = figures["floor"]
    for name in ("group_send_to_socket_ms", "channel_layer_round_trip_ms"):
        assert 0 < floor[name]["p50"] <= floor[name]["p99"], name
    assert figures["ratio"]["p99"] == round(figures["latency_ms"]["p99"] / floor["group_send_to_socket_ms"]["p99"], 1)
    assert figures["target"]["met"] == (figures["latency_ms"]["p99"] <= figures["target"]["p99_ms"])
    cpu = figures["cpu_per_call_ms"]
    assert cpu["listener"]["cpu"] > 0 and cpu["web"]["cpu"] > 0 and cpu["bench"]["cpu"] > 0, "the processes that carried the calls used a CPU"
    parts = [part for part in cpu.values() if isinstance(part, dict)]
    assert {"database", "redis"} <= cpu.keys() and all(part["waiting_for_a_core"] >= 0 for part in parts)
    assert cpu["total_cpu"] == pytest.approx(sum(part["cpu"] for part in parts), abs=0.01) and cpu["cores"] == os.cpu_count()
    stages = figures["listener_ms_per_call"]
    assert all(stages[stage] > 0 for stage in ("reducing", "reading", "writing", "telling")), "each call went through every stage"
    assert stages["events_per_call"] >= 2 and stages["calls_per_batch"] >= 1


def test_bench_failover_loses_doubles_and_leaves_open_nothing():
    from django.db import connection

    from tests.conftest import needs

    needs(connection.vendor == "postgresql", "bench_failover runs its listeners as processes that share a PostgreSQL database")
    out = io.StringIO()
    call_command("bench_failover", rate=5, seconds=4, kill_after=2, stdout=out, stderr=io.StringIO())
    figures = json.loads(out.getvalue())
    assert figures["placed"] > 0 and figures["takeover_s"] is not None
    assert figures["lost"] == figures["doubled"] == figures["left_open"] == 0


def test_bench_dialplan_prints_both_endpoints_beside_the_floor():
    from django.db import connection

    from tests.conftest import needs

    needs(connection.vendor == "postgresql", "bench_dialplan measures PostgreSQL")
    figures = run("bench_dialplan", "--clients", "300", "--requests", "60", "--concurrency", "5", "--web", "2")
    assert figures["web_processes"] == 2 and figures["product"]["route"]["daphne_cpu_ms_per_request"] >= 0
    for part in ("product", "floor"):
        for name in ("route", "callerid"):
            assert 0 < figures[part][name]["p50"] <= figures[part][name]["p99"]
            assert figures[part]["one_at_a_time"][name]["p50"] > 0
    assert figures["product"]["callerid"]["answered"] == figures["floor"]["callerid"]["answered"] == figures["callers_known"] > 0
    assert 0 < figures["product"]["route"]["answered"] <= figures["callers_known"]
    assert figures["ratio"]["route_p99"] > 0 and figures["target"]["p99_ms"] == 20
