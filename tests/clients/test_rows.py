"""The column parser and the column encoder against their row-by-row counterparts, on rows made to go wrong."""

import random

import pytest

from clients.bulk import ClientCopy
from clients.models import digits_reversed, digits_reversed_all, search_columns, search_columns_of
from clients.rows import COLUMNS, PLAIN_EMAILS, ColumnParser, RowError, RowParser, parse_cell

pytestmark = pytest.mark.django_db

# Cells that parse, cells that do not, and cells that only look empty, column by column.
CELLS = {
    "last_name": ["Иванов", " Ёлкин ", "", "  ", "=HYPERLINK(1)", "Ш" * 100, "Ш" * 101, "back\\slash", "tab\there", "cr\rlf", "ΣΊΣΥΦΟΣ", "Straße", "\x00"],
    "first_name": ["Иван", "", "ЁЖИК", "ﬁlm", "a\nb"],
    "middle_name": ["", "Петрович", "\u00a0"],
    "sex": ["", "м", "Ж", "female", "x"],
    "birth_day": ["", "1", "31", "32", "0", "٣", "07"],
    "birth_year": ["", "1964", "1899", "abc"],
    "phone_mobile": ["", "8 (916) 123-45-67", "+7 916 123 45 67", "12345", "+44 20 7946 0958", "８９１６１２３４５６７", "8-800-555-35-35"],
    "phone_home": ["", "74993690439", "not a phone"],
    "email": ["", "", "", "a@b.ru", "x@localhost", "bad@", "a@[127.0.0.1]", "ivan@пример.рф", "@b.ru", "Ivan.Petrov+tag@Mail.Example.RU",
              "a..b@x.ru", "ſ@b.ru", "a\n@b.ru", "x" * 249 + "@b.ru", "x" * 250 + "@b.ru"],
    "no_sms": ["", "да", "НЕТ", "maybe", "+"],
    "postcode": ["", "170879", "1" * 21],
    "ad_source": ["", "Сайт", "с" * 201],
    "card_number": ["", "A-1", "a-1", "Ёлка-7", "x" * 51],
    "card_type": ["", "Золотая"],
    "status": ["", "active", "потенциальный", "lost"],
    "blacklisted": ["", "1", "0", "yes"],
    "call_back_on": ["", "21.06.2026", "2026-06-21", "31.02.2026", "tomorrow"],
    "comment": ["", "C:\\new\r\nline", "x" * 10_001],
}


def random_rows(header: list[str], count: int, seed: int) -> list[tuple[int, list[str] | None, str]]:
    rng = random.Random(seed)
    rows = []
    for line in range(2, count + 2):
        cells = [rng.choice(CELLS[name]) for name in header]
        shape = rng.random()
        if shape < 0.03:
            rows.append((line, None, "the CSV reader refused it"))
            continue
        if shape < 0.06:
            cells = cells[:-1] if rng.random() < 0.5 else [*cells, "extra"]
        rows.append((line, cells, ""))
    return rows


@pytest.mark.parametrize("seed", range(5))
def test_the_column_parser_keeps_and_refuses_the_rows_the_row_parser_does_in_its_words(seed):
    header = random.Random(seed).sample(list(CELLS), k=12 + seed)
    rows = random_rows(header, 400, seed)
    row_parser = RowParser(header)
    expected_rows, expected_errors = [], []
    for line, cells, problem in rows:
        message = problem or row_parser.error(cells)
        if message:
            expected_errors.append((line, message))
        else:
            expected_rows.append((line, row_parser(cells)))
    chunk = ColumnParser(header)(rows)
    assert chunk.errors == expected_errors
    assert list(chunk.rows()) == expected_rows
    assert expected_rows and expected_errors  # the corpus has both


def test_search_keys_column_by_column_are_search_columns_row_by_row():
    header = ["last_name", "first_name", "middle_name", "phone_mobile", "phone_home", "card_number"]
    rows = [(line, cells, "") for line, cells, problem in random_rows(header, 300, 11) if not problem and len(cells) == len(header)]
    chunk = ColumnParser(header)(rows)
    keys = search_columns_of(chunk.columns, len(chunk))
    by_row = [search_columns(values) for _, values in chunk.rows()]
    assert [dict(zip(keys, values)) for values in zip(*keys.values())] == by_row


def test_new_clients_encoded_column_by_column_are_the_lines_encoded_row_by_row():
    header = [name for name in COLUMNS if name in CELLS]
    rng = random.Random(3)
    good = {name: [cell for cell in CELLS[name] if parses(name, cell)] for name in header}
    rows = [(line, [rng.choice(good[name]) for name in header], "") for line in range(2, 402)]
    chunk = ColumnParser(header)(rows)
    names = {name: number for number, name in enumerate(dict.fromkeys(chunk.columns["ad_source"] + chunk.columns["card_type"]), 1)}
    for name in ("ad_source", "card_type"):  # dictionary names → ids, as the importer does before writing
        chunk.columns[name] = [names[value] if value else None for value in chunk.columns[name]]
    copy = ClientCopy()
    lines = copy.lines(chunk, copy.prefixes(chunk))
    assert len(lines) == len(chunk) > 100
    assert lines == [copy.line(values) for _, values in chunk.rows()]


def parses(name: str, cell: str) -> bool:
    try:
        return "\x00" not in cell and (not cell.strip() or parse_cell(name, cell.strip()) is not None)
    except RowError:
        return False


def test_every_address_the_column_takes_at_once_is_one_the_row_parser_takes():
    rng = random.Random(13)
    local = ["a", "Z", "0", "-", ".", "_", "+", "'", "ſ", "K", " ", '"', "я", "@", "x" * 40]
    labels = ["b", "B-c", "-b", "b-", "xn--p1ai", "пример", "0", "b" * 63, "b" * 64, "", "K"]
    ends = ["ru", "RU", "r", "r-", "1", "xn--p1ai", "рф", "com."]
    addresses = {
        "".join(rng.choices(local, k=rng.randrange(1, 6))) + "@" + ".".join(rng.choices(labels, k=rng.randrange(0, 4)) + [rng.choice(ends)])
        for _ in range(30_000)
    }
    plain = set(PLAIN_EMAILS.findall("\n".join(addresses)))
    assert len(plain) > 500 and len(addresses - plain) > 10_000, "the corpus has plain addresses and others"
    for address in plain:
        assert parse_cell("email", address) == address


def test_a_column_of_phones_reversed_at_once_is_each_phone_reversed():
    rng = random.Random(17)
    forms = ["+79031234567", "+74993690439", "+", "+7", None, "", "+7+903", "+７903", "89031234567", "+7 903", "+7\x00", "abc"]
    for size in (0, 1, 2, 5, 50):
        for _ in range(300):
            phones = [rng.choice(forms) for _ in range(size)]
            assert digits_reversed_all(phones) == [digits_reversed(phone) for phone in phones], phones
    e164 = [f"+7903{rng.randrange(10**7):07d}" if rng.random() < 0.7 else None for _ in range(1000)]
    assert digits_reversed_all(e164) == [digits_reversed(phone) for phone in e164]
