"""Bulk import of clients from CSV: upsert by card number, else by phone; bad rows reported, not fatal.

Hostile or damaged files:
- A quote (") opened and never closed makes the csv module swallow every line up to the next
  quote, or to the end of the file, into one cell. A record that spans several lines and has the
  wrong number of cells (or that the csv module refuses) is therefore reported at the line it
  starts on, and the lines after that one are read again as rows of their own. A quoted cell that
  really spans lines (a comment with line breaks) keeps the row's number of cells and is imported.
- A row with a NUL byte is reported and skipped: it is a binary file or a broken export, and
  PostgreSQL cannot store the byte.
- A cell longer than its column, dictionary names (ad_source, card_type) included, is reported.
- Cells are data, never formulas: text starting with =, +, - or @ (a name, an address, a comment)
  is stored exactly as typed and nothing here evaluates it. Whatever exports clients to a
  spreadsheet one day must write such cells so that the spreadsheet does not run them.
"""

import contextlib
import csv
import datetime
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.utils import timezone
from django.db.models import Q

from clients.lookups import one_of
from clients.models import PHONE_FIELDS, AdSource, CardType, Client, fold, search_columns
from clients.phones import phone_region, phone_valid_e164
from clients.signals import phones_changed


SEARCH_SOURCES = {"last_name", "first_name", "middle_name", *PHONE_FIELDS, "card_number"}  # what the search keys derive from
TEXT_FIELDS = {
    "last_name": 100, "first_name": 100, "middle_name": 100, "email": 254, "city": 100, "postcode": 20,
    "street": 200, "house": 20, "building": 20, "flat": 20, "card_number": 50, "comment": 10_000,
}
INT_FIELDS = {"birth_day": (1, 31), "birth_month": (1, 12), "birth_year": (1900, 2100), "importance": (1, 4)}
BOOL_FIELDS = ("no_sms", "blacklisted")
PLAIN_TEXT = {name: length for name, length in TEXT_FIELDS.items() if name != "email"}
DICTIONARY_FIELDS = {"ad_source": AdSource, "card_type": CardType}
DICTIONARY_NAME_LENGTH = {name: model._meta.get_field("name").max_length for name, model in DICTIONARY_FIELDS.items()}
UNCLOSED_QUOTE = "a quote (\") opened in this row is never closed; the lines after it are read as rows of their own"
COLUMNS = (
    "last_name", "first_name", "middle_name", "sex", "birth_day", "birth_month", "birth_year",
    *PHONE_FIELDS, "email", "no_sms", "city", "postcode", "street", "house", "building", "flat",
    "ad_source", "card_number", "card_type", "importance", "status", "blacklisted", "call_back_on", "comment",
)
SEX = {"m": "m", "м": "m", "муж": "m", "мужской": "m", "male": "m", "f": "f", "ж": "f", "жен": "f", "женский": "f", "female": "f"}
TRUE = {"1", "да", "yes", "true", "y", "д", "+"}
FALSE = {"0", "нет", "no", "false", "n", "н", "-"}
STATUS = {value: value for value in Client.Status.values} | {str(label).lower(): value for value, label in Client.Status.choices}
BATCH = 5000


class RowError(ValueError):
    pass


class FileError(ValueError):
    """A problem with the whole file: nothing is imported."""


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    dictionary_entries_created: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    # Where the time went, in seconds: reading (waiting for the thread that reads and parses the CSV), matching
    # (finding the clients the rows are), writing (inserts and updates), late_binding (attaching earlier calls).
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("reading", "matching", "writing", "late_binding"), 0.0))

    def timed(self, phase: str, started: float) -> float:
        now = time.perf_counter()
        self.seconds[phase] += now - started
        return now

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged + self.skipped


def parse_phone(value: str, region: str | None = None) -> str:
    e164 = phone_valid_e164(value, region or phone_region())
    if not e164:
        raise RowError(f"“{value}” is not a valid phone number")
    return e164


