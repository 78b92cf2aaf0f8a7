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
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Q

from clients.bulk import ClientCopy, ClientStream, insert_clients, model_field, update_clients
from clients.lookups import one_of
from clients.models import PHONE_FIELDS, Client, digits_reversed, fold, fold_all, search_columns
from clients.rows import COLUMNS, DICTIONARY_FIELDS, Chunk, ColumnParser, RowError
from clients.services import phone_column_condition
from clients.signals import phones_changed
from simplecalls.db import array_literal

SEARCH_SOURCES = {"last_name", "first_name", "middle_name", *PHONE_FIELDS, "card_number"}  # what the search keys derive from
UNCLOSED_QUOTE = "a quote (\") opened in this row is never closed; the lines after it are read as rows of their own"
BATCH = 5000


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
    """Tells the rows that are new clients from the others: streams the new ones into the table, and matches the
    others to clients one by one, in the file's order, writing them with bulk operations."""

    # Reading every client's keys once (about 1.7 s a million clients here) beats asking the indexes chunk by chunk
    # (about 0.2 s a chunk, the COPY waited for) once a file has this many rows for each of the base's clients;
    # not past KEYS_AT_MOST clients, for the memory their keys take.
    KEYS_REPAY = 20
    KEYS_AT_MOST = 4_000_000

    def __init__(self, report: ImportReport, on_error: Callable[[int, str], None] | None, copy: ClientCopy | None):
        self.report = report
        self.on_error = on_error
        self.copy = copy  # PostgreSQL's: new clients go in by COPY
        self.dictionaries = {name: {entry.name.lower(): entry.pk for entry in model.objects.all()} for name, model in DICTIONARY_FIELDS.items()}
        self.rows_seen = 0
        self.clients_before: int | None = None
        self.taken: set[int] | None = None  # see `new_rows`
        self.stream = ClientStream()  # the rows found new, on their way to the table
        self.streamed_phones: set[str] = set()
        # Rows to match, held back while `taken` holds their keys (no later row can be told new without them), and the
        # rows that could not be read meanwhile: reported in the order of their lines once those are written.
        self.waiting: list[tuple[int, dict]] = []
        self.waiting_lines: dict[int, str] = {}
        self.waiting_errors: list[tuple[int, str]] = []
        self.held: list[tuple[int, str]] | None = None

    def write_chunk(self, chunk: Chunk, prefixes: list[str]) -> None:
        """Write a chunk's rows; `prefixes`, when given, are its rows as new clients' lines of COPY (ClientCopy)."""
        if self.taken is None:
            self.finish()  # the database is to answer for this chunk's keys: no statement runs beside an open COPY
        started = time.perf_counter()
        for name in DICTIONARY_FIELDS.keys() & chunk.columns.keys():
            ids = {value: self.dictionary_id(name, value) for value in dict.fromkeys(chunk.columns[name]) if value}
            chunk.columns[name] = list(map(ids.get, chunk.columns[name]))
        lines = self.copy.lines(chunk, prefixes) if prefixes else []
        self.rows_seen += len(chunk)
        new = [False] * len(chunk)
        if lines:
            cards = fold_all(chunk.columns.get("card_number") or [""] * len(chunk))  # as the card's index holds them
            phones = [chunk.columns[name] for name in PHONE_FIELDS if name in chunk.columns]
            keys = [card for card in cards if card] + [phone for column in phones for phone in column if phone]
            new = self.new_rows(keys, cards, phones)
            if self.taken is not None:  # the rows held back too: no later row is told new beside one of them
                self.taken.update(map(hash, keys))
        streamed = [index for index, is_new in enumerate(new) if is_new]
        if streamed:
            started = self.report.timed("matching", started)
            self.stream.write(lines if len(streamed) == len(lines) else [lines[index] for index in streamed])
            self.report.created += len(streamed)
            for column in phones:  # each row's, all of them when all are new (as in most chunks of a file of new clients)
                self.streamed_phones.update(column if len(streamed) == len(column) else [column[index] for index in streamed])
            self.streamed_phones.difference_update((None, ""))
            started = self.report.timed("writing", started)
        if len(streamed) < len(chunk):
            matched = [index for index, is_new in enumerate(new) if not is_new]
            self.waiting += chunk.rows(matched if streamed else None)
            if lines:
                self.waiting_lines.update((chunk.lines[index], lines[index]) for index in matched)
        if self.taken is None or not lines or not self.waiting or len(self.waiting) >= BATCH:
            self.write_waiting(started)

    def refuse(self, errors: list[tuple[int, str]]) -> None:
        """Rows that cannot be read: reported with the rows matched around them, in the order of their lines."""
        self.waiting_errors += errors

    def write_waiting(self, started: float | None = None) -> None:
        """Match and write the rows held back, once the new rows before them are in the table; then report what was
        wrong with any row since, in the order of their lines."""
        errors, self.waiting_errors, held = self.waiting_errors, [], []
        if self.waiting:
            self.finish()
            rows, self.waiting, lines, self.waiting_lines = self.waiting, [], self.waiting_lines, {}
            self.held = held
            try:
                self.write(rows, lines, started or time.perf_counter())
            finally:
                self.held = None
        for line, reason in sorted(errors + held):
            self.skip(line, reason)

    def finish(self) -> None:
        """End the COPY of the rows found new, and attach their numbers' calls: before any other statement."""
        if self.stream.open:
            started = time.perf_counter()
            self.stream.close()
            started = self.report.timed("writing", started)
            phones_changed.send(sender=Client, phones=self.streamed_phones)
            self.streamed_phones = set()
            self.report.timed("late_binding", started)

    def new_rows(self, keys: list[str], cards: list[str], phones: list[list[str | None]]) -> list[bool]:
        """Which rows of a chunk are new clients whatever the order: none of their keys is another row's in the
        chunk, nor a client's (earlier chunks' are in the database by now). Most rows of a file of new clients are;
        `write` matches the others one by one, in the file's order. `cards`: each row's folded card number, or "";
        `phones`: the chunk's phone columns; `keys`: every card number and phone of the chunk.

        The database answers through its indexes, five or six lookups a row, until the file has shown itself long
        enough (KEYS_REPAY) to repay reading every client's keys once; from then on their hashes answer. A hash two
        keys share only sends a row to `write`, which is never wrong.
        """
        if self.clients_before is None:
            self.clients_before = Client.objects.count()
        repays = self.rows_seen * self.KEYS_REPAY >= self.clients_before and self.clients_before <= self.KEYS_AT_MOST
        if self.taken is None and repays:
            self.taken = taken_keys()
        if self.taken is None:
            taken = keys_taken({card for card in cards if card}, {phone for column in phones for phone in column if phone})
        elif self.taken.isdisjoint(map(hash, keys)):
            taken = set()
        else:
            taken = {key for key in keys if hash(key) in self.taken}
        if not taken and len(set(keys)) == len(keys):
            return [True] * len(cards)
        wrong = taken | {key for key, count in Counter(keys).items() if count > 1}
        return [card not in wrong and not any(column[index] in wrong for column in phones) for index, card in enumerate(cards)]

    def write(self, batch: list[tuple[int, dict]], encoded: dict[int, str], started: float) -> None:
        """Match each row to a client, then write the batch. `encoded`: rows (by line) already in COPY's format, for
        those that turn out to be new clients."""
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
        if self.taken is not None:  # the keys clients have now: `new_rows` must know them all
            cards = [row.get("card_number") for row in new] + [existing[pk]["card_number"] for pk, names in changed.items() if "card_number" in names]
            self.taken.update(map(hash, fold_all([card for card in cards if card])), map(hash, phones))
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
            existing.update((row["id"], row) for row in self.clients(phone_column_condition(name, phones)))
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

    def dictionary_id(self, name: str, value: str) -> int:
        """The entry of dictionary `name` called `value` in any case, created if there is none."""
        known = self.dictionaries[name]
        key = value.lower()
        if key not in known:
            self.finish()
            known[key] = DICTIONARY_FIELDS[name].objects.create(name=value).pk
            self.report.dictionary_entries_created += 1
        return known[key]

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
        if self.held is not None:  # `write_waiting` tells them in order
            self.held.append((line, reason))
            return
        self.report.skipped += 1
        self.report.errors.append((line, reason))
        if self.on_error:
            self.on_error(line, reason)


