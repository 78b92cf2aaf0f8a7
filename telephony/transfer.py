"""Smart transfer: which extension a caller's call should ring, and the caller's name, decided within a time budget.

The dialplan asks over HTTP (telephony/dialplan.py) before it rings anyone, so an answer must come
quickly or not at all: every lookup runs in a transaction whose statements give up after the
budget (PostgreSQL's statement and lock timeouts), and any error, or a lookup slower than the
budget, gives an empty answer — the dialplan's normal route.

The route, for a known caller (`attempt` counts the dialplan's asks for one call, from 0):
candidates are the responsible manager, when available (active, with an extension, and marked
available or with an operator page open), then the active steps of the fallback chain in order;
the answer is candidate number `attempt`, or nothing once they run out. A caller nobody knows,
a client without a manager, or a number shared by clients of different managers gets nothing.
"""

import functools
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from clients.models import Client, digits_reversed
from clients.phones import phone_normalize
from clients.services import phone_condition
from simplecalls.db import server_bound
from telephony.callerid import callerid_name
from telephony.calllog import masked
from telephony.models import RouteDecision, RouteFallback
from telephony.presence import operator_present

log = logging.getLogger(__name__)

Reason = RouteDecision.Reason
MAX_ATTEMPT = 1000  # more asks than any chain has steps; only bounds what is stored
# A decision the lookup could not make is still written down, however little of the budget is left.
MIN_WRITE_MS = 50
# PostgreSQL's codes for a statement cancelled by statement_timeout and for lock_timeout.
TIMED_OUT = {"57014", "55P03"}


class TooSlow(Exception):
    pass


@dataclass
class Decision:
    """The route's answer for one ask, and why."""

    number: str
    did: str = ""
    attempt: int = 0
    extension: str = ""
    reason: str = Reason.UNKNOWN
    client_id: int | None = None
    step: int | None = None
    elapsed_ms: float = 0.0

    @property
    def why(self) -> str:
        return RouteDecision(reason=self.reason, step=self.step).why


@contextmanager
def within(budget_ms: float):
    """A transaction whose statements give up after `budget_ms` on PostgreSQL, waiting for a lock included.

    Its commit does not wait for the disk (synchronous_commit off): what it writes is a decision's
    audit row, and a database crash may lose the last few of those, but a caller never waits on a flush.
    """
    with transaction.atomic():
        postgresql = connection.vendor == "postgresql"
        nested = postgresql and connection.savepoint_ids  # inside someone's transaction: put the settings back after
        if postgresql:
            limit = f"{max(int(budget_ms), 1)}ms"
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true), set_config('synchronous_commit', 'off', true)",
                    [limit, limit],
                )
        yield
        if nested:
            with connection.cursor() as cursor:
                for name in ("statement_timeout", "lock_timeout", "synchronous_commit"):
                    cursor.execute(f"SET LOCAL {name} TO DEFAULT")


def elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def route_decide(
    *, number: str, did: str = "", attempt: int = 0, budget_ms: float, linkedid: str = "", store: bool = True, started: float | None = None,
) -> Decision:
    """The extension for a call from `number` (empty: the normal route); written down as a RouteDecision when `store`.

    `started` (time.perf_counter()) is when the ask arrived, when it waited for a thread before this: the budget counts from then.
    """
    started = time.perf_counter() if started is None else started
    attempt = min(max(attempt, 0), MAX_ATTEMPT)
    e164 = phone_normalize(number) if number else ""
    decision = Decision(number=(e164 or number.strip())[:40], did=did[:40], attempt=attempt)
    decided = False
    try:
        with within(budget_ms - elapsed_ms(started)):
            if e164:
                decide(decision, e164)
            decision.elapsed_ms = elapsed_ms(started)
            if decision.elapsed_ms > budget_ms:
                raise TooSlow
            decided = True
            if store:  # in the lookup's transaction: a statement more, not a transaction more
                route_decision_write(decision, linkedid=linkedid)
        return decision
    except Exception as error:
        if decided:  # the answer stands; only writing it down failed
            log.warning("smart transfer decision for %s not written: %r", masked(decision.number), error)
            return decision
        decision.extension, decision.step = "", None
        decision.elapsed_ms = elapsed_ms(started)
        decision.reason = Reason.SLOW if timed_out(error, decision.elapsed_ms, budget_ms) else Reason.ERROR
        log.warning("smart transfer for %s answered empty (%s) after %.0f ms: %r", masked(decision.number), decision.reason, decision.elapsed_ms, error)
    if store:
        route_decision_save(decision, linkedid=linkedid, budget_ms=max(budget_ms - elapsed_ms(started), MIN_WRITE_MS))
    return decision


def timed_out(error: Exception, elapsed: float, budget_ms: float) -> bool:
    code = getattr(error.__cause__, "sqlstate", None) or getattr(error, "sqlstate", None)
    return isinstance(error, TooSlow) or code in TIMED_OUT or elapsed >= budget_ms