def parse_date(value: str) -> datetime.date:
    for pattern in ("%d.%m.%Y", "%Y-%m-%d"):
        try:
            return datetime.datetime.strptime(value, pattern).date()
        except ValueError:
            pass
    raise RowError(f"“{value}” is not a date (dd.mm.yyyy)")


def parse_cell(name: str, value: str, region: str | None = None):
    """One non-empty cell → the model's value, or RowError saying what is wrong."""
    if name in TEXT_FIELDS:
        if len(value) > TEXT_FIELDS[name]:
            raise RowError(f"{name} is longer than {TEXT_FIELDS[name]} characters")
        if name == "email":
            try:
                validate_email(value)
            except ValidationError:
                raise RowError(f"“{value}” is not an email address") from None
        return value
    if name in PHONE_FIELDS:
        return parse_phone(value, region)
    if name in INT_FIELDS:
        low, high = INT_FIELDS[name]
        if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
            raise RowError(f"{name} must be a number from {low} to {high}, not “{value}”")
        return int(value)
    if name in BOOL_FIELDS:
        lowered = value.lower()
        if lowered in TRUE or lowered in FALSE:
            return lowered in TRUE
        raise RowError(f"{name} must be yes/no (1/0, да/нет), not “{value}”")
    if name == "sex":
        if value.lower() not in SEX:
            raise RowError(f"sex must be m/f (м/ж), not “{value}”")
        return SEX[value.lower()]
    if name == "status":
        if value.lower() not in STATUS:
            raise RowError(f"status must be one of {', '.join(Client.Status.values)}, not “{value}”")
        return STATUS[value.lower()]
    if name == "call_back_on":
        return parse_date(value)
    if len(value) > DICTIONARY_NAME_LENGTH[name]:
        raise RowError(f"{name} is longer than {DICTIONARY_NAME_LENGTH[name]} characters")
    return value  # dictionary names, resolved per batch


class RowParser:
    """Rows of one header → the model's values: each column's check chosen once, and each distinct value of a column
    that is not free text (phones, numbers, dates, yes/no…) parsed once, as files repeat them."""

    REMEMBERED = 200_000  # distinct values kept; then forgotten, so memory stays bounded on any file

    def __init__(self, header: list[str]):
        self.header = header
        # (name, length limit) of free text, which most cells are and which is only measured; (name, None) otherwise
        self.columns = [(name, PLAIN_TEXT.get(name)) for name in header]
        self.region = phone_region()
        self.known: dict[tuple[str, str], tuple[object, str]] = {}

    def __call__(self, cells: list[str]) -> dict:
        if len(cells) != len(self.header):
            raise RowError(f"{len(cells)} cells where the header has {len(self.header)}")
        if "\x00" in "".join(cells):
            raise RowError("the row has a NUL byte: is this a text file?")
        values = {}
        for (name, limit), raw in zip(self.columns, cells):
            value = raw.strip()
            if value:
                values[name] = value if limit is not None and len(value) <= limit else self.cell(name, value)
        if not any(values.get(name) for name in ("last_name", "first_name", "card_number", *PHONE_FIELDS)):
            raise RowError("the row has no name, phone or card number")
        return values

    def cell(self, name: str, value: str):
        key = (name, value)
        known = self.known.get(key)
        if known is None:
            try:
                known = (parse_cell(name, value, self.region), "")
            except RowError as error:
                known = (None, str(error))
            if len(self.known) >= self.REMEMBERED:
                self.known.clear()
            self.known[key] = known
        if known[1]:
            raise RowError(known[1])
        return known[0]


def read_header(reader) -> list[str]:
    try:
        header = [name.strip().lower().lstrip("\ufeff") for name in next(reader)]
    except StopIteration:
        raise FileError("the file is empty") from None
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise FileError(f"unknown column(s) {', '.join(unknown)}; the columns are: {', '.join(COLUMNS)}")
    if len(set(header)) != len(header):
        raise FileError("a column appears twice in the header")
    return header


