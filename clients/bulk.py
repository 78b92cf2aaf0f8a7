"""Clients written in bulk on PostgreSQL, in COPY's text format: COPY takes rows several times faster than INSERT.

Elsewhere (SQLite) the same functions use bulk_create and bulk_update.
"""

import contextlib
import operator
from itertools import repeat
from types import NoneType

from django.db import connection
from django.utils import timezone
from psycopg.copy import QueuedLibpqWriter

from clients.models import FOREIGN_KEYS, Client, search_columns, search_columns_of
from clients.rows import DICTIONARY_FIELDS, TEXT_FIELDS, Chunk


def model_field(name: str) -> str:
    return f"{name}_id" if name in DICTIONARY_FIELDS else name


EMPTY = {name: "" for name in (*TEXT_FIELDS, "sex", "status")}


def model_values(row: dict) -> dict:
    """Column values as Client(**kwargs): no id, foreign keys by id, None as the field's empty value."""
    return {model_field(name): EMPTY.get(name) if value is None else value for name, value in row.items() if name != "id"}


COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_special(text: str) -> bool:
    """Whether the text has a character COPY's text format escapes: four scans of it, 50 times faster than one of a
    regular expression's over a column of text."""
    return "\\" in text or "\t" in text or "\n" in text or "\r" in text


def copy_cell(value) -> str:
    """A value in COPY's text format: psycopg's write_row costs several times more per row, in Python."""
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, str):
        return value.translate(COPY_ESCAPES) if copy_special(value) else value  # translate is slow on Cyrillic
    return str(value)  # numbers, dates and times: str() is a form PostgreSQL reads


class ClientCopy:
    """Clients as lines of COPY's text format into clients_client, every column given so that defaults come from the
    model. The foreign keys come last: a chunk's other columns are encoded while the dictionary names it brings are
    not ids yet (`prefixes`), and joined to them (`lines`) once they are."""

    def __init__(self):
        fields = [field for field in Client._meta.concrete_fields if not field.primary_key]
        fields = [field for field in fields if field.name not in FOREIGN_KEYS] + [field for field in fields if field.name in FOREIGN_KEYS]
        now = timezone.now()
        defaults = {field.attname: field.get_default() for field in fields} | {"created_at": now, "updated_at": now}
        self.names = [field.name for field in fields]
        self.position = {name: index for index, name in enumerate(self.names)}
        self.empty = [copy_cell(EMPTY.get(field.name)) for field in fields]  # a row's None, column by column
        self.template = [copy_cell(defaults[field.attname]) for field in fields]
        self.keys = len(fields) - len(FOREIGN_KEYS)  # where the foreign keys start
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

    def prefixes(self, chunk: Chunk) -> list[str]:
        """The chunk's rows as new clients' lines up to their foreign keys, each ending in a tab; an empty cell is
        the field's default, as in `line` where it is left out."""
        columns = chunk.columns | search_columns_of(chunk.columns, len(chunk))
        cells = [self.column(index, columns[name]) if name in columns else repeat(self.template[index])
                 for index, name in enumerate(self.names[:self.keys])]
        return list(map("\t".join, zip(*cells, [""] * len(chunk))))  # the last, empty, for the tab before the keys

    def lines(self, chunk: Chunk, prefixes: list[str]) -> list[str]:
        """`prefixes` completed with the chunk's foreign keys (its dictionary names, by now ids)."""
        cells = [self.column(index, chunk.columns[name]) if name in chunk.columns else repeat(self.template[index])
                 for index, name in enumerate(self.names[self.keys:], self.keys)]
        return list(map(operator.add, prefixes, map("\t".join, zip(*cells))))

    def column(self, index: int, values: list) -> list[str]:
        """One column's values as cells: each distinct value encoded once when values repeat, as most columns'."""
        empty = self.template[index]
        if set(map(type, values)) <= {str, NoneType}:  # text: few values repeat, and few need escaping
            if copy_special("".join(filter(None, values))):
                values = [value.translate(COPY_ESCAPES) if value else value for value in values]
            return [value or empty for value in values]
        cells = {value: empty if value is None else copy_cell(value) for value in set(values)}
        return list(map(cells.__getitem__, values))


def insert_clients(rows: list[dict | None], lines: list[str | None] | None = None) -> None:
    """Create these clients; `lines`, where given, are the rows already in ClientCopy's format (None: not yet), and
    a row may then be None (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        Client.objects.bulk_create([Client(**model_values(row)) for row in rows], batch_size=1000)
        return
    if not rows:
        return
    copy = ClientCopy()
    if lines is None or None in lines:
        lines = [line or copy.line(row) for row, line in zip(rows, lines or [None] * len(rows))]
    with connection.cursor() as cursor, cursor.cursor.copy(copy.sql) as stream:
        stream.write("\n".join(lines) + "\n")


class ClientStream:
    """New clients' lines into one COPY left open from chunk to chunk: the database takes in a chunk while the next
    is read, psycopg's queued writer sending from a thread of its own. No other statement can run on the connection
    until `close`; `abort` ends the COPY with nothing written, for the error that stopped the import."""

    def __init__(self):
        self.stack: contextlib.ExitStack | None = None

    @property
    def open(self) -> bool:
        return self.stack is not None

    def write(self, lines: list[str]) -> None:
        with connection.wrap_database_errors:  # the driver's errors as Django's, as through its own cursors
            if self.stack is None:
                self.stack = contextlib.ExitStack()
                cursor = self.stack.enter_context(connection.cursor()).cursor
                self.copy = self.stack.enter_context(cursor.copy(ClientCopy().sql, writer=QueuedLibpqWriter(cursor)))
            self.copy.write("\n".join(lines) + "\n")

    def close(self) -> None:
        """Wait for the database to take every line written."""
        stack, self.stack = self.stack, None
        if stack is not None:
            with connection.wrap_database_errors:
                stack.close()

    def abort(self, error: BaseException) -> None:
        stack, self.stack = self.stack, None
        if stack is not None:
            with connection.wrap_database_errors:
                stack.__exit__(type(error), error, error.__traceback__)


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
