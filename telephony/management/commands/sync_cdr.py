from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from telephony.cdr import CdrError, read_csv, read_table
from telephony.reconcile import cdr_calls, cdr_reconcile


class Command(BaseCommand):
    help = "Repair the call log from Asterisk's CDR: create the calls it lacks, close the ones left open."

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="Asterisk's Master.csv (cdr_csv)")
        parser.add_argument("--dsn", help="a PostgreSQL DSN or URL holding the CDR table (cdr_pgsql), instead of a file")
        parser.add_argument("--table", default="cdr", help="the CDR table, optionally schema.table (default cdr)")
        parser.add_argument("--since", help="YYYY-MM-DD: only calls from that day on (default: all)")
        parser.add_argument("--timezone", help="the PBX's time zone, in which CDR times are written (default CDR_TIMEZONE)")

    def handle(self, *args, path, dsn, table, since, timezone, **options):
        if bool(path) == bool(dsn):
            raise CommandError("give either the path of Master.csv or --dsn")
        tz = timezone or settings.CDR_TIMEZONE
        try:
            zone = ZoneInfo(tz)
        except (LookupError, ValueError):
            raise CommandError(f"unknown time zone {tz!r}") from None
        try:
            start = datetime.combine(date.fromisoformat(since), time(), zone) if since else None
        except ValueError:
            raise CommandError(f"--since must be a date, YYYY-MM-DD; got {since!r}") from None

        errors = []
        try:
            if path:
                # The whole file from the start: the tail cut is for the periodic run.
                rows, errors = read_csv(path, since=start, tz=tz, tail_bytes=None)
            else:
                rows = read_table(dsn, table=table, since=start, tz=tz)
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
        except CdrError as error:
            raise CommandError(f"cannot read the CDR table: {error}") from None
        for error in errors:
            self.stderr.write(error)

        calls = cdr_calls(rows)
        counts = cdr_reconcile(calls=calls)
        skipped = f", {len(errors)} line{'' if len(errors) == 1 else 's'} skipped" if path else ""
        self.stdout.write(
            f"sync_cdr: {len(rows)} rows, {len(calls)} calls: {counts['created']} created, {counts['closed']} closed, "
            f"{counts['unchanged']} unchanged{skipped}"
        )
