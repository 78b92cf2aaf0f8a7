import datetime
import json
import os
import statistics
import time

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test import Client as Browser
from django.test.utils import override_settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from clients.demo import FEMALE, MALE
from clients.models import Client
from history.models import Call, Recording
from history.recordings import PAGE_SIZE, recordings_report, recordings_totals

# Everything this command makes carries these marks, so it lives beside real data and is found again.
LINKEDID = "bench-history."
CARD = "BENCH-HISTORY-"
USERNAME = "bench_history_"
OPERATORS = 20
CLIENTS = 2000
DAYS = 730
BATCH = 100_000
TARGETS_MS = {"recordings_report": {"target": 500, "aim": 100}, "client_history": {"target": 100, "aim": 20}}

CALLS_SQL = """
WITH calls AS (
    INSERT INTO history_call (linkedid, direction, disposition, phone, extension, operator_id, client_id, caller_kind,
                              started_at, answered_at, ended_at, duration, billsec, comment, registered_at, source)
    SELECT %(linkedid)s || i,
           CASE WHEN i %% 3 = 0 THEN 'out' ELSE 'in' END,
           CASE WHEN missed THEN 'no_answer' ELSE 'answered' END,
           '+7916' || lpad(((i::bigint * 7919) %% 10000000)::text, 7, '0'),
           (100 + i %% %(operators)s)::text,
           (%(operator_ids)s::bigint[])[1 + i %% %(operators)s],
           CASE WHEN i %% %(every)s = 0 AND i / %(every)s <= %(client_calls)s THEN %(main_client)s
                WHEN i %% 10 < 7 THEN (%(client_ids)s::bigint[])[1 + (i * 31) %% %(clients)s] END,
           CASE WHEN i %% 2 = 0 THEN 'regular' ELSE '' END,
           started, CASE WHEN NOT missed THEN started + interval '8 seconds' END,
           started + make_interval(secs => 30 + i %% 300),
           30 + i %% 300, CASE WHEN missed THEN 0 ELSE 22 + i %% 300 END,
           '', CASE WHEN i %% 2 = 0 THEN started + interval '10 minutes' END, 'ami'
    -- One call in five is missed, picked by a hash so that no operator or client gets only missed calls.
    FROM (SELECT i, %(first)s::timestamptz + make_interval(secs => (i - 1) * %(step)s) AS started, hashint4(i) %% 5 = 0 AS missed
          FROM generate_series(%(start)s::int, %(stop)s::int) AS i) AS numbered
    RETURNING id, operator_id, linkedid, billsec
), rung AS (
    INSERT INTO history_call_rung (call_id, user_id) SELECT id, operator_id FROM calls
)
INSERT INTO history_recording (call_id, file, duration)
SELECT id, 'bench/' || linkedid || '.wav', billsec FROM calls WHERE billsec > 0 AND hashtext(linkedid) & 7 < 3
"""


def percentiles(timings: list[float]) -> dict:
    cuts = statistics.quantiles(timings, n=100, method="inclusive")
    return {"p50": round(cuts[49], 2), "p95": round(cuts[94], 2), "p99": round(cuts[98], 2), "max": round(max(timings), 2)}


def timed(function, repeat: int) -> dict:
    for _ in range(3):  # warm the caches first
        function()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        timings.append((time.perf_counter() - started) * 1000)
    return percentiles(timings)


