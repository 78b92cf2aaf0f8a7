"""bench_load runs the whole stack small and finds nothing lost; its figures are measured by hand (deploy/README.md)."""

import io
import json
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.utils import timezone

from history.models import Call
from telephony.management.commands._bench_load_pbx import plan
from telephony.management.commands.bench_load import lost
from telephony.models import Operator

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_pbx_rings_the_operators_in_turn_and_every_fifth_caller_gives_up():
    calls = [plan(index, ["6000", "6001", "6002"]) for index in range(10)]
    assert [call["extension"] for call in calls] == ["6000", "6001", "6002"] * 3 + ["6000"]
    assert [call["disposition"] for call in calls] == ["answered"] * 4 + ["no_answer"] + ["answered"] * 4 + ["no_answer"]
    assert {call["scenario"] for call in calls} == {"inbound_answered", "inbound_missed"}


def test_a_placed_call_is_lost_without_its_row_left_open_or_ended_otherwise_than_the_pbx_played():
    now = timezone.now()
    for linkedid, disposition, ended_at in [("ok", "answered", now), ("open", "answered", None), ("other", "no_answer", now)]:
        Call.objects.create(linkedid=linkedid, direction="in", disposition=disposition, phone="+74957894561", started_at=now, ended_at=ended_at)
    placed = {linkedid: {"disposition": "answered"} for linkedid in ("ok", "open", "other", "gone")}
    assert lost(placed) == Counter(no_row=1, not_ended=1, wrong_disposition=1)


def test_it_refuses_to_run_without_postgresql_and_redis(settings):
    settings.REDIS_URL = ""
    with pytest.raises(CommandError, match="REDIS_URL"):
        call_command("bench_load", "--operators", "1", "--seconds", "1")


def test_it_refuses_extensions_that_belong_to_real_operators(settings, django_user_model):
    from django.db import connection

    from tests.conftest import needs

    needs(connection.vendor == "postgresql" and bool(settings.REDIS_URL), "bench_load needs PostgreSQL and Redis")
    Operator.objects.create(user=django_user_model.objects.create_user("anna"), extension="6001", channel="PJSIP/6001")
    with pytest.raises(CommandError, match="6001"):
        call_command("bench_load", "--operators", "3", "--seconds", "1", stdout=io.StringIO(), stderr=io.StringIO())
    assert list(django_user_model.objects.values_list("username", flat=True)) == ["anna"]


def test_a_small_run_through_the_whole_stack_pops_up_every_call_loses_none_and_cleans_up(settings):
    from django.db import connection

    from tests.conftest import needs

    needs(connection.vendor == "postgresql" and bool(settings.REDIS_URL), "bench_load runs the stack as processes on PostgreSQL and Redis")
    out = io.StringIO()
    call_command("bench_load", "--operators", "5", "--rate", "5", "--seconds", "3", "--settle", "30", stdout=out, stderr=io.StringIO())
    figures = json.loads(out.getvalue())
    assert figures["calls_placed"] == figures["popups_received"] == 15
    assert figures["errors"] == 0 and set(figures["errors_by_kind"]) >= {"socket_drops", "missing_popups", "misdelivered_popups", "http_failed"}
    assert figures["calls_lost"] == 0 and set(figures["calls_lost_by_kind"]) == {"no_row", "not_ended", "wrong_disposition"}
    assert figures["http_requests_ok"] == 30  # each pop-up's form opened, and closed when its call ended
    for latency in (figures["popup_latency_ms"], figures["form_requests_ms"]):
        assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    names = {"pbx", "daphne-1", "daphne-2", "worker", "worker-child-1", "beat", "listener-1", "listener-2", "bench (the pages)"}
    assert names <= set(figures["rss_mb"])
    assert all(figures["rss_mb"][name]["start"] > 0 and figures["rss_mb"][name]["end"] > 0 for name in names)
    assert len(figures["load_average"]["start"]) == 3 and figures["parameters"]["operators"] == 5
    assert not get_user_model().objects.exists() and not Operator.objects.exists()
    assert not Call.objects.exists() and not Session.objects.exists()
