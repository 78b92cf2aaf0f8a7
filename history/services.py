import datetime
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Exists, Max, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from clients.lookups import one_of
from clients.models import Client
from clients.services import phone_condition, phone_owners
from history.models import Call, Recording
from simplecalls.db import array_literal, server_bound


def operators_call(user_id: int) -> Q:
    """The one rule for "this operator's call": they took it, or their phone rang for it."""
    return Q(operator_id=user_id) | Q(Exists(Call.rung.through.objects.filter(call_id=OuterRef("pk"), user_id=user_id)))


def operators_to_handle(user_id: int) -> Q:
    """A call this operator must see through: theirs, or one that rang them and nobody answered."""
    return Q(operator_id=user_id) | (operators_call(user_id) & Q(answered_at__isnull=True))


def sees_all_calls(user) -> bool:
    """Staff and supervisors (`history.view_all_calls`; superusers have it) see every operator's calls."""
    return user.is_staff or user.has_perm("history.view_all_calls")


def call_visible_to(user) -> QuerySet[Call]:
    """Operators see their own calls; staff and supervisors see every call."""
    calls = Call.objects.select_related("operator", "client", "reason", "result")
    return calls if sees_all_calls(user) else calls.filter(operators_call(user.pk))


# What the PBX tells about a call; registration fields (reason, result, comment…) are the operator's.
PBX_COLUMNS = ["linkedid", "direction", "disposition", "phone", "extension", "operator_id", "client_id", "started_at",
               "answered_at", "ended_at", "duration", "billsec", "source"]
# How an existing row takes a newer picture of its call ("c" is the row, "excluded" the picture):
# never backwards, whichever listener wrote last and in whatever order the pictures arrive.
MERGE = {
    "direction": "CASE WHEN excluded.direction = '' THEN c.direction ELSE excluded.direction END",
    "phone": "CASE WHEN excluded.phone = '' THEN c.phone ELSE excluded.phone END",
    "extension": "CASE WHEN excluded.extension = '' THEN c.extension ELSE excluded.extension END",
    "operator_id": "COALESCE(excluded.operator_id, c.operator_id)",
    "client_id": "COALESCE(c.client_id, excluded.client_id)",  # found by number: fills a row that has none
    "started_at": "CASE WHEN excluded.started_at < c.started_at THEN excluded.started_at ELSE c.started_at END",
    "answered_at": "CASE WHEN c.answered_at IS NULL OR excluded.answered_at < c.answered_at THEN excluded.answered_at ELSE c.answered_at END",
    "disposition": "CASE WHEN c.answered_at IS NOT NULL OR excluded.answered_at IS NOT NULL THEN 'answered' ELSE excluded.disposition END",
    "ended_at": "excluded.ended_at",
    "duration": "excluded.duration",
    "billsec": "excluded.billsec",
}


@functools.cache
def call_defaults() -> dict:
    """Every column of a call at its default, in the model's order."""
    return {field.attname: field.get_default() for field in Call._meta.concrete_fields}


def call_from_pbx(**values) -> Call:
    """An unsaved Call of these values (by attname), the rest at their defaults. Built from values in the model's order,
    which costs a third of Django's keywords: the listener builds one for every call it writes."""
    return Call(*(call_defaults() | values).values())


def calls_save_from_pbx(calls: list[Call]) -> dict[str, int]:
    """Insert or update calls by linkedid in one statement; return the id of each row written.

    Monotonic: `started_at` only moves earlier, `answered` never goes back to ringing, and a
    finished call is never written again (it is left out of the result). A client given here goes
    only to a row that has none (a row made before its number was known, as an originate's):
    a client the row has is the operator's to change.
    """
    return calls_send_from_pbx(calls)()