def keys_taken(cards: set[str], phones: set[str]) -> set[str]:
    """Those of these folded card numbers and phones that a client has, asked through the indexes."""
    table = Client._meta.db_table
    # A card through its folded index, as `existing_for` does.
    queries, params = [f"SELECT search_card FROM {table} WHERE search_card IS NOT NULL AND search_card = ANY(%s::text[])"], [array_literal(cards)]
    keys = "{" + ",".join(digits_reversed(phone) for phone in phones) + "}"  # digits, and E.164: nothing to quote
    for name in PHONE_FIELDS if phones else ():  # through the phone's reversed digits, as `phone_column_condition`
        queries.append(f"SELECT {name} FROM {table} WHERE {name}_reversed IS NOT NULL AND {name}_reversed = ANY(%s::text[]) AND {name} = ANY(%s::text[])")
        params += [keys, "{" + ",".join(phones) + "}"]
    with index_scans_only(), connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(queries), params)
        return {key for key, in cursor.fetchall()}


def taken_keys() -> set[int]:
    """The hashes of every client's folded card number and phones: about 60 bytes of memory each."""
    table = Client._meta.db_table
    taken = set()
    with connection.cursor() as cursor:
        for name in ("search_card", *PHONE_FIELDS):  # one array a column: a row each would cost more than the hashing
            cursor.execute(f"SELECT array_agg({name}) FROM {table} WHERE {name} IS NOT NULL")
            taken.update(map(hash, cursor.fetchone()[0] or ()))
    return taken


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


