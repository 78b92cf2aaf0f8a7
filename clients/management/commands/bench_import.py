import csv
import json
import tempfile
import time

from django.core.management.base import BaseCommand
from django.db import connection

from clients.demo import fake_clients
from clients.importer import COLUMNS, client_import_csv
from clients.models import Client

PREFIX = "BENCH-"


class Command(BaseCommand):
    help = "Generate a CSV of N clients, import it twice (new, then unchanged) and print rows/s as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=200_000)
        parser.add_argument("--keep", action="store_true", help="leave the imported clients in the database")

    def handle(self, *args, rows, keep, **options):
        self.clean_up()
        with tempfile.NamedTemporaryFile("w", suffix=".csv", encoding="utf-8", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=COLUMNS, restval="")
            writer.writeheader()
            writer.writerows(fake_clients(rows, seed=7, card_prefix=PREFIX))
            file.flush()
            figures = {"rows": rows, "database": connection.vendor}
            for run in ("first_import", "reimport_unchanged"):
                with open(file.name, encoding="utf-8", newline="") as source:
                    started = time.perf_counter()
                    report = client_import_csv(source)
                    seconds = time.perf_counter() - started
                figures[run] = {
                    "seconds": round(seconds, 2), "rows_per_second": round(rows / seconds),
                    "created": report.created, "updated": report.updated, "unchanged": report.unchanged, "skipped": report.skipped,
                }
        if not keep:
            self.clean_up()
        self.stdout.write(json.dumps(figures))

    def clean_up(self) -> None:
        """Remove an earlier run's clients, and their dead rows, so runs measure the same thing."""
        Client.objects.filter(card_number__startswith=PREFIX).delete()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM ANALYZE {Client._meta.db_table}")