def calls_send_from_pbx(calls: list[Call]) -> Callable[[], dict[str, int]]:
    """`calls_save_from_pbx` in two steps, for `simplecalls.db.pipelined_transaction`: the statement is sent now, and calling
    what is returned reads its result (and sets each call's pk)."""
    if not calls:
        return dict
    fields = pbx_fields()
    for call in calls:
        call.source = call.source or Call.Source.AMI
    cursor = server_bound(connection.cursor())
    if connection.vendor == "postgresql":
        # Each column an array bound on the server: one statement for any batch, parsed and planned
        # once per connection (psycopg prepares it), and no value spelled out in the SQL.
        cursor.execute(upsert_from_arrays(), [array_literal([getattr(call, field.attname) for call in calls]) for field in fields])
    else:
        row = "(" + ", ".join(["%s"] * len(PBX_COLUMNS)) + ", '', '')"
        params = [field.get_db_prep_save(getattr(call, field.attname), connection) for call in calls for field in fields]
        cursor.execute(upsert_sql(f"VALUES {', '.join([row] * len(calls))}"), params)

    def written() -> dict[str, int]:
        with cursor:
            rows = {linkedid: pk for pk, linkedid in cursor.fetchall()}
        for call in calls:
            call.pk = rows.get(call.linkedid)
        return rows

    if connection.vendor != "postgresql":  # SQLite ends no transaction while a statement is unread
        rows = written()
        return lambda: rows
    return written


def calls_written(linkedids: list[str]) -> Callable[[], list[tuple]]:
    """What the log already holds of these calls, in two steps as `calls_send_from_pbx`: for each row,
    (linkedid, operator_id, answered_at, ended_at, source, [the users its phones rang, in the order they were added])."""
    if not linkedids:
        return list
    if connection.vendor != "postgresql":
        rows = {row[0]: [*row, []] for row in Call.objects.filter(linkedid__in=linkedids).order_by().values_list(*WRITTEN_COLUMNS)}
        for linkedid, user_id in Call.rung.through.objects.filter(call__linkedid__in=rows).order_by("pk").values_list("call__linkedid", "user_id"):
            rows[linkedid][-1].append(user_id)
        return lambda: [tuple(row) for row in rows.values()]
    cursor = server_bound(connection.cursor())
    cursor.execute(written_statement(), [array_literal(linkedids)])

    def rows() -> list[tuple]:
        with cursor:
            return cursor.fetchall()

    return rows


WRITTEN_COLUMNS = ["linkedid", "operator_id", "answered_at", "ended_at", "source"]


@functools.cache
def written_statement() -> str:
    """`calls_written`'s statement on PostgreSQL, built once."""
    Rung = Call.rung.through
    return (
        f"SELECT {', '.join(f'c.{column}' for column in WRITTEN_COLUMNS)}, "
        f"array_remove(array_agg(r.user_id ORDER BY r.id), NULL) FROM {Call._meta.db_table} c "
        f"LEFT JOIN {Rung._meta.db_table} r ON r.call_id = c.id WHERE c.linkedid = ANY({arrays_of([Call._meta.get_field('linkedid')])}) GROUP BY c.id"
    )


@functools.cache
def pbx_fields() -> list:
    return [Call._meta.get_field(column.removesuffix("_id") if column.endswith("_id") else column) for column in PBX_COLUMNS]


@functools.cache
def upsert_from_arrays() -> str:
    """`calls_save_from_pbx`'s statement on PostgreSQL: the same for any batch, so built once."""
    return upsert_sql(f"SELECT *, '', '' FROM unnest({arrays_of(pbx_fields())})")


@functools.cache
def rung_from_arrays() -> str:
    """`calls_add_rung`'s statement on PostgreSQL, built once."""
    Rung = Call.rung.through
    return (
        f"INSERT INTO {Rung._meta.db_table} (call_id, user_id) SELECT c.id, r.user_id "
        f"FROM unnest({arrays_of([Call._meta.get_field('linkedid'), Rung._meta.get_field('user')])}) AS r (linkedid, user_id) "
        f"JOIN {Call._meta.db_table} c ON c.linkedid = r.linkedid ON CONFLICT DO NOTHING"
    )


