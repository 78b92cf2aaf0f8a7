import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from clients.importer import COLUMNS, FileError, client_import_csv


class Command(BaseCommand):
    help = "Import clients from a CSV file with a header row (columns: " + ", ".join(COLUMNS) + ")."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--encoding", default="utf-8-sig", help="file encoding, e.g. cp1251 (default UTF-8)")
        parser.add_argument("--delimiter", default=",", help="cell delimiter, e.g. ';' (default ',')")
        parser.add_argument("--dry-run", action="store_true", help="check and count everything, write nothing")

    def handle(self, *args, path, encoding, delimiter, dry_run, **options):
        if len(delimiter) != 1:
            raise CommandError("--delimiter must be one character")
        try:
            source = open(path, encoding=encoding, newline="")
        except (OSError, LookupError) as error:
            raise CommandError(f"cannot read {path}: {error}") from None
        progress = tqdm(unit=" rows", disable=not sys.stderr.isatty(), file=sys.stderr)

        def on_error(line, reason):
            progress.clear()
            self.stderr.write(f"line {line}: {reason}")

        def on_wait():
            self.stderr.write("another import is running: this one starts when it ends")

        with source, progress:
            try:
                report = client_import_csv(source, delimiter=delimiter, dry_run=dry_run, on_row=progress.update, on_error=on_error, on_wait=on_wait)
            except FileError as error:
                raise CommandError(f"{path}: {error}; nothing was imported") from None
        prefix = "dry run, nothing written: " if dry_run else ""
        self.stdout.write(
            f"{prefix}{report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.skipped} skipped (bad rows), {report.dictionary_entries_created} dictionary entries created"
        )