def decide(decision: Decision, e164: str) -> None:
    """Fill in the extension and the reason for a caller with this E.164 number (database reads only)."""
    rows = fetch(callers, e164)
    if not rows:
        decision.reason = Reason.UNKNOWN
        return
    if len(rows) == 1:
        decision.client_id = rows[0][0]
    managers = {row[1] for row in rows}
    if managers == {None}:
        decision.reason = Reason.NO_MANAGER
        return
    if len(managers) > 1:
        decision.reason = Reason.SEVERAL
        return
    _, manager_id, is_active, extension, marked = rows[0]
    available = bool(is_active and extension and (marked or operator_present(manager_id)))
    candidates = [extension] if available else []
    steps = [step for step, in fetch(fallback_steps)] if decision.attempt >= len(candidates) else []
    if decision.attempt < len(candidates):
        decision.extension, decision.reason = extension, Reason.MANAGER
    elif decision.attempt - len(candidates) < len(steps):
        decision.step = decision.attempt - len(candidates) + 1
        decision.extension = steps[decision.step - 1]
        decision.reason = Reason.NEXT_STEP if available else Reason.MANAGER_AWAY
    else:
        decision.reason = Reason.CHAIN_END


def callers(e164: str):
    return Client.objects.filter(phone_condition(e164)).order_by().values_list(
        "pk", "manager_id", "manager__is_active", "manager__operator__extension", "manager__operator__available")[:10]


def caller_names(e164: str):
    return Client.objects.filter(phone_condition(e164)).order_by().values_list("last_name", "first_name", "middle_name")[:2]


def fallback_steps(e164: str):
    return RouteFallback.objects.filter(is_active=True).values_list("extension")


# What a query is compiled with: each occurrence of it, and of its reversed digits, is the caller's number's when it runs.
# Both forms stand out, so that no other parameter of a query is taken for them.
NUMBER = "+7000111222333"


def fetch(query, e164: str = "") -> list[tuple]:
    """The rows of `query(e164)`; on PostgreSQL its SQL is compiled once and prepared.

    Planning the caller's query (three indexes, two joins) costs PostgreSQL about 1.5 ms, ten times
    running it, and the ORM's compiling as much again: a prepared statement is planned once per connection.
    """
    if connection.vendor != "postgresql":
        return list(query(e164))
    sql, params = compiled(query)
    number = {NUMBER: e164, digits_reversed(NUMBER): digits_reversed(e164)}  # as phone_condition binds it
    with server_bound(connection.cursor()) as cursor:
        cursor.execute(sql, [number.get(param, param) if isinstance(param, str) else param for param in params])
        return cursor.fetchall()


@functools.cache
def compiled(query) -> tuple[str, tuple]:
    return query(NUMBER).query.sql_with_params()


def route_decision_write(decision: Decision, *, linkedid: str) -> None:
    """One INSERT, its SQL built once, without a model instance (prepared on PostgreSQL)."""
    values = [
        linkedid[:150], decision.number, decision.did, decision.client_id, decision.attempt, decision.extension, decision.reason,
        decision.step, round(decision.elapsed_ms, 2), connection.ops.adapt_datetimefield_value(timezone.now()),
    ]
    with server_bound(connection.cursor()) as cursor:
        cursor.execute(decision_insert(), values)


@functools.cache
def decision_insert() -> str:
    columns = ["linkedid", "number", "did", "client_id", "attempt", "extension", "reason", "step", "elapsed_ms", "created_at"]
    quote = connection.ops.quote_name
    return (f"INSERT INTO {quote(RouteDecision._meta.db_table)} ({', '.join(quote(name) for name in columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})")


def route_decision_save(decision: Decision, *, linkedid: str, budget_ms: float) -> None:
    """Write down a decision the lookup could not make, in a transaction of its own; a failure to is logged."""
    try:
        with within(budget_ms):
            route_decision_write(decision, linkedid=linkedid)
    except Exception as error:
        log.warning("smart transfer decision for %s not written: %r", masked(decision.number), error)


def callerid_lookup(*, number: str, ascii: bool, budget_ms: float, max_length: int, started: float | None = None) -> str:
    """The short name of the one client with this number; empty for nobody, several clients, an error or a slow lookup."""
    started = time.perf_counter() if started is None else started
    e164 = phone_normalize(number) if number else ""
    if not e164:
        return ""
    try:
        with within(budget_ms - elapsed_ms(started)):
            rows = fetch(caller_names, e164)
            if elapsed_ms(started) > budget_ms:
                raise TooSlow
    except Exception as error:
        log.warning("caller-ID name for %s answered empty after %.0f ms: %r", masked(e164), elapsed_ms(started), error)
        return ""
    return callerid_name(*rows[0], ascii=ascii, max_length=max_length) if len(rows) == 1 else ""
