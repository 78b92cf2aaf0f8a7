import csv
import json
import tempfile
import time

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from clients.demo import fake_clients
from clients.importer import COLUMNS, client_import_csv
from clients.models import Client

PREFIX = "BENCH-"
TARGET_ROWS_PER_SECOND = 50_000


class Command(BaseCommand):
    help = (
        "Generate a CSV of N clients, import it twice (new, then unchanged) and print rows/s as JSON, beside the "
        "floor measured in the same run: PostgreSQL's COPY of the rows the import stored."
    )

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
        floor = self.floor() if connection.vendor == "postgresql" else None
        figures["floor"] = floor
        if floor:
            figures["ratio"] = {
                "what": "the floor's rows/s over the import's (how many times slower the import is)",
                **{f"{run}_vs_{name}": round(floor[f"{name}_rows_per_second"] / figures[run]["rows_per_second"], 2)
                   for run in ("first_import", "reimport_unchanged") for name in ("copy_plain", "copy_into_clients")},
            }
        figures["target"] = {"rows_per_second": TARGET_ROWS_PER_SECOND,
                             "met": figures["first_import"]["rows_per_second"] >= TARGET_ROWS_PER_SECOND}
        if not keep:
            self.clean_up()
        self.stdout.write(json.dumps(figures))

    def floor(self) -> dict:
        """COPY of the imported rows, exactly as stored: into a plain temporary table with the clients' columns, and
        into clients_client itself (its indexes, and its foreign keys checked at once) in a transaction rolled back."""
        table = Client._meta.db_table
        columns = ", ".join(connection.ops.quote_name(field.column) for field in Client._meta.concrete_fields if not field.primary_key)
        figures = {}
        with transaction.atomic(), connection.cursor() as cursor:
            data = bytearray()
            with cursor.cursor.copy(f"COPY (SELECT {columns} FROM {table} WHERE card_number LIKE %s ORDER BY id) TO STDOUT", [PREFIX + "%"]) as copy:
                for chunk in copy:
                    data += chunk
            stored = data.count(b"\n")  # a row a line: COPY escapes the line breaks inside values
            cursor.execute(f"CREATE TEMPORARY TABLE bench_floor ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA")
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for name, into in (("copy_plain_rows_per_second", "bench_floor"), ("copy_into_clients_rows_per_second", table)):
                started = time.perf_counter()
                with cursor.cursor.copy(f"COPY {into} ({columns}) FROM STDIN") as copy:
                    copy.write(bytes(data))
                figures[name] = round(stored / (time.perf_counter() - started))
            transaction.set_rollback(True)
        return figures

    def clean_up(self) -> None:
        """Remove an earlier run's clients, and their dead rows, so runs measure the same thing."""
        Client.objects.filter(card_number__startswith=PREFIX).delete()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM ANALYZE {Client._meta.db_table}")