class Upserter:
    """Matches each parsed row to an existing client, then writes a batch with bulk operations."""

    def __init__(self, report: ImportReport, on_error: Callable[[int, str], None] | None):
        self.report = report
        self.on_error = on_error
        self.dictionaries = {name: {entry.name.lower(): entry.pk for entry in model.objects.all()} for name, model in DICTIONARY_FIELDS.items()}

    def write(self, batch: list[tuple[int, dict]], encoded: dict[int, str]) -> None:
        """`encoded`: rows (by line) already in COPY's format, for those that turn out to be new clients."""
        started = time.perf_counter()
        existing = {row["id"]: row for row in self.existing_for(batch)}
        by_card = {row["card_number"]: row for row in existing.values() if row["card_number"]}
        by_phone: dict[str, list[dict]] = {}
        for row in existing.values():
            self.index(row, by_card, by_phone)
        new: list[dict] = []
        ready: dict[int, str] = {}  # id() of a new client → its row as encoded, until a later row of the batch changes it
        changed: dict[int, set[str]] = {}
        phones: set[str] = set()  # numbers clients gained or lost: their earlier calls may now have an owner
        for line, values in batch:
            self.resolve_dictionaries(values)
            try:
                target = self.match(values, by_card, by_phone)
            except RowError as error:
                self.skip(line, str(error))
                continue
            if target is None:
                target = {"id": None, **values}
                new.append(target)
                if line in encoded:
                    ready[id(target)] = encoded[line]
                self.report.created += 1
            else:
                changes = {name: value for name, value in values.items() if target.get(name) != value}
                if not changes:
                    self.report.unchanged += 1
                    continue
                ready.pop(id(target), None)
                phones.update(value for name in PHONE_FIELDS if name in changes for value in (target.get(name), changes[name]) if value)
                before = {target.get(name) for name in PHONE_FIELDS if name in changes} - {None}
                target.update(changes)
                self.unindex_phones(target, before, by_phone)
                if SEARCH_SOURCES & changes.keys():
                    keys = search_columns(target)
                    changes.update(keys)
                    target.update(keys)
                self.report.updated += 1
                if target["id"] is not None:
                    changed.setdefault(target["id"], set()).update(changes)
            self.index(target, by_card, by_phone)
        started = self.report.timed("matching", started)
        insert_clients(new, [ready.get(id(row)) for row in new])
        if changed:
            fields = sorted(set().union(*changed.values()))
            update_clients({pk: {name: existing[pk][name] for name in fields} for pk in changed})
        started = self.report.timed("writing", started)
        phones.update(row[name] for row in new for name in PHONE_FIELDS if row.get(name))
        if phones:
            phones_changed.send(sender=Client, phones=phones)
        self.report.timed("late_binding", started)

    def existing_for(self, batch: list[tuple[int, dict]]) -> list[dict]:
        """The clients the rows may be: those with their card numbers, and those with the phones of the rows
        whose card number nobody has (only those rows are matched by phone).

        A query per column, each read from its own index: in one OR the planner reads the whole table.
        """
        with index_scans_only():
            return self.existing_through_indexes(batch)

    def existing_through_indexes(self, batch: list[tuple[int, dict]]) -> list[dict]:
        cards = {values["card_number"] for _, values in batch if values.get("card_number")}
        # Through the folded card's index (there is none on card_number itself), then exactly.
        by_folded_card = self.clients(one_of("search_card", {fold(card) for card in cards})) if cards else []
        existing = {row["id"]: row for row in by_folded_card if row["card_number"] in cards}
        known = {row["card_number"] for row in existing.values()}
        phones = {values[name] for _, values in batch if values.get("card_number") not in known for name in PHONE_FIELDS if values.get(name)}
        for name in PHONE_FIELDS if phones else ():
            # Spelled out so the planner matches the partial index even for arrays of thousands.
            existing.update((row["id"], row) for row in self.clients(Q(**{f"{name}__isnull": False}) & one_of(name, phones)))
        return list(existing.values())

    def clients(self, condition: Q) -> list[dict]:
        fields = ["id", *(name for name in COLUMNS if name not in DICTIONARY_FIELDS), "search_name"]
        query = Client.objects.filter(condition).values_list(*fields, *(model_field(name) for name in DICTIONARY_FIELDS))
        names = [*fields, *DICTIONARY_FIELDS]
        # The statement through a plain cursor: the ORM's iteration, a hundred rows a fetch, costs more than the query.
        # No column needs a conversion from the database's value (SQLite's dates do: the ORM reads them there).
        if connection.vendor != "postgresql":
            return [dict(zip(names, row)) for row in query]
        sql, params = query.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def resolve_dictionaries(self, values: dict) -> None:
        for name, model in DICTIONARY_FIELDS.items():
            if name in values:
                known = self.dictionaries[name]
                key = values[name].lower()
                if key not in known:
                    known[key] = model.objects.create(name=values[name]).pk
                    self.report.dictionary_entries_created += 1
                values[name] = known[key]

    def match(self, values: dict, by_card: dict, by_phone: dict) -> dict | None:
        """The client with the row's card number; else the one with its phone, if that client has no card."""
        card = values.get("card_number")
        if card and card in by_card:
            return by_card[card]
        found = {id(row): row for name in PHONE_FIELDS if values.get(name) for row in by_phone.get(values[name], [])}
        if card:  # a client with another card who shares the phone is someone else, e.g. family
            found = {key: row for key, row in found.items() if not row.get("card_number")}
        if len(found) > 1:
            raise RowError(f"its phone matches {len(found)} clients; add a card number to say which")
        return next(iter(found.values()), None)

    def unindex_phones(self, row: dict, phones: set[str], by_phone: dict) -> None:
        """Forget `row` under the numbers it no longer has: a later row with such a number is not this client's."""
        for phone in phones - {row.get(name) for name in PHONE_FIELDS}:
            by_phone[phone] = [other for other in by_phone.get(phone, ()) if other is not row]

    def index(self, row: dict, by_card: dict, by_phone: dict) -> None:
        if row.get("card_number"):
            by_card[row["card_number"]] = row
        for name in PHONE_FIELDS:
            rows = by_phone.setdefault(row[name], []) if row.get(name) else None
            if rows is not None and all(other is not row for other in rows):  # identity: equal rows are two clients
                rows.append(row)

    def skip(self, line: int, reason: str) -> None:
        self.report.skipped += 1
        self.report.errors.append((line, reason))
        if self.on_error:
            self.on_error(line, reason)