def client_import_csv(
    lines: Iterable[str],
    *,
    delimiter: str = ",",
    dry_run: bool = False,
    on_row: Callable[[], None] | None = None,
    on_error: Callable[[int, str], None] | None = None,
    on_wait: Callable[[], None] | None = None,
) -> ImportReport:
    """Import a CSV with a header row. Bad rows are skipped and reported; the rest commit together.

    Imports run one at a time: `on_wait` is called when this one has to wait for another to end.
    """
    report = ImportReport()
    numbered = Lines(lines)
    reader = csv.reader(numbered, delimiter=delimiter)
    try:
        with transaction.atomic():
            one_import_at_a_time(on_wait)
            import_rows(numbered, reader, report, dry_run=dry_run, on_row=on_row, on_error=on_error)
    except UnicodeDecodeError:
        raise FileError(f"line {numbered.number + 1} is not in the file's encoding (UTF-8 unless --encoding says otherwise, e.g. cp1251)") from None
    except csv.Error as error:
        raise FileError(f"line {numbered.number}: {error}") from None
    return report


IMPORT_LOCK = 7_140_823_019  # the advisory lock imports take, a number of this project's own


def one_import_at_a_time(on_wait: Callable[[], None] | None) -> None:
    """Wait for any other import to commit or roll back first (PostgreSQL; SQLite writes one transaction at a time anyway).

    Two imports side by side would each match its rows against the clients as they were before the other's: a client
    both files have would be made twice. The lock goes with the transaction, so an import that is killed lets the next
    one go.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [IMPORT_LOCK])
        if cursor.fetchone()[0]:
            return
        if on_wait:
            on_wait()
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [IMPORT_LOCK])


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
    copy = ClientCopy() if connection.vendor == "postgresql" else None
    upserter = Upserter(report, on_error, copy)
    reading = time.perf_counter()
    try:
        with ChunkReader(ColumnParser(header), chunks(records(lines, reader, len(header)), on_row), copy) as parsed_chunks:
            for chunk, prefixes in parsed_chunks:
                report.timed("reading", reading)  # the time spent waiting for the reading thread
                upserter.refuse(chunk.errors)
                created = report.created
                upserter.write_chunk(chunk, prefixes)
                # Encoding ahead pays while rows are new clients; in a file of known clients it is work thrown away.
                parsed_chunks.encoding = (report.created - created) * 2 >= len(chunk)
                reading = time.perf_counter()
        report.timed("reading", reading)
        upserter.write_waiting()
        upserter.finish()
    except BaseException as error:
        upserter.stream.abort(error)  # or the connection stays in the COPY, and cannot even roll back
        raise
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


class ChunkReader:
    """The file's chunks, read and parsed in a thread while the caller writes the chunks before them: each chunk
    parsed, and with `copy` its rows as new clients' lines of COPY up to their dictionary names (ClientCopy.prefixes).

    The caller mostly waits for the database, which lets the thread run, so PostgreSQL writes on one core while Python
    reads on the other. (Worker processes would parse side by side, but pickling the rows there and back costs more than
    the parsing itself, on a machine whose other core the database needs.) Whatever the reading raises (a wrong
    encoding, a broken CSV) is raised to the caller, in order, after the chunks read before it.
    """

    AHEAD = 2  # chunks parsed and waiting, at most
    DONE = object()

    def __init__(self, parse: ColumnParser, chunks: Iterator[list], copy: ClientCopy | None):
        self.parse = parse
        self.chunks = chunks
        self.copy = copy
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

    def __iter__(self) -> Iterator[tuple[Chunk, list[str]]]:
        while (item := self.queue.get()) is not self.DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    def read(self) -> None:
        try:
            for rows in self.chunks:
                chunk = self.parse(rows)
                prefixes = self.copy.prefixes(chunk) if self.copy and self.encoding else []
                if not self.offer((chunk, prefixes)):
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