def arrays_of(fields) -> str:
    """One placeholder per field for an array of its values, cast to the column's type (any length: a too long value still fails)."""
    return ", ".join(f"%s::{field.db_type(connection).partition('(')[0]}[]" for field in fields)


def upsert_sql(rows: str) -> str:
    return (
        f"INSERT INTO {Call._meta.db_table} AS c ({', '.join(PBX_COLUMNS)}, caller_kind, comment) {rows} "
        f"ON CONFLICT (linkedid) DO UPDATE SET {', '.join(f'{column} = {expression}' for column, expression in MERGE.items())} "
        "WHERE c.ended_at IS NULL RETURNING id, linkedid"
    )


def calls_add_rung(pairs: list[tuple[str, int]]) -> None:
    """Remember the operators whose phones rang for each call (linkedid, user id); nobody is ever taken off.

    A linkedid with no row is passed over. One statement, which needs no result: it can go in a pipeline.
    """
    if not pairs:
        return
    pairs = set(pairs)
    Rung = Call.rung.through
    if connection.vendor != "postgresql":
        ids = call_ids({linkedid for linkedid, _ in pairs})
        rows = [Rung(call_id=ids[linkedid], user_id=user_id) for linkedid, user_id in sorted(pairs) if linkedid in ids]
        Rung.objects.bulk_create(rows, ignore_conflicts=True)
        return
    with server_bound(connection.cursor()) as cursor:
        cursor.execute(rung_from_arrays(), [array_literal([linkedid for linkedid, _ in pairs]), array_literal([user_id for _, user_id in pairs])])


def call_ids(linkedids: set[str]) -> dict[str, int]:
    """Each written call's id by its linkedid (where PostgreSQL joins on the linkedid instead)."""
    return dict(Call.objects.filter(linkedid__in=linkedids).values_list("linkedid", "pk"))


def recordings_add(recordings: list[tuple[str, str, int]]) -> None:
    """Keep each call's recording (linkedid, file, seconds), once: a file the call already has is passed over, as is a
    linkedid with no row. One statement that needs no result, like `calls_add_rung`."""
    if not recordings:
        return
    if connection.vendor != "postgresql":
        ids = call_ids({linkedid for linkedid, _, _ in recordings})
        for linkedid, file, duration in recordings:
            if linkedid in ids:
                Recording.objects.get_or_create(call_id=ids[linkedid], file=file, defaults={"duration": duration})
        return
    with server_bound(connection.cursor()) as cursor:
        cursor.execute(recordings_from_arrays(), [array_literal(column) for column in zip(*dict.fromkeys(recordings))])


@functools.cache
def recordings_from_arrays() -> str:
    """`recordings_add`'s statement on PostgreSQL, built once."""
    table = Recording._meta.db_table
    fields = [Call._meta.get_field("linkedid"), Recording._meta.get_field("file"), Recording._meta.get_field("duration")]
    return (
        f"INSERT INTO {table} (call_id, file, duration) SELECT DISTINCT ON (c.id, r.file) c.id, r.file, r.duration "
        f"FROM unnest({arrays_of(fields)}) AS r (linkedid, file, duration) JOIN {Call._meta.db_table} c ON c.linkedid = r.linkedid "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} x WHERE x.call_id = c.id AND x.file = r.file)"
    )


PENDING_DAYS = 7


def calls_awaiting_registration(user_id: int) -> QuerySet[Call]:
    """The operator's finished calls of the last week that nobody registered or dismissed yet.

    A call nobody answered waits for every operator it rang, until one of them registers it.
    """
    since = timezone.now() - datetime.timedelta(days=PENDING_DAYS)
    return (
        Call.objects.filter(operators_to_handle(user_id), ended_at__isnull=False, registered_at__isnull=True, dismissed_at__isnull=True, started_at__gte=since)
        .select_related("client__card_type")
        .order_by("started_at")[:50]
    )


