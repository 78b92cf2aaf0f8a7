"""Reads behind the call lists (all calls, a client's service history): filters and the period's summary.

Every function narrows a queryset the caller got from `call_visible_to`, so nobody sees more than
their own calls whatever the filters say. Periods are whole days in the server's time zone, compared
as instants so that the indexes on `started_at` serve them.
"""

import datetime
from collections import Counter

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from clients.phones import phone_normalize
from clients.services import client_search
from history.models import Call

MISSED = [Call.Disposition.NO_ANSWER, Call.Disposition.BUSY, Call.Disposition.FAILED]
OUTCOMES = {"answered": Q(disposition=Call.Disposition.ANSWERED), "missed": Q(disposition__in=MISSED)}


def day_start(day: datetime.date) -> datetime.datetime:
    """Midnight of `day` in the server's time zone."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def calls_in_period(calls: QuerySet[Call], *, since: datetime.date | None = None, until: datetime.date | None = None) -> QuerySet[Call]:
    """Calls started from the first moment of `since` to the last of `until` (both days included)."""
    if since:
        calls = calls.filter(started_at__gte=day_start(since))
    if until:
        calls = calls.filter(started_at__lt=day_start(until + datetime.timedelta(days=1)))
    return calls


def calls_with_party(calls: QuerySet[Call], text: str) -> QuerySet[Call]:
    """Calls with this phone number (in any form it is typed) or, for anything else, with the clients found by it."""
    text = text.strip()
    if not text:
        return calls
    if sum(ch.isdigit() for ch in text) >= 5:
        e164 = phone_normalize(text)
        if e164:
            return calls.filter(phone=e164)
    return calls.filter(client__in=client_search(text).order_by().values("pk"))


def calls_filter(
    calls: QuerySet[Call], *, since: datetime.date | None = None, until: datetime.date | None = None,
    operator_id: int | None = None, direction: str = "", outcome: str = "", party: str = "",
) -> QuerySet[Call]:
    """The all-calls list's filters; empty ones are left out. Newest first."""
    calls = calls_in_period(calls, since=since, until=until)
    if operator_id:
        calls = calls.filter(operator_id=operator_id)
    if direction:
        calls = calls.filter(direction=direction)
    if outcome:
        calls = calls.filter(OUTCOMES[outcome])
    return calls_with_party(calls, party).order_by("-started_at", "-pk")


def client_calls(calls: QuerySet[Call], client_id: int, *, since: datetime.date, everything: bool = False) -> QuerySet[Call]:
    """A client's calls from `since`, newest first: only registered ones unless `everything`, as in the original."""
    calls = calls_in_period(calls.filter(client_id=client_id), since=since)
    if not everything:
        calls = calls.filter(registered_at__isnull=False)
    return calls.order_by("-started_at", "-pk")


def calls_summary(calls: QuerySet[Call]) -> dict:
    """Counts for the calls by call type, outcome, reason, result and operator.

    One scan: the database counts each combination that occurs (few, bounded by the dictionaries),
    and the totals per heading are added up here.
    """
    fields = ["direction", "disposition", "reason__name", "result__name", "operator_id", "operator__username", "operator__first_name", "operator__last_name"]
    groups = list(calls.order_by().values(*fields).annotate(count=Count("pk")).order_by())
    totals = dict.fromkeys(["total", "incoming", "outgoing", "answered", "missed", "no_answer", "busy", "failed"], 0)
    reasons, results, operators = Counter(), Counter(), Counter()
    for group in groups:
        count = group["count"]
        totals["total"] += count
        totals["incoming" if group["direction"] == Call.Direction.IN else "outgoing"] += count
        if group["disposition"] == Call.Disposition.ANSWERED:
            totals["answered"] += count
        elif group["disposition"] in MISSED:
            totals["missed"] += count
            totals[group["disposition"]] += count
        reasons[group["reason__name"] or ""] += count
        results[group["result__name"] or ""] += count
        operators[group["operator_id"], operator_name(group)] += count
    return {
        "totals": totals,
        "reasons": most_first(reasons.items()),
        "results": most_first(results.items()),
        "operators": most_first((name, count) for (_, name), count in operators.items()),
    }


def most_first(counts) -> list[dict]:
    return [{"name": name, "count": count} for name, count in sorted(counts, key=lambda item: (-item[1], item[0]))]


def operator_name(row: dict) -> str:
    full_name = f"{row['operator__first_name'] or ''} {row['operator__last_name'] or ''}".strip()
    return full_name or row["operator__username"] or ""
