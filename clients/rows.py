"""Import rows as the model's values: checked cell by cell (RowParser) or column by column (ColumnParser).

Both give the same values and the same verdicts: ColumnParser finds the wrong rows and RowParser says what is wrong
with each, so that a message reads the same whichever found it.
"""

import datetime
import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, validate_email

from clients.models import PHONE_FIELDS, AdSource, CardType, Client
from clients.phones import phone_region, phone_valid_e164, phones_valid_e164

TEXT_FIELDS = {
    "last_name": 100, "first_name": 100, "middle_name": 100, "email": 254, "city": 100, "postcode": 20,
    "street": 200, "house": 20, "building": 20, "flat": 20, "card_number": 50, "comment": 10_000,
}
INT_FIELDS = {"birth_day": (1, 31), "birth_month": (1, 12), "birth_year": (1900, 2100), "importance": (1, 4)}
BOOL_FIELDS = ("no_sms", "blacklisted")
PLAIN_TEXT = {name: length for name, length in TEXT_FIELDS.items() if name != "email"}
DICTIONARY_FIELDS = {"ad_source": AdSource, "card_type": CardType}
DICTIONARY_NAME_LENGTH = {name: model._meta.get_field("name").max_length for name, model in DICTIONARY_FIELDS.items()}
COLUMNS = (
    "last_name", "first_name", "middle_name", "sex", "birth_day", "birth_month", "birth_year",
    *PHONE_FIELDS, "email", "no_sms", "city", "postcode", "street", "house", "building", "flat",
    "ad_source", "card_number", "card_type", "importance", "status", "blacklisted", "call_back_on", "comment",
)
SEX = {"m": "m", "м": "m", "муж": "m", "мужской": "m", "male": "m", "f": "f", "ж": "f", "жен": "f", "женский": "f", "female": "f"}
TRUE = {"1", "да", "yes", "true", "y", "д", "+"}
FALSE = {"0", "нет", "no", "false", "n", "н", "-"}
STATUS = {value: value for value in Client.Status.values} | {str(label).lower(): value for value, label in Client.Status.choices}


class RowError(ValueError):
    pass


def parse_phone(value: str, region: str | None = None) -> str:
    e164 = phone_valid_e164(value, region or phone_region())
    if not e164:
        raise RowError(f"“{value}” is not a valid phone number")
    return e164


# Django's validator's own expressions, compiled here: reaching them through its lazy objects costs more than matching.
EMAIL_USER, EMAIL_DOMAIN = (re.compile(lazy.pattern, lazy.flags) for lazy in (EmailValidator.user_regex, EmailValidator.domain_regex))


# Addresses in the plainest form those two take (ASCII letters, at most TEXT_FIELDS' 254 characters), a line each: one
# search over a whole column of them costs a fraction of a call a cell.
PLAIN_EMAILS = re.compile(
    r"^(?=.{1,254}$)[-!#$%&'*+/=?^_`{}|~0-9A-Za-z]+(?:\.[-!#$%&'*+/=?^_`{}|~0-9A-Za-z]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}(?<!-)$",
    re.MULTILINE,
)


def email_plainly_valid(value: str) -> bool:
    """True for the addresses validate_email takes by its two main expressions, as most are; False means "ask it"."""
    user, _, domain = value.rpartition("@")
    return len(value) <= 320 and EMAIL_USER.match(user) is not None and EMAIL_DOMAIN.match(domain) is not None


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
        if name == "email" and not email_plainly_valid(value):
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

    def error(self, cells: list[str]) -> str:
        """What is wrong with the row, in the words `__call__` raises ("" if nothing)."""
        try:
            self(cells)
        except RowError as error:
            return str(error)
        return ""

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


KEYS = ("last_name", "first_name", "card_number", *PHONE_FIELDS)  # a row needs one of them


