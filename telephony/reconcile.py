"""Repairing the call log from the PBX's own records (CDR): calls the listener missed or left open."""

import logging
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from clients.services import clients_by_phones
from history.models import Call
from telephony.cdr import CdrCall, CdrError, CdrRow, calls_from_cdr, read_csv, read_table
from telephony.models import Operator

log = logging.getLogger("telephony.reconcile")

CHUNK = 1000
MAX_WARNINGS = 20


def cdr_reconcile(*, calls: list[CdrCall]) -> dict[str, int]:
    """Create the calls the log lacks and close the ones left open; complete calls stay as they are.

    Running it again changes nothing, and it may run beside the listener or another reconciliation:
    an insert skips a linkedid written meanwhile, and an open call is closed only while still open.
    """
    counts = {"created": 0, "closed": 0, "unchanged": 0}
    unique = list({call.key: call for call in calls}.values())
    for start in range(0, len(unique), CHUNK):
        for name, count in _reconcile_chunk(unique[start:start + CHUNK]).items():
            counts[name] += count
    return counts


def _reconcile_chunk(calls: list[CdrCall]) -> dict[str, int]:
    existing = dict(Call.objects.filter(linkedid__in=[call.key for call in calls]).values_list("linkedid", "ended_at"))
    new = [call for call in calls if call.key not in existing]
    still_open = [call for call in calls if call.key in existing and existing[call.key] is None]
    wanted = new + still_open
    operators = dict(
        Operator.objects.filter(extension__in={call.extension for call in wanted if call.extension})
        .values_list("extension", "user_id")
    )
    matches = clients_by_phones({call.phone for call in wanted if call.phone})
    clients = {phone: found[0].pk for phone, found in matches.items() if len(found) == 1}

    Call.objects.bulk_create([_new_call(call, operators, clients) for call in new], ignore_conflicts=True)
    # A listener may have written some of these meanwhile: its open rows are closed like the others.
    raced = dict(
        Call.objects.filter(linkedid__in=[call.key for call in new]).exclude(source=Call.Source.CDR)
        .values_list("linkedid", "ended_at")
    )
    still_open += [call for call in new if call.key in raced and raced[call.key] is None]
    closed = sum(_close(call, operators, clients) for call in still_open)
    created = len(new) - len(raced)
    return {"created": created, "closed": closed, "unchanged": len(calls) - created - closed}


def _new_call(call: CdrCall, operators: dict[str, int], clients: dict[str, int]) -> Call:
    return Call(
        linkedid=call.key, direction=call.direction, disposition=call.disposition, phone=call.phone,
        extension=call.extension, operator_id=operators.get(call.extension), client_id=clients.get(call.phone),
        started_at=call.started_at, answered_at=call.answered_at, ended_at=call.ended_at,
        duration=call.duration, billsec=call.billsec, source=Call.Source.CDR,
    )


def _close(call: CdrCall, operators: dict[str, int], clients: dict[str, int]) -> bool:
    """Close an open row with the CDR's outcome, unless the listener closes it first."""
    changes = {
        # A call the listener saw answered stays answered, as the listener itself would keep it.
        "disposition": Case(When(answered_at__isnull=False, then=Value("answered")), default=Value(call.disposition)),
        # CDR times are whole seconds: the end may fall just before the finer times the listener wrote.
        "ended_at": Greatest(Value(call.ended_at), F("started_at"), Coalesce(F("answered_at"), Value(call.ended_at))),
        "duration": call.duration, "billsec": call.billsec,
    }
    # What the listener already knows is kept: the CDR only fills the gaps.
    if call.answered_at is not None:
        changes["answered_at"] = Coalesce(F("answered_at"), Value(call.answered_at))
    if call.phone:
        changes["phone"] = Case(When(phone="", then=Value(call.phone)), default=F("phone"))
    if call.extension:
        changes["extension"] = Case(When(extension="", then=Value(call.extension)), default=F("extension"))
    if call.extension in operators:
        changes["operator_id"] = _fill("operator_id", operators[call.extension], Q(extension="") | Q(extension=call.extension))
    if call.phone in clients:
        changes["client_id"] = _fill("client_id", clients[call.phone], Q(phone="") | Q(phone=call.phone))
    return Call.objects.filter(linkedid=call.key, ended_at__isnull=True).update(**changes) == 1


def _fill(field: str, value: int, same_call: Q) -> Case:
    # Only a link nobody has made, and only to the number or extension the row shows.
    return Case(When(same_call, **{f"{field}__isnull": True}, then=Value(value)), default=F(field), output_field=IntegerField())


def cdr_calls(rows: list[CdrRow]) -> list[CdrCall]:
    """The calls these rows tell of, with operators' phones known as the listener knows them."""
    endpoints = dict(Operator.objects.exclude(channel="").values_list("channel", "extension"))
    return calls_from_cdr(rows, region=settings.PHONE_REGION, extension_pattern=settings.EXTENSION_PATTERN, endpoints=endpoints)


def cdr_reconcile_recent() -> dict[str, int] | None:
    """Reconcile the last CDR_WINDOW_HOURS of the configured CDR (CDR_CSV, else CDR_DSN); None without one.

    It runs on a timer, so it never raises: a source it cannot read is one error in the log.
    """
    if not settings.CDR_CSV and not settings.CDR_DSN:
        return None
    source = settings.CDR_CSV or f"table {settings.CDR_TABLE}"
    try:
        rows = _read_recent(source)
    except (OSError, CdrError, LookupError, ValueError) as error:  # the last two: a bad CDR_TIMEZONE
        if isinstance(error, FileNotFoundError) and Path(source).parent.is_dir():  # the PBX makes it with its first record
            log.warning("CDR not read: %s does not exist yet (the PBX creates it with its first call record)", source)
        else:
            log.error("CDR not read from %s: %s", source, error)
        return None
    try:
        calls = cdr_calls(rows)
        counts = cdr_reconcile(calls=calls)
    except Exception:  # the next run must still come
        log.exception("CDR reconciliation from %s failed", source)
        return None
    log.info("CDR reconciled from %s: %d rows, %d calls: %d created, %d closed, %d unchanged",
             source, len(rows), len(calls), counts["created"], counts["closed"], counts["unchanged"])
    return counts


def _read_recent(source: str) -> list[CdrRow]:
    since = timezone.now() - timedelta(hours=settings.CDR_WINDOW_HOURS)
    if not settings.CDR_CSV:
        return read_table(settings.CDR_DSN, table=settings.CDR_TABLE, since=since, tz=settings.CDR_TIMEZONE)
    rows, errors = read_csv(settings.CDR_CSV, since=since, tz=settings.CDR_TIMEZONE)
    for error in errors[:MAX_WARNINGS]:
        log.warning("%s: %s", source, error)
    if len(errors) > MAX_WARNINGS:
        log.warning("%s: %d more malformed lines", source, len(errors) - MAX_WARNINGS)
    return rows