# What registration writes: the operator's fields only, so a hang-up the listener writes meanwhile stays.
REGISTRATION_FIELDS = ["caller_kind", "contact_reason", "reason", "result", "comment", "reminder_on", "registered_at", "dismissed_at"]


def call_register(call: Call) -> Call:
    """Mark a call registered (its form fields already set on `call`); a reminder also sets the client's call-back date."""
    call.registered_at = timezone.now()
    call.dismissed_at = None
    Call.objects.filter(pk=call.pk).update(**{name: getattr(call, name) for name in REGISTRATION_FIELDS})
    if call.reminder_on and call.client_id:
        Client.objects.filter(pk=call.client_id).update(call_back_on=call.reminder_on)
    return call


def call_dismiss(call: Call) -> None:
    Call.objects.filter(pk=call.pk, registered_at__isnull=True).update(dismissed_at=timezone.now())


def calls_dismiss_pending(user_id: int) -> list[int]:
    """Dismiss every call awaiting this operator's registration at once; the ids of those dismissed."""
    since = timezone.now() - datetime.timedelta(days=PENDING_DAYS)
    pending = Call.objects.filter(operators_to_handle(user_id), ended_at__isnull=False, registered_at__isnull=True, dismissed_at__isnull=True, started_at__gte=since)
    ids = list(pending.values_list("pk", flat=True))
    Call.objects.filter(pk__in=ids, registered_at__isnull=True).update(dismissed_at=timezone.now())
    return ids


def call_set_client(call: Call, client: Client) -> None:
    call.client = client
    Call.objects.filter(pk=call.pk).update(client=client)


def calls_attach_to_client(client: Client) -> int:
    """Late binding: earlier calls from the new client's numbers join their history."""
    return calls_attach_by_phones(client.phones)


def calls_attach_by_phones(phones: Iterable[str]) -> int:
    """Late binding: calls nobody attached yet, from numbers exactly one client has, join that client's history.

    A number two clients share attaches to neither: which of them called is anybody's guess. Set-based,
    for one client or an import's batch: a query for the numbers that have such calls, one for their
    owners, one UPDATE.
    """
    phones = set(phones)
    if not phones:
        return 0
    waiting = Call.objects.filter(one_of("phone", phones), client__isnull=True).order_by().values_list("phone", flat=True).distinct()
    owners = phone_owners(waiting)
    if not owners:
        return 0
    owner = Client.objects.filter(phone_condition(OuterRef("phone"))).order_by().values("pk")[:1]
    return Call.objects.filter(one_of("phone", set(owners)), client__isnull=True).update(client_id=Subquery(owner))


def client_recent_calls(client_id: int, *, exclude: int | None = None, limit: int = 5) -> list[Call]:
    calls = Call.objects.filter(client_id=client_id).exclude(pk=exclude).select_related("reason", "result", "operator")
    return list(calls.order_by("-started_at")[:limit])


def reminders_for(user) -> QuerySet[Call]:
    """The operator's personal reminders from today on."""
    return Call.objects.filter(operator=user, reminder_on__gte=timezone.localdate()).select_related("client").order_by("reminder_on")


def calls_close(*, before: datetime.datetime, keep: set[str], at: datetime.datetime) -> int:
    """End the calls still open that started before `before` and are not in `keep`: their end was lost.

    An answered call stays answered; one never answered is a missed call, and waits to be registered.
    """
    closed = 0
    open_calls = Call.objects.filter(ended_at__isnull=True, started_at__lt=before).exclude(linkedid__in=keep)
    for pk, started_at, answered_at in open_calls.values_list("pk", "started_at", "answered_at"):
        ended_at = max(at, started_at)
        closed += Call.objects.filter(pk=pk, ended_at__isnull=True).update(
            ended_at=ended_at,
            disposition=Call.Disposition.ANSWERED if answered_at else Call.Disposition.NO_ANSWER,
            duration=round((ended_at - started_at).total_seconds()),
            billsec=round((ended_at - answered_at).total_seconds()) if answered_at else 0,
        )
    return closed


