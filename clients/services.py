"""Reads and writes of the client base; views, importers and the listener call these."""

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Reverse, Substr

from clients.lookups import one_of
from clients.models import PHONE_FIELDS, CardType, Client, digits_reversed, fold
from clients.phones import phone_normalize
from clients.signals import phones_changed
from simplecalls.db import array_literal, server_bound

# What a search must be given to narrow the base down through an index; anything shorter finds nobody.
MIN_PHONE_DIGITS = 4  # the end of a phone number
MIN_CARD_CHARACTERS = 3  # the beginning or the end of a card number
MIN_NAME_LETTERS = 2  # the beginning of a last or first name
PHONE_TYPED = re.compile(r"[\d\s().+-]+")


# A phone column has no index of its own: the index on its reversed digits, which finds a number by its last digits,
# finds it whole too, and the column itself is compared after. One index a column fewer for every write (an import pays
# for each entry), the same lookups.


def phone_condition(e164: str | F) -> Q:
    """One OR over the three phone columns, each branch read from its column's index. `e164`: a number, or an expression
    whose value is one, as OuterRef("phone") (its digits reversed are then its characters after the "+", reversed)."""
    key = digits_reversed(e164) if isinstance(e164, str) else Reverse(Substr(e164, 2))
    condition = Q()
    for name in PHONE_FIELDS:
        condition |= Q(**{f"{name}_reversed": key}) & Q(**{name: e164})
    return condition


def phones_condition(phones: set[str]) -> Q:
    """`phone_condition` for a set of numbers: one array parameter a column, whatever the set's size."""
    condition = Q()
    for name in PHONE_FIELDS:
        condition |= phone_column_condition(name, phones)
    return condition


def phone_column_condition(name: str, phones: set[str]) -> Q:
    """The clients with one of these numbers in phone column `name`, read from the column's index."""
    keys = {digits_reversed(phone) for phone in phones} - {None}
    # Spelled out so the planner matches the partial index even for arrays of thousands.
    return Q(**{f"{name}_reversed__isnull": False}) & one_of(f"{name}_reversed", keys) & one_of(name, phones)


def phone_params(e164s: set[str]) -> list:
    """What `phone_condition` (one number) or `phones_condition` binds for these numbers, in order: the parameters of a
    statement built from one of them alone (`caller_statement`) with any number in its place."""
    if len(e164s) == 1:
        e164 = next(iter(e164s))
        return [digits_reversed(e164), e164] * len(PHONE_FIELDS)
    keys = {digits_reversed(phone) for phone in e164s} - {None}
    return [array_literal(keys), array_literal(e164s)] * len(PHONE_FIELDS)


def clients_with_phone(e164: str) -> QuerySet[Client]:
    """The clients with this number and their card types (what a pop-up shows), in one indexed statement."""
    # Unordered: sorting by name would tempt the planner to walk the name index instead.
    return Client.objects.filter(phone_condition(e164)).order_by().select_related("card_type")


def clients_with_phones(e164s: set[str]) -> QuerySet[Client]:
    """`clients_with_phone` for a set of numbers; on PostgreSQL one array parameter a column, whatever the set's size."""
    return Client.objects.filter(phones_condition(e164s)).order_by().select_related("card_type")


def client_find_by_phone(raw: str) -> list[Client]:
    """Every client with this number in any of their phones, whatever form the caller ID takes."""
    e164 = phone_normalize(raw)
    if not e164:
        return []
    return by_name(clients_having({e164}))


def client_search(query: str) -> QuerySet[Client]:
    """Clients whose name, phone or card number matches what an operator typed; empty input lists everyone.

    - name: every typed word begins a word of the name, and one of them (two letters or more) begins
      the last or the first name; any case, ё and е alike;
    - phone, when only a phone's characters are typed: the number in any form, or its last digits (four or more);
    - card: the beginning or the end of its number (three characters or more).
    Each alternative starts from an index on a stored search key (clients.models.search_columns), so
    nothing reads the whole table; input too short for any of them finds nobody without a query.
    """
    query = query.strip()
    clients = Client.objects.select_related("card_type")
    if not query:
        return clients
    conditions = card_part_conditions(query)
    conditions += phone_part_conditions(query) if PHONE_TYPED.fullmatch(query) else name_conditions(query)
    if not conditions:
        return clients.none()
    found = Q()
    for condition in conditions:
        found |= condition
    return clients.filter(found)


def name_conditions(query: str) -> list[Q]:
    words = fold(query).split()
    every = Q()
    for word in words:
        every &= Q(search_name__prefix=word) | Q(search_name__contains=f" {word}")
    # One alternative per indexed prefix: SQLite reads an OR from indexes only when each branch has one.
    leading = [word for word in words if len(word) >= MIN_NAME_LETTERS]
    return [Q(**{f"{column}__prefix": word}) & every for word in leading for column in ("search_name", "search_first_name")]


def phone_part_conditions(query: str) -> list[Q]:
    digits = "".join(ch for ch in query if ch in "0123456789")
    if len(digits) < MIN_PHONE_DIGITS:
        return []
    conditions = [Q(**{f"{name}_reversed__prefix": digits[::-1]}) for name in PHONE_FIELDS]
    e164 = phone_normalize(query)
    if e164:  # typed with a trunk prefix (8 495…), the whole number is no suffix of the stored one
        conditions.append(phone_condition(e164))
    return conditions