@dataclass
class Chunk:
    """Rows of a file, column by column: `columns[name][i]` is the value of the row read at `lines[i]`, None or ""
    where its cell was empty. The rows found wrong are in `errors`, as (line, what is wrong), and not in the columns."""

    lines: list[int]
    columns: dict[str, list]
    errors: list[tuple[int, str]]

    def __len__(self) -> int:
        return len(self.lines)

    def rows(self, indexes: list[int] | None = None) -> list[tuple[int, dict]]:
        """(line, the row's values as RowParser gives them: only the cells that were not empty), for every row or
        those at `indexes`."""
        names, columns = list(self.columns), list(self.columns.values())
        if indexes is None:
            rows = zip(self.lines, zip(*columns))
        else:
            rows = ((self.lines[index], [column[index] for column in columns]) for index in indexes)
        return [(line, {name: value for name, value in zip(names, values) if value is not None and value != ""}) for line, values in rows]


class ColumnParser:
    """Chunks of rows of one header → Chunk, each check run over a whole column at once with built-in functions:
    Python's own loops over every cell cost more than the rest of an import."""

    def __init__(self, header: list[str]):
        self.header = header
        self.rows = RowParser(header)  # its cache of parsed values, and the words for what is wrong

    def __call__(self, chunk: list[tuple[int, list[str] | None, str]]) -> Chunk:
        """`chunk`: (line, cells, "") for a row read, (line, None, what is wrong) for one the CSV reader refused."""
        errors = [(line, problem) for line, cells, problem in chunk if problem]
        shaped = [(line, cells) for line, cells, problem in chunk if not problem]
        misshapen = {index for index, (_, cells) in enumerate(shaped) if len(cells) != len(self.header)}
        if misshapen:  # rows of another width are the row parser's to describe; the columns need rows of one
            errors += [(shaped[index][0], self.rows.error(shaped[index][1])) for index in misshapen]
            shaped = [row for index, row in enumerate(shaped) if index not in misshapen]
        lines = [line for line, _ in shaped]
        table = [cells for _, cells in shaped]
        columns = {}
        wrong = set()  # rows a column refuses, by index in `table`
        for name, cells in zip(self.header, zip(*table) if table else [()] * len(self.header)):
            column = list(map(str.strip, cells))
            if "\x00" in "".join(column):
                wrong.update(index for index, value in enumerate(column) if "\x00" in value)
            limit = PLAIN_TEXT.get(name)
            if limit is not None:
                if max(map(len, column), default=0) > limit:
                    wrong.update(index for index, value in enumerate(column) if len(value) > limit)
            else:
                column = self.convert(name, column, wrong)
            columns[name] = column
        keys = [columns[name] for name in KEYS if name in columns]
        wrong.update(index for index, found in enumerate(map(any, zip(*keys)) if keys else [False] * len(table)) if not found)
        if wrong:
            errors += [(lines[index], self.rows.error(table[index])) for index in wrong]
            kept = [index for index in range(len(table)) if index not in wrong]
            lines = [lines[index] for index in kept]
            columns = {name: [column[index] for index in kept] for name, column in columns.items()}
        return Chunk(lines, columns, sorted(errors))

    def convert(self, name: str, column: list[str], wrong: set[int]) -> list:
        """A column that is not free text → its values, each distinct cell parsed once; None for an empty cell."""
        values = {"": None}
        refused = set()
        cells = list(set(column) - {""})
        if name in PHONE_FIELDS:  # nearly every number is distinct: read them all together
            for cell, e164 in zip(cells, phones_valid_e164(cells, self.rows.region)):
                values[cell] = e164 or None
                if not e164:
                    refused.add(cell)
            cells = []
        elif name == "email":  # most addresses are plain: those are found all at once, the others checked one by one
            plain = set(PLAIN_EMAILS.findall("\n".join(cells))).intersection(cells)
            values.update(zip(plain, plain))
            cells = [cell for cell in cells if cell not in plain]
        for cell in cells:
            try:
                values[cell] = self.rows.cell(name, cell)
            except RowError:
                values[cell] = None
                refused.add(cell)
        if refused:
            wrong.update(index for index, cell in enumerate(column) if cell in refused)
        return list(map(values.__getitem__, column))