MISSED_DAYS = 30


def missed_calls() -> QuerySet[Call]:
    """Incoming calls of the last MISSED_DAYS days that nobody answered and nobody has followed up yet.

    Followed up: the call was registered, or somebody spoke with its number afterwards: a call-back the
    client answered (an attempt nobody picked up is not enough), or a later call from it that was answered.
    A hidden number cannot be called back and is left out.
    """
    since = timezone.now() - datetime.timedelta(days=MISSED_DAYS)
    spoken_after = Call.objects.filter(phone=OuterRef("phone"), started_at__gt=OuterRef("started_at"), answered_at__isnull=False)
    return (
        Call.objects.filter(direction=Call.Direction.IN, started_at__gte=since, ended_at__isnull=False)
        .filter(answered_at__isnull=True, registered_at__isnull=True)
        .exclude(phone="")
        .exclude(Exists(spoken_after))
    )


def missed_assigned_to(user_id: int) -> Q:
    """A missed call is for the client's responsible manager; with none, for the operators it rang."""
    # Exists by the client's key, not a join: the planner would otherwise hash the whole client table.
    managed = Client.objects.filter(pk=OuterRef("client_id"), manager__isnull=False)
    return Exists(managed.filter(manager_id=user_id)) | (~Exists(managed) & operators_call(user_id))


def missed_calls_for(user) -> QuerySet[Call]:
    """The missed calls this user is to call back; supervisors see everybody's."""
    calls = missed_calls()
    if sees_all_calls(user):
        return calls
    # Start from the user's own rows (calls that rang them, calls of their clients): read through the
    # indexes on those, they are far fewer than all the calls of the last days.
    since = timezone.now() - datetime.timedelta(days=MISSED_DAYS)
    theirs = Call.rung.through.objects.filter(user_id=user.pk).values("call_id").union(
        Call.objects.filter(operator_id=user.pk, started_at__gte=since).order_by().values("pk"),
        Call.objects.filter(client__manager_id=user.pk, started_at__gte=since).order_by().values("pk"),
        all=True,
    )
    return calls.filter(missed_assigned_to(user.pk), pk__in=theirs)


def missed_numbers(calls: QuerySet[Call]) -> QuerySet:
    """One row per number among `calls` ({"phone", "last_at"}), the number that called last first."""
    return calls.order_by().values("phone").annotate(last_at=Max("started_at")).order_by("-last_at", "phone")


@dataclass
class MissedNumber:
    """A number to call back: its latest missed call, how many missed calls it has waiting, and for whom."""

    call: Call
    count: int
    assignees: list


def missed_numbers_detail(user, rows) -> list[MissedNumber]:
    """Some rows of `missed_numbers(missed_calls_for(user))` (a page) with their calls, in two queries."""
    phones = [row["phone"] for row in rows]
    calls = missed_calls().filter(phone__in=phones)  # so few rows that the rule can be checked row by row
    if not sees_all_calls(user):
        calls = calls.filter(missed_assigned_to(user.pk))
    by_phone: dict[str, list[Call]] = {}
    for call in calls.select_related("client__manager", "operator").prefetch_related("rung").order_by("-started_at"):
        by_phone.setdefault(call.phone, []).append(call)
    numbers = []
    for phone in phones:
        if group := by_phone.get(phone):  # none when the number was called back between the two queries
            assignees = {}
            for call in group:
                manager = call.client.manager if call.client_id else None
                for person in [manager] if manager else [*call.rung.all(), *([call.operator] if call.operator_id else [])]:
                    assignees.setdefault(person.pk, person)
            numbers.append(MissedNumber(group[0], len(group), list(assignees.values())))
    return numbers