@contextlib.contextmanager
def index_scans_only():
    """PostgreSQL: no sequential scan for the queries inside. The table grows during an import, in its transaction,
    while the planner's statistics stay as they were: it would soon read the whole table for every batch's rows."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', true)")
        before = cursor.fetchone()[0]
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('enable_seqscan', %s, true)", [before])


def model_field(name: str) -> str:
    return f"{name}_id" if name in DICTIONARY_FIELDS else name


EMPTY = {name: "" for name in (*TEXT_FIELDS, "sex", "status")}


def model_values(row: dict) -> dict:
    """Column values as Client(**kwargs): no id, foreign keys by id, None as the field's empty value."""
    return {model_field(name): EMPTY.get(name) if value is None else value for name, value in row.items() if name != "id"}


COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_cell(value) -> str:
    """A value in COPY's text format: psycopg's write_row costs several times more per row, in Python."""
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, str):
        return value.translate(COPY_ESCAPES) if COPY_SPECIAL.search(value) else value  # translate is slow on Cyrillic
    return str(value)  # numbers, dates and times: str() is a form PostgreSQL reads


class ClientCopy:
    """Clients as lines of COPY's text format into clients_client, every column given so that defaults come from the
    model: COPY takes rows several times faster than INSERT."""

    def __init__(self):
        fields = [field for field in Client._meta.concrete_fields if not field.primary_key]
        now = timezone.now()
        defaults = {field.attname: field.get_default() for field in fields} | {"created_at": now, "updated_at": now}
        self.position = {field.name: index for index, field in enumerate(fields)}
        self.empty = [copy_cell(EMPTY.get(field.name)) for field in fields]  # a row's None, column by column
        self.template = [copy_cell(defaults[field.attname]) for field in fields]
        columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
        self.sql = f"COPY {Client._meta.db_table} ({columns}) FROM STDIN"

    def line(self, row: dict) -> str:
        """A client's import row (its search keys computed here) → its line, without the line break."""
        cells = self.template.copy()
        for values in (row, search_columns(row)):
            for name, value in values.items():
                index = self.position.get(name)  # None for "id"
                if index is not None:
                    cells[index] = self.empty[index] if value is None else copy_cell(value)
        return "\t".join(cells)