class Command(BaseCommand):
    help = (
        "PostgreSQL: fill (once, or again with --rebuild) a million calls over two years, ~30%% with a recording, and one "
        "client with 10,000 calls; time the recordings report for a month and that client's history; print JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--calls", type=int, default=1_000_000)
        parser.add_argument("--client-calls", type=int, default=10_000, help="calls of the one client whose history is timed")
        parser.add_argument("--repeat", type=int, default=100)
        parser.add_argument("--rebuild", action="store_true", help="delete this command's data and fill it again")

    def handle(self, *args, calls, client_calls, repeat, rebuild, **options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_history needs PostgreSQL (set DATABASE_URL): it fills a million calls with INSERT … SELECT generate_series.")
        if not 0 < client_calls <= calls:
            raise CommandError("--client-calls must be between 1 and --calls")
        if repeat < 2:
            raise CommandError("--repeat must be at least 2")
        filled_s = None
        if rebuild or not self.built(calls, client_calls):
            started = time.perf_counter()
            self.clear()
            self.fill(calls, client_calls)
            filled_s = round(time.perf_counter() - started, 1)
        supervisor = get_user_model().objects.get(username=f"{USERNAME}supervisor")
        operator = get_user_model().objects.get(username=f"{USERNAME}op01")
        client = Client.objects.get(card_number=f"{CARD}MAIN")
        with override_settings(ALLOWED_HOSTS=["testserver"], DEBUG=False):
            figures = self.measure(supervisor, operator, client, repeat)
        self.stdout.write(json.dumps({
            "database": connection.vendor, "calls": calls, "recordings": Recording.objects.filter(call__linkedid__startswith=LINKEDID).count(),
            "filled_s": filled_s, "repeat": repeat, "load_average": [round(load, 2) for load in os.getloadavg()],
            **figures, "targets_ms": TARGETS_MS,
            "met": {name: figures[name]["ms"]["p99"] < target["target"] for name, target in TARGETS_MS.items()},
        }, ensure_ascii=False))

    def measure(self, supervisor, operator, client, repeat: int) -> dict:
        today = timezone.localdate()
        until = today.replace(day=1) - datetime.timedelta(days=1)  # last month, whole
        since = until.replace(day=1)
        period = {"from": since.isoformat(), "to": until.isoformat()}
        recordings = recordings_report(supervisor, since=since, until=until)
        count = recordings_totals(recordings)["count"]
        browsers = {}
        for user in (supervisor, operator):
            browsers[user] = Browser()
            browsers[user].force_login(user)

        def get(user, url, params, expect: str = ""):
            response = browsers[user].get(url, params)
            if response.status_code != 200 or expect not in response.content.decode():
                raise CommandError(f"{url} answered {response.status_code} without {expect!r}")

        report_url = reverse("history:recordings")
        figures = {"recordings_report": {
            "what": f"GET {report_url} as a supervisor, {since:%d.%m.%Y}–{until:%d.%m.%Y}, first page of 100 with the footer",
            "month_recordings": count,
            "ms": timed(lambda: get(supervisor, report_url, period, f"{count}"), repeat),
            "last_page_ms": timed(lambda: get(supervisor, report_url, period | {"page": str(-(-count // PAGE_SIZE))}), repeat),
            "operator_ms": timed(lambda: get(operator, report_url, period), repeat),
            "queries_only_ms": timed(lambda: (recordings_totals(recordings), list(recordings[:100])), repeat),
        }}
        try:
            history_url = reverse("clients:history", args=[client.pk])
        except NoReverseMatch:
            history_url = None
        if history_url:
            params = {"all": "1", "since": (today - datetime.timedelta(days=DAYS + 1)).isoformat()}
            figures["client_history"] = {
                "what": f"GET {history_url}?all=1&since=… (all {client_calls_of(client)} calls) as a supervisor, first page",
                "ms": timed(lambda: get(supervisor, history_url, params), repeat),
            }
        else:
            calls = Call.objects.filter(client=client).select_related("operator", "reason", "result").order_by("-started_at", "-pk")
            figures["client_history"] = {
                "what": "no /clients/<pk>/history/ yet: the client's calls newest first, a count and the first 50",
                "ms": timed(lambda: (calls.count(), list(calls[:50])), repeat),
            }
        figures["client_history"]["client_calls"] = client_calls_of(client)
        return figures

    def built(self, calls: int, client_calls: int) -> bool:
        client = Client.objects.filter(card_number=f"{CARD}MAIN").first()
        return bool(client) and client_calls_of(client) == client_calls and Call.objects.filter(linkedid__startswith=LINKEDID).count() == calls

    def clear(self) -> None:
        bench_calls = "SELECT id FROM history_call WHERE linkedid LIKE %s"
        like = [f"{LINKEDID}%"]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE history_recordinglisten SET recording_id = NULL WHERE recording_id IN "
                           f"(SELECT id FROM history_recording WHERE call_id IN ({bench_calls}))", like)
            cursor.execute(f"DELETE FROM history_recording WHERE call_id IN ({bench_calls})", like)
            cursor.execute(f"DELETE FROM history_call_rung WHERE call_id IN ({bench_calls})", like)
            cursor.execute("DELETE FROM history_call WHERE linkedid LIKE %s", like)
            Client.objects.filter(card_number__startswith=CARD).delete()
            get_user_model().objects.filter(username__startswith=USERNAME).delete()

    def fill(self, calls: int, client_calls: int) -> None:
        users = get_user_model().objects
        operators = users.bulk_create([
            users.model(username=f"{USERNAME}op{number:02d}", first_name=first, last_name=last)
            for number, (last, first, _) in enumerate(MALE[::97][:OPERATORS], start=1)
        ])
        supervisor = users.create_user(f"{USERNAME}supervisor", first_name="Ольга", last_name="Супервизорова")
        permissions = Permission.objects.filter(content_type__app_label="history", codename__in=["listen_recording", "view_all_calls"])
        supervisor.user_permissions.add(*permissions)
        operators[0].user_permissions.add(*permissions.filter(codename="listen_recording"))
        clients = Client.objects.bulk_create([
            Client(last_name=last, first_name=first, middle_name=middle, card_number=f"{CARD}{index:05d}", phone_mobile=f"+7916{index:07d}")
            for index, (last, first, middle) in enumerate(FEMALE[::7][:CLIENTS])
        ])
        main = Client.objects.create(last_name="Савицкая", first_name="Наталья", middle_name="Геннадьевна", card_number=f"{CARD}MAIN")
        first = timezone.now() - datetime.timedelta(days=DAYS)
        params = {
            "linkedid": LINKEDID, "operators": OPERATORS, "operator_ids": [user.pk for user in operators],
            "clients": len(clients), "client_ids": [client.pk for client in clients], "main_client": main.pk,
            "every": calls // client_calls, "client_calls": client_calls, "first": first, "step": DAYS * 86400 / calls,
        }
        for start in range(1, calls + 1, BATCH):
            stop = min(start + BATCH - 1, calls)
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(CALLS_SQL, params | {"start": start, "stop": stop})
            self.stderr.write(f"{stop} calls")
        with connection.cursor() as cursor:
            for model in (Call, Call.rung.through, Recording, Client):
                cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


def client_calls_of(client: Client) -> int:
    return Call.objects.filter(client=client).count()
