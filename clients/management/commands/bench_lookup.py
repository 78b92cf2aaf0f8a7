import json
import random
import sqlite3
import statistics
import time

import psycopg
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from clients.demo import FEMALE, MALE, mobile_digits, phone_typed
from clients.bulk import insert_clients
from clients.models import Client
from clients.phones import phone_normalize
from clients.services import phone_params, caller_statement, client_find_by_phone, clients_with_phone

PREFIX = "LOOKUP-"
# Numbers of their own, so bench_import's generated clients do not all match these.
NUMBERS_FROM = 50_000_000
TARGET_P99_MS = 1.0


class Command(BaseCommand):
    help = (
        "Fill the base up to N clients (kept between runs), time client_find_by_phone on typed caller IDs and, "
        "interleaved on the same numbers, the floor: the same statement on a bare driver connection; print JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=1_000_000)
        parser.add_argument("--lookups", type=int, default=5000)

    def handle(self, *args, clients, lookups, **options):
        have = Client.objects.filter(card_number__startswith=PREFIX).count()
        if have < clients:
            self.fill(have, clients)
        rng = random.Random(5)
        # About half the numbers are nobody's.
        typed = [phone_typed(rng, mobile_digits(NUMBERS_FROM + rng.randrange(clients * 2))) for _ in range(lookups)]
        floor_query = self.floor_query()
        product, floor, found = [], [], 0
        for number in typed:  # interleaved, so that both feel the same load on the machine
            started = time.perf_counter()
            found += bool(client_find_by_phone(number))
            product.append((time.perf_counter() - started) * 1000)
            e164 = phone_normalize(number)
            started = time.perf_counter()
            floor_query(e164)
            floor.append((time.perf_counter() - started) * 1000)
        product_ms, floor_ms = percentiles(product), percentiles(floor)
        plan = clients_with_phone("+79161234567").explain()
        self.stdout.write(json.dumps({
            "clients": Client.objects.count(), "lookups": lookups, "found": found, "database": connection.vendor,
            "ms": product_ms,
            "floor": {"what": "the same statement (clients_with_phone's SQL) on a bare driver connection, prepared, numbers already E.164",
                      "ms": floor_ms},
            "ratio": {name: round(product_ms[name] / floor_ms[name], 2) for name in ("p50", "p99")},
            "target": {"p99_ms": TARGET_P99_MS, "met": product_ms["p99"] <= TARGET_P99_MS},
            "plan_uses_phone_indexes": all(f"client_{name}_rev_idx" in plan for name in ("mobile", "home", "work")),
        }))

    def floor_query(self):
        """The lookup's statement through the driver alone: no ORM, no models, no normalising."""
        sql = caller_statement(True)
        if connection.vendor == "postgresql":
            params = connection.get_connection_params()
            bare = psycopg.connect(**{key: params[key] for key in ("dbname", "user", "password", "host", "port") if key in params},
                                   autocommit=True)
            return lambda e164: bare.execute(sql, phone_params({e164}), prepare=True).fetchall()
        bare = sqlite3.connect(connection.settings_dict["NAME"])  # its statement cache keeps the statement compiled
        sql = sql.replace("%s", "?")
        return lambda e164: bare.execute(sql, phone_params({e164})).fetchall()

    def fill(self, start: int, stop: int) -> None:
        rng = random.Random(start)
        for first in range(start, stop, 50_000):
            rows = []
            for index in range(first, min(first + 50_000, stop)):
                last, name, middle = rng.choice(MALE + FEMALE)
                rows.append({
                    "last_name": last, "first_name": name, "middle_name": middle,
                    "phone_mobile": f"+7{mobile_digits(NUMBERS_FROM + index)}",
                    "phone_home": f"+7495{rng.randint(2000000, 9999999)}" if rng.random() < 0.3 else None,
                    "phone_work": f"+7499{rng.randint(2000000, 9999999)}" if rng.random() < 0.2 else None,
                    "card_number": f"{PREFIX}{index:07d}",
                })
            with transaction.atomic():
                insert_clients(rows)
            self.stderr.write(f"{min(first + 50_000, stop)} clients")
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Client._meta.db_table}")


def percentiles(timings: list[float]) -> dict[str, float]:
    timings = sorted(timings)
    return {"p50": round(statistics.median(timings), 3), "p95": round(timings[int(len(timings) * 0.95)], 3),
            "p99": round(timings[int(len(timings) * 0.99)], 3), "max": round(timings[-1], 3)}
