import csv
import json
import os
import resource
import tempfile
import time

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from clients.demo import fake_clients
from clients.importer import COLUMNS, client_import_csv
from clients.management.commands.bench_lookup import PREFIX as BASE_PREFIX
from clients.management.commands.bench_lookup import Command as LookupBench
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
        parser.add_argument("--clients", type=int, default=0,
                            help="first fill the base up to this many other clients (bench_lookup's, kept between runs)")
        parser.add_argument("--index-costs", action="store_true",
                            help="also time the COPY into a bare copy of the table with each of its indexes alone")
        parser.add_argument("--keep", action="store_true", help="leave the imported clients in the database")

    def handle(self, *args, rows, clients, index_costs, keep, **options):
        if clients:
            have = Client.objects.filter(card_number__startswith=BASE_PREFIX).count()
            if have < clients:
                LookupBench(stderr=self.stderr).fill(have, clients)
        self.clean_up()
        with tempfile.NamedTemporaryFile("w", suffix=".csv", encoding="utf-8", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=COLUMNS, restval="")
            writer.writeheader()
            writer.writerows(fake_clients(rows, seed=7, card_prefix=PREFIX))
            file.flush()
            figures = {"rows": rows, "clients_before": Client.objects.count(), "database": connection.vendor}
            for run in ("first_import", "reimport_unchanged"):
                with open(file.name, encoding="utf-8", newline="") as source:
                    cpu = CpuClock()
                    started = time.perf_counter()
                    report = client_import_csv(source)
                    seconds = time.perf_counter() - started
                figures[run] = {
                    "seconds": round(seconds, 2), "rows_per_second": round(rows / seconds),
                    "created": report.created, "updated": report.updated, "unchanged": report.unchanged, "skipped": report.skipped,
                    "breakdown_seconds": {phase: round(seconds, 2) for phase, seconds in report.seconds.items()},
                    "cpu_seconds": cpu.read(),
                }
        floor = self.floor(index_costs) if connection.vendor == "postgresql" else None
        figures["floor"] = floor
        if floor:
            figures["ratio"] = {
                "what": "the floor's rows/s over the import's (how many times slower the import is)",
                **{f"{run}_vs_{name}": round(floor[f"{name}_rows_per_second"] / figures[run]["rows_per_second"], 2)
                   for run in ("first_import", "reimport_unchanged") for name in ("copy_plain", "copy_into_clients")},
            }
        figures["target"] = {"rows_per_second": TARGET_ROWS_PER_SECOND,
                             "met": figures["first_import"]["rows_per_second"] >= TARGET_ROWS_PER_SECOND}
        figures["load_average"] = os.getloadavg()
        if not keep:
            self.clean_up()
        self.stdout.write(json.dumps(figures))

    def floor(self, index_costs: bool) -> dict:
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
            cursor.execute("SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", [table])
            figures["indexes"] = cursor.fetchone()[0]
            transaction.set_rollback(True)
        if index_costs:
            figures["microseconds_per_row_by_index"] = self.index_costs(bytes(data), stored, columns)
            figures["microseconds_per_row_by_index"]["what"] = "COPY into a bare copy of the table with that index alone, minus without"
        return figures

    def index_costs(self, data: bytes, stored: int, columns: str) -> dict:
        """What each index of clients_client adds to a COPY of the rows, in the database session's CPU time when it can
        be read (other processes on the machine barely move it), else in elapsed time: into a fresh table like it with
        that index alone, minus into one with none (the table's other indexes and its size play no part here)."""
        table = Client._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass", [table])
            definitions = [(name, definition) for name, definition in cursor.fetchall() if not definition.endswith(" (id)")]

        def copy_with(definition: str | None) -> float:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"CREATE TEMPORARY TABLE bench_index ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA")
                if definition:  # the same index on the bare table: "CREATE INDEX name ON table USING btree (…) WHERE …"
                    cursor.execute(f"CREATE INDEX ON bench_index USING {definition.split(' USING ', 1)[1]}")
                clock = CpuClock()
                started = time.perf_counter()
                with cursor.cursor.copy(f"COPY bench_index ({columns}) FROM STDIN") as copy:
                    copy.write(data)
                seconds = clock.read().get("postgres", time.perf_counter() - started)
                transaction.set_rollback(True)
            return seconds / stored * 1e6

        bare = min(copy_with(None) for _ in range(3))
        costs = {"none (the bare table)": round(bare, 2)}
        for name, definition in definitions:
            costs[name] = round(min(copy_with(definition) for _ in range(3)) - bare, 2)
        return costs

    def clean_up(self) -> None:
        """Remove an earlier run's clients, and their dead rows, so runs measure the same thing."""
        Client.objects.filter(card_number__startswith=PREFIX).delete()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM ANALYZE {Client._meta.db_table}")


class CpuClock:
    """CPU seconds from here on: this process and its finished children (the parsing pool), and the database
    session's backend when it runs on this machine (read from /proc)."""

    def __init__(self):
        self.backend = self.backend_pid()
        self.started = self.python(), self.postgres()

    def read(self) -> dict:
        python, postgres = self.python() - self.started[0], self.postgres()
        figures = {"python": round(python, 2)}
        if postgres is not None and self.started[1] is not None:
            figures["postgres"] = round(postgres - self.started[1], 2)
        return figures

    @staticmethod
    def python() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    def backend_pid(self) -> int | None:
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    def postgres(self) -> float | None:
        try:
            with open(f"/proc/{self.backend}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, TypeError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