def insert_clients(rows: list[dict], lines: list[str | None] | None = None) -> None:
    """Create these clients; `lines`, where given, are the rows already in ClientCopy's format (None: not yet)."""
    if connection.vendor != "postgresql":
        Client.objects.bulk_create([Client(**model_values(row)) for row in rows], batch_size=1000)
        return
    if not rows:
        return
    copy = ClientCopy()
    text = [line or copy.line(row) for row, line in zip(rows, lines or [None] * len(rows))]
    text.append("")
    with connection.cursor() as cursor, cursor.cursor.copy(copy.sql) as stream:
        stream.write("\n".join(text))


def update_clients(changes: dict[int, dict]) -> None:
    """Write these columns (the same for every client) of existing clients, by id.

    PostgreSQL: COPY into a scratch table and one UPDATE, as bulk_update's CASE per row and column
    grows with the batch.
    """
    names = list(next(iter(changes.values())))
    if connection.vendor != "postgresql":
        objects = [Client(pk=pk, **model_values(row)) for pk, row in changes.items()]
        Client.objects.bulk_update(objects, [model_field(name) for name in names], batch_size=500)
        return
    quote = connection.ops.quote_name
    columns = [quote(Client._meta.get_field(name).column) for name in names]
    table = quote(Client._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE import_changes ON COMMIT DROP AS SELECT id, {', '.join(columns)} FROM {table} WITH NO DATA")
        with cursor.cursor.copy(f"COPY import_changes (id, {', '.join(columns)}) FROM STDIN") as copy:
            lines = ("\t".join([str(pk), *map(copy_cell, model_values(row).values())]) for pk, row in changes.items())
            copy.write("".join(line + "\n" for line in lines))
        assignments = ", ".join(f"{column} = changed.{column}" for column in columns)
        cursor.execute(f"UPDATE {table} AS client SET {assignments} FROM import_changes AS changed WHERE client.id = changed.id")
        cursor.execute("DROP TABLE import_changes")


def client_import_csv(
    lines: Iterable[str],
    *,
    delimiter: str = ",",
    dry_run: bool = False,
    on_row: Callable[[], None] | None = None,
    on_error: Callable[[int, str], None] | None = None,
) -> ImportReport:
    """Import a CSV with a header row. Bad rows are skipped and reported; the rest commit together."""
    report = ImportReport()
    numbered = Lines(lines)
    reader = csv.reader(numbered, delimiter=delimiter)
    try:
        with transaction.atomic():
            import_rows(numbered, reader, report, dry_run=dry_run, on_row=on_row, on_error=on_error)
    except UnicodeDecodeError:
        raise FileError(f"line {numbered.number + 1} is not in the file's encoding (UTF-8 unless --encoding says otherwise, e.g. cp1251)") from None
    except csv.Error as error:
        raise FileError(f"line {numbered.number}: {error}") from None
    return report


class Lines:
    """The file's lines for the csv module, numbered, remembering those of the current record to read them again."""

    def __init__(self, lines: Iterable[str]):
        self.source = iter(lines)
        self.number = 0  # of the last line taken from the file
        self.again: deque[tuple[int, str]] = deque()
        self.taken: list[tuple[int, str]] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.again:
            number, line = self.again.popleft()
        else:
            line = next(self.source)
            self.number += 1
            number = self.number
        self.taken.append((number, line))
        return line

    def read_again(self, taken: list[tuple[int, str]]) -> None:
        self.again.extendleft(reversed(taken))


def records(lines: Lines, reader, width: int) -> Iterator[tuple[int, list[str] | None, str]]:
    """(line the record starts on, its cells, "") or (line, None, what is wrong), after the header."""
    while True:
        lines.taken = []
        try:
            cells, problem = next(reader), ""
        except StopIteration:
            return
        except csv.Error as error:
            cells, problem = None, str(error)
        taken = lines.taken
        if len(taken) > 1 and (cells is None or len(cells) != width):
            lines.read_again(taken[1:])
            yield taken[0][0], None, UNCLOSED_QUOTE
        else:
            yield taken[0][0], cells, problem


def import_rows(lines: Lines, reader, report: ImportReport, *, dry_run: bool, on_row, on_error) -> None:
    header = read_header(reader)
    upserter = Upserter(report, on_error)

    # Rows without dictionary names (which become ids only here) are also encoded for COPY by the reading thread.
    encode = ClientCopy().line if connection.vendor == "postgresql" else None
    reading = time.perf_counter()
    with ChunkReader(RowParser(header), chunks(records(lines, reader, len(header)), on_row), encode) as parsed_chunks:
        for parsed, encoded in parsed_chunks:
            report.timed("reading", reading)  # the time spent waiting for the reading thread
            for line, _, error in parsed:
                if error:
                    upserter.skip(line, error)
            rows = [(line, values) for line, values, error in parsed if not error]
            created = report.created
            upserter.write(rows, encoded)
            # Encoding ahead pays while rows are new clients; in a file of known clients it is work thrown away.
            parsed_chunks.encoding = (report.created - created) * 2 >= len(rows)
            reading = time.perf_counter()
    report.timed("reading", reading)
    if dry_run:
        transaction.set_rollback(True)


def chunks(rows, on_row) -> Iterator[list[tuple[int, list[str] | None, str]]]:
    chunk = []
    for line, cells, problem in rows:
        if on_row:
            on_row()
        if problem or any(cells):  # a row of empty cells is skipped; blanks that only look empty are reported
            chunk.append((line, cells, problem))
        if len(chunk) >= BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def parse_chunk(parse: RowParser, chunk: list[tuple[int, list[str] | None, str]]) -> list[tuple[int, dict | None, str]]:
    parsed = []
    for line, cells, problem in chunk:
        if problem:
            parsed.append((line, None, problem))
            continue
        try:
            parsed.append((line, parse(cells), ""))
        except RowError as error:
            parsed.append((line, None, str(error)))
    return parsed


class ChunkReader:
    """The file's chunks, read and parsed in a thread while the caller writes the chunks before them: each chunk's
    rows as parsed, and those that `encode` takes as new clients' lines of COPY, by line.

    The caller mostly waits for the database, which lets the thread run, so PostgreSQL writes on one core while Python
    reads on the other. (Worker processes would parse side by side, but pickling the rows there and back costs more than
    the parsing itself, on a machine whose other core the database needs.) Whatever the reading raises (a wrong
    encoding, a broken CSV) is raised to the caller, in order, after the chunks read before it.
    """

    AHEAD = 2  # chunks parsed and waiting, at most
    DONE = object()

    def __init__(self, parse: RowParser, chunks: Iterator[list], encode: Callable[[dict], str] | None):
        self.parse = parse
        self.chunks = chunks
        self.encode = encode
        self.encoding = True  # set by the caller as it learns whether the rows are new clients
        self.queue: queue.Queue = queue.Queue(maxsize=self.AHEAD)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.read, name="import-reader", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopping.set()  # the caller may leave early, on an error of its own
        self.thread.join()

    def __iter__(self) -> Iterator[tuple[list, dict[int, str]]]:
        while (item := self.queue.get()) is not self.DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    def read(self) -> None:
        try:
            for chunk in self.chunks:
                parsed = parse_chunk(self.parse, chunk)
                encoded = {}
                if self.encode and self.encoding:
                    encoded = {line: self.encode(values) for line, values, error in parsed
                               if not error and DICTIONARY_FIELDS.keys().isdisjoint(values)}
                if not self.offer((parsed, encoded)):
                    return
            self.offer(self.DONE)
        except BaseException as error:  # handed over: the caller knows what to make of it
            self.offer(error)

    def offer(self, item) -> bool:
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False