def card_part_conditions(query: str) -> list[Q]:
    card = fold(query)
    if len(card) < MIN_CARD_CHARACTERS:
        return []
    return [Q(search_card__prefix=card), Q(search_card_reversed__prefix=card[::-1])]


def clients_by_phones(e164s: set[str]) -> dict[str, list[Client]]:
    """For each number, the clients who have it: one query for a whole batch of callers."""
    return clients_by_phones_send(e164s)()


def clients_by_phones_send(e164s: set[str]) -> Callable[[], dict[str, list[Client]]]:
    """`clients_by_phones` in two steps, for `simplecalls.db.pipelined_transaction`: the query is sent now, and calling
    what is returned reads its answer."""
    if not e164s:
        return dict
    having = clients_having_send(set(e164s))

    def by_phone() -> dict[str, list[Client]]:
        found: dict[str, list[Client]] = {phone: [] for phone in e164s}
        for client in having():
            for phone in set(client.phones) & found.keys():
                found[phone].append(client)
        return {phone: by_name(clients) for phone, clients in found.items()}

    return by_phone


def by_name(clients: Iterable[Client]) -> list[Client]:
    return sorted(clients, key=lambda client: (client.full_name, client.pk))


CLIENT_COLUMNS = [field.attname for field in Client._meta.concrete_fields]
CARD_TYPE_COLUMNS = [field.attname for field in CardType._meta.concrete_fields]


def clients_having(e164s: set[str]) -> list[Client]:
    """The clients with any of these numbers, and their card types: `clients_with_phone(s)`, fast on PostgreSQL.

    A lookup runs for every call, and the ORM's compiling of the query costs more than the indexed
    query itself, PostgreSQL's parsing and planning as much again. So on PostgreSQL the statement is
    compiled once (`caller_statement`) and bound on the server, which lets psycopg prepare it: parsed
    and planned once per connection (`prepare_threshold` in the database's OPTIONS).
    """
    return clients_having_send(e164s)()


def clients_having_send(e164s: set[str]) -> Callable[[], list[Client]]:
    """`clients_having` in two steps, as `clients_by_phones_send`."""
    one = len(e164s) == 1
    if connection.vendor != "postgresql":
        matched = list(clients_with_phone(*e164s) if one else clients_with_phones(e164s))
        return lambda: matched
    cursor = server_bound(connection.cursor())
    # A batch's numbers as one array literal, as `one_of` sends them: the driver's dumping of a list costs more.
    cursor.execute(caller_statement(one), phone_params(e164s))

    def clients() -> list[Client]:
        with cursor:
            rows = cursor.fetchall()
        width, found = len(CLIENT_COLUMNS), []
        for row in rows:
            client = Client.from_db(connection.alias, CLIENT_COLUMNS, row[:width])
            client.card_type = CardType.from_db(connection.alias, CARD_TYPE_COLUMNS, row[width:]) if row[width] is not None else None
            found.append(client)
        return found

    return clients


@functools.cache
def caller_statement(one: bool) -> str:
    """The SQL of `clients_with_phone` (one number) or `clients_with_phones`: the clients' columns, then their card types'."""
    queryset = clients_with_phone("+0") if one else clients_with_phones({"+0"})
    compiler = queryset.query.get_compiler(connection.alias)
    sql, _ = compiler.as_sql()
    columns = [(column.target.model, column.target.attname) for column, *_ in compiler.select]
    if columns != [(Client, name) for name in CLIENT_COLUMNS] + [(CardType, name) for name in CARD_TYPE_COLUMNS]:
        raise AssertionError(f"the ORM selects the caller's columns in another order: {columns}")
    return sql


def phone_owners(phones: Iterable[str]) -> dict[str, int]:
    """Each of the numbers that exactly one client has, with that client's id; a shared number is nobody's."""
    phones = set(phones)
    if not phones:
        return {}
    owners: dict[str, set[int]] = {}
    for pk, *numbers in Client.objects.filter(phones_condition(phones)).order_by().values_list("pk", *PHONE_FIELDS):
        for number in phones.intersection(numbers):
            owners.setdefault(number, set()).add(pk)
    return {phone: next(iter(ids)) for phone, ids in owners.items() if len(ids) == 1}


@dataclass
class Duplicate:
    """Another client with some of the same details: which client, and which of the details."""

    client: Client
    phones: list[str] = field(default_factory=list)
    card_number: bool = False


def client_duplicates(client: Client) -> list[Duplicate]:
    """Other clients who have one of this client's phone numbers or its card number (any case)."""
    client.prepare_for_save()
    phones = set(client.phones)
    condition = Q(search_card=client.search_card) if client.search_card else Q(pk__in=[])
    for phone in phones:
        condition |= phone_condition(phone)
    others = Client.objects.filter(condition).exclude(pk=client.pk).order_by("last_name", "first_name", "pk")
    return [
        Duplicate(other, [phone for phone in other.phones if phone in phones], bool(client.search_card) and other.search_card == client.search_card)
        for other in others[:10]
    ]


@transaction.atomic
def client_save(client: Client, *, phones_before: Iterable[str] = ()) -> Client:
    """Save a client typed in by hand; the numbers it gained or lost are announced (late binding of their calls)."""
    client.save()
    changed = set(client.phones) ^ set(phones_before)
    if changed:
        phones_changed.send(sender=Client, phones=changed)
    return client
