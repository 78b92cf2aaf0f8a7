import json
import random
import statistics
import time

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from clients.demo import FEMALE, MALE, mobile_digits, phone_typed
from clients.importer import insert_clients
from clients.models import Client
from clients.services import client_find_by_phone, clients_with_phone

PREFIX = "LOOKUP-"
# Numbers of their own, so bench_import's generated clients do not all match these.
NUMBERS_FROM = 50_000_000


class Command(BaseCommand):
    help = "Fill the base up to N clients (kept between runs), time client_find_by_phone on typed caller IDs, print JSON."

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=1_000_000)
        parser.add_argument("--lookups", type=int, default=5000)

    def handle(self, *args, clients, lookups, **options):
        have = Client.objects.filter(card_number__startswith=PREFIX).count()
        if have < clients:
            self.fill(have, clients)
        rng = random.Random(5)
        timings = []
        found = 0
        for _ in range(lookups):
            index = rng.randrange(clients * 2)  # about half the numbers are nobody's
            typed = phone_typed(rng, mobile_digits(NUMBERS_FROM + index))
            started = time.perf_counter()
            found += bool(client_find_by_phone(typed))
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        plan = clients_with_phone("+79161234567").explain()
        self.stdout.write(json.dumps({
            "clients": Client.objects.count(), "lookups": lookups, "found": found, "database": connection.vendor,
            "ms": {"p50": round(statistics.median(timings), 3), "p95": round(timings[int(lookups * 0.95)], 3),
                   "p99": round(timings[int(lookups * 0.99)], 3), "max": round(timings[-1], 3)},
            "plan_uses_phone_indexes": all(f"client_{name}_idx" in plan for name in ("phone_mobile", "phone_home", "phone_work")),
        }))

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
