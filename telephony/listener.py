"""AMI events → call state → `history.Call` rows → live messages.

Every listener reduces the whole event stream; only the one holding the lease writes
(telephony/leader.py), so a standby that takes over already knows every call in progress.
Nothing about one call can stop the others: a call the database refuses is logged and skipped,
and while the database is away the calls wait here and are written once it is back.
"""

import asyncio
import contextlib
import datetime
import logging
import queue
import sys
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, reset_queries, transaction
from django.utils import timezone

from clients import phones
from clients.services import clients_by_phones_send
from history.models import Call
from history.services import call_from_pbx, calls_add_rung, calls_close, calls_send_from_pbx, calls_written, recordings_add
from simplecalls.db import pipelined_transaction
from telephony import calllog, realtime
from telephony.ami import AMIConnection, AMIError
from telephony.events import CallState, CallTracker, outgoing_stage
from telephony.messages import originate_status
from telephony.leader import FenceError, Lease
from telephony.models import Operator
from telephony.reconcile import cdr_reconcile_recent
from telephony.dialing import CLICK_TO_CALL

log = logging.getLogger(__name__)

BATCH = 500
OPERATORS_TTL = 5.0  # an operator's phone changed in the admin is known within this
OPERATORS_RECHECK = 0.5  # a call to an extension nobody has makes the table be read again, at most this often
# A new leader writes again the calls that ended this recently: the old one may have died before.
RECENT = datetime.timedelta(minutes=30)
SILENCE_CHECK_EVERY = 60.0
SWITCH_INTERVAL = 0.0005  # seconds a thread may hold the interpreter while another waits for it
# Open rows nobody tracks (their listener died) are closed only once this old: an originate may not have a channel yet.
UNTRACKED_GRACE = datetime.timedelta(minutes=1)
LINKEDID_MAX = Call._meta.get_field("linkedid").max_length
# Where the step loop's time goes: reducing the events; reading what the log and the client base hold of the calls
# first seen, and building the rows; the write transaction; the live messages built and handed to the push thread.
# The heartbeat shows them, and bench_popup.
STAGES = ("reducing", "reading", "writing", "telling")


@dataclass
class Sent:
    """What the call's operators have been told so far (what its row says, when another listener wrote it)."""

    told: list[int] = field(default_factory=list)  # every operator shown the call, in the order they were
    answered: bool = False
    over: bool = False
    stage: str = ""  # a click-to-call's last originate.status
    rung_logged: int = 0  # how many of the call's extensions the journal has named (telephony/calllog.py)
    client_looked_up: bool = False
    clients: list = field(default_factory=list)  # the caller's matches, for the live messages
    client_id: int | None = None  # the one match, linked to the call
    row_read: bool = False  # what the log held of the call before this listener wrote it has been read


class Pusher:
    """Sends live messages from an event loop of its own: a write never waits for Redis.

    The loop keeps its channel-layer connections from one batch to the next; in the embedded mode
    the web server's loop is used instead, as its in-memory layer requires.
    """

    def __init__(self, send=realtime.publish):
        self.send = send
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="listener-push", daemon=True).start()
        if realtime.server_loop() is None:
            asyncio.run_coroutine_threadsafe(realtime.warm_up(), self.loop)

    def __call__(self, messages: list) -> None:
        asyncio.run_coroutine_threadsafe(self.send(messages), realtime.server_loop() or self.loop)


@dataclass
class Listener:
    """Owns the call tracker; the AMI reader thread only enqueues, `step` does the work."""

    tracker: CallTracker = field(default_factory=lambda: CallTracker(region=settings.PHONE_REGION, extension_pattern=settings.EXTENSION_PATTERN))
    lease: Lease | None = None  # None: the only listener, always writing (tests, tools)
    inbox: queue.Queue = field(default_factory=lambda: queue.Queue(maxsize=200_000))
    publish: object = field(default_factory=Pusher)
    silence: datetime.timedelta = field(default_factory=lambda: datetime.timedelta(minutes=settings.STALE_CALL_MINUTES))
    dirty: dict[str, CallState] = field(default_factory=dict)  # changed and not yet written
    sent: dict[str, Sent] = field(default_factory=dict)
    repair_due: bool = True
    written_epoch: int | None = None
    _operators: dict[str, int] = field(default_factory=dict)
    _names: dict[int, str] = field(default_factory=dict)  # operator's user id → the name shown to colleagues
    _operators_at: float = 0.0
    _silence_checked_at: float = field(default_factory=time.monotonic)
    _db_retry_at: float = 0.0
    _db_down_since: float | None = None
    spent: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))  # seconds in each stage, since start
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("events", "batches", "calls_written"), 0))

    def __post_init__(self):
        # Three threads share the interpreter: the AMI reader parses in bursts, and without this the
        # writer would wait up to Python's default 5 ms for it after every database reply, the push
        # thread as long before each message leaves.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        phones.warm_up(self.tracker.region)

    def on_event(self, headers: dict) -> None:
        """Called in the AMI reader thread: stamp and enqueue, nothing more."""
        self.inbox.put((headers, timezone.now()))

    @property
    def leading(self) -> bool:
        return self.lease is None or self.lease.held

    def step(self, timeout: float = 0.5) -> bool:
        """Reduce what has arrived, then write what changed if this listener leads."""
        self.operators()  # the operators' phones must be known before their events are reduced
        items = []
        try:
            items.append(self.inbox.get(timeout=timeout))
            while len(items) < BATCH:
                items.append(self.inbox.get_nowait())
        except queue.Empty:
            pass
        reset_queries()  # with DEBUG on, Django would otherwise keep every statement of a daemon
        started = time.perf_counter()
        for headers, received_at in items:
            self.changed(self.tracker.apply(headers, received_at))
        self.timed("reducing", started)
        self.counts["events"] += len(items)
        if time.monotonic() - self._silence_checked_at > SILENCE_CHECK_EVERY:
            self._silence_checked_at = time.monotonic()
            self.close_silent(timezone.now())
        self.flush()
        return bool(items)

    def close_silent(self, now: datetime.datetime) -> None:
        """Close the calls that have had no event for `silence`: their hang-up was lost."""
        for state in self.tracker.close_silent(now, self.silence):
            log.info("call %s: no event for %s; closed", state.linkedid, self.silence)
            self.changed(state)

    def changed(self, state: CallState | None) -> None:
        if state is None or not state.direction or not state.started_at:
            return
        if len(state.linkedid) > LINKEDID_MAX or "\x00" in state.linkedid:
            log.warning("call %r…: its Linkedid cannot be stored; skipped", state.linkedid[:40])
            return
        self.dirty[state.linkedid] = state

    def flush(self) -> None:
        """Write every changed call, in batches; on taking over, everything known first."""
        if not self.leading:
            self.dirty.clear()
            self.sent.clear()
            self.written_epoch = None
            return
        epoch = self.lease.epoch if self.lease else 0
        if epoch != self.written_epoch:
            for state in self.tracker.known(timezone.now() - RECENT):
                self.changed(state)
            self.written_epoch, self.repair_due = epoch, True
        if time.monotonic() < self._db_retry_at:
            return
        while self.dirty and self.leading:
            batch = list(self.dirty.values())[:BATCH]
            if not self.write_batch(batch):
                return

    def write_batch(self, states: list[CallState]) -> bool:
        """Write `states`, one by one if the batch fails; False when nothing more can be written now."""
        try:
            self.write(states)
        except FenceError:
            log.warning("another listener took over; %d calls left to it", len(self.dirty))
            return False
        except (OperationalError, InterfaceError) as error:
            self.database_down(error)
            return False
        except Exception:
            for state in states:
                try:
                    self.write([state])
                except FenceError:
                    return False
                except (OperationalError, InterfaceError) as error:
                    self.database_down(error)
                    return False
                except Exception:
                    log.exception("call %s could not be written; skipped", state.linkedid[:LINKEDID_MAX])
                    self.forget(state)
        if self._db_down_since is not None:
            log.info("database reachable again after %.0f s", time.monotonic() - self._db_down_since)
            self._db_down_since = None
        return True

    def database_down(self, error: Exception) -> None:
        """Drop the broken connection and try again shortly; the calls stay in `dirty` meanwhile."""
        if self._db_down_since is None:
            self._db_down_since = time.monotonic()
            log.error("database unreachable (%s); %d calls wait to be written", str(error).strip(), len(self.dirty))
        connection.close()
        self._db_retry_at = time.monotonic() + 1.0

    def forget(self, state: CallState) -> None:
        self.dirty.pop(state.linkedid, None)
        if state.is_over:
            self.sent.pop(state.linkedid, None)

    def write(self, states: list[CallState]) -> None:
        """At most two round trips on PostgreSQL. What the log held of the calls first written now, and who is calling; then,
        in one transaction, the lease's fence with the rows, the operators rung and the recordings: the database
        refuses the fence itself, so no lock is held while this listener looks at an answer. The news go after."""
        started = time.perf_counter()
        operators = self.operators(wanted={ext for state in states for ext in [state.extension, *state.extensions_rung] if ext})
        unread = [state.linkedid for state in states if state.linkedid not in self.sent or not self.sent[state.linkedid].row_read]
        rung = {state.linkedid: [operators[ext] for ext in state.extensions_rung if ext in operators] for state in states}
        for state in states:
            self.sent.setdefault(state.linkedid, Sent())
        fresh = [state for state in states if state.phone and not self.sent[state.linkedid].client_looked_up]
        earlier, callers = list, dict
        if unread or fresh:
            with pipelined_transaction(writes=False):
                earlier = calls_written(unread)
                callers = clients_by_phones_send({state.phone for state in fresh})
        self.told_before(states, earlier())
        self.callers_found(fresh, callers())
        calls = [self.call_row(state, operators) for state in states]
        started = self.timed("reading", started)
        fencing = self.lease.fencing() if self.lease is not None else contextlib.nullcontext()
        with fencing, pipelined_transaction():
            if self.lease is not None:
                self.lease.fence_send()
            written = calls_send_from_pbx(calls)  # a new row takes its client here; a finished one is left alone
            calls_add_rung([(linkedid, user_id) for linkedid, users in rung.items() for user_id in users])
            recordings_add([(state.linkedid, state.recording, state.billsec) for state in states if state.recording and state.is_over])
        written()
        started = self.timed("writing", started)
        # A row finished by another hand (the CDR, the last leader) still has its news.
        skipped = [call.linkedid for call in calls if call.pk is None]
        finished = {row.linkedid: row for row in Call.objects.filter(linkedid__in=skipped)} if skipped else {}
        outbox = []
        for state, call in zip(states, calls):
            row = call if call.pk is not None else finished.get(state.linkedid)
            if row is not None:
                clients = self.sent[state.linkedid].clients
                outbox += [(user_id, self.message(kind, row, clients)) for user_id, kind in self.news(state, row, rung[state.linkedid])]
        if outbox:
            # One push for the whole batch, once committed: at once, unless a transaction encloses this one.
            transaction.on_commit(lambda: self.publish(outbox))
        for state in states:
            self.forget(state)
        self.timed("telling", started)
        self.counts["batches"] += 1
        self.counts["calls_written"] += len(states)

    def timed(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.spent[stage] += now - started
        return now

    def told_before(self, states: list[CallState], rows: list[tuple]) -> None:
        """What each call's operators were already told, from the row another hand wrote before this listener did."""
        extensions_rung = {state.linkedid: state.extensions_rung for state in states}
        for linkedid, operator_id, answered_at, ended_at, source, users_rung in rows:
            if source == Call.Source.CDR and not users_rung:
                continue  # the reconciliation got there before any listener: the operators hear it all now
            # A row the reconciliation made names an operator nobody told: only a listener's rung rows say who was.
            told = [operator_id] if operator_id and source != Call.Source.CDR else []
            sent = self.sent[linkedid]
            sent.told = list(dict.fromkeys([*told, *users_rung]))
            sent.answered, sent.over = answered_at is not None, ended_at is not None
            sent.rung_logged = len(extensions_rung[linkedid])  # the listener that wrote the row has logged its ringing
        for state in states:
            self.sent[state.linkedid].row_read = True

    def callers_found(self, fresh: list[CallState], matches: dict[str, list]) -> None:
        """Who is calling, for the calls whose number is new."""
        for state in fresh:
            sent = self.sent[state.linkedid]
            sent.client_looked_up, sent.clients = True, matches[state.phone]
            if len(sent.clients) == 1:  # several matches are for the operator to choose from
                sent.client_id = sent.clients[0].pk

    def call_row(self, state: CallState, operators: dict[str, int]) -> Call:
        extension = state.extension or (state.extensions_rung[0] if state.extensions_rung else "")
        return call_from_pbx(
            linkedid=state.linkedid, direction=state.direction, disposition=state.disposition, phone=state.phone,
            extension=extension or "", operator_id=operators.get(extension or ""), client_id=self.sent[state.linkedid].client_id,
            started_at=state.started_at, answered_at=state.answered_at, ended_at=state.ended_at if state.is_over else None,
            duration=state.duration, billsec=state.billsec, source=Call.Source.AMI,
        )

    def news(self, state: CallState, call: Call, rung: list[int]) -> list[tuple[int, str]]:
        """Who to tell what about this change.

        Every operator whose phone rings gets the pop-up; once one answers, the others hear who took
        it; all of them hear it ended.
        """
        sent = self.sent[state.linkedid]
        clicked = call.linkedid.startswith(CLICK_TO_CALL) and call.operator_id is not None
        news = []
        for user_id in dict.fromkeys([*rung, call.operator_id]):
            if user_id is not None and user_id not in sent.told:
                sent.told.append(user_id)
                news.append((user_id, "call.ringing"))
        if len(state.extensions_rung) > sent.rung_logged and not clicked:
            calllog.ringing(call.linkedid, call.direction, call.phone, state.extensions_rung[sent.rung_logged:], first=not sent.rung_logged)
            sent.rung_logged = len(state.extensions_rung)
        if state.answered_at and not sent.answered:
            sent.answered = True
            news += [(user_id, "call.answered" if user_id == call.operator_id else "call.taken") for user_id in sent.told]
            if not clicked:
                calllog.answered(call.linkedid, call.extension)
        if state.is_over and not sent.over:
            sent.over = True
            news += [(user_id, "call.ended") for user_id in sent.told]
            calllog.ended(call.linkedid, call.disposition, call.billsec, call.duration)
        if clicked:
            stage = outgoing_stage(state)
            if stage != sent.stage:
                if stage != "ended":  # the line above says it, with the figures
                    calllog.click_to_call(call.linkedid, stage, extension=call.extension, phone=call.phone, first=not sent.stage)
                sent.stage = stage
                news.append((call.operator_id, f"originate.{stage}"))
        return news

    def repair(self, ami: AMIConnection) -> None:
        """After a (re)connect or a takeover, and now and then: mend the calls whose end was lost.

        The CDR gives exact figures for calls that ended unheard; what the PBX no longer has a
        channel for and nothing else closed is closed now.
        """
        self.repair_due = False
        while self.step(timeout=0):  # the list must be newer than every event applied
            pass
        asked_at = timezone.now()
        try:
            live = ami.live_channels()
        except AMIError as error:
            log.warning("could not list the PBX's channels (%s); will try again later", error)
            return
        cdr_reconcile_recent()
        for state in self.tracker.close_gone(live, asked_at):
            log.info("call %s: the PBX no longer has it; closed", state.linkedid)
            self.changed(state)
        self.flush()
        tracked = {state.linkedid for state in self.tracker.active()}
        try:
            with transaction.atomic():
                if self.lease is not None:
                    self.lease.fence()
                closed = calls_close(before=asked_at - UNTRACKED_GRACE, keep=live | tracked, at=asked_at)
        except FenceError:
            return
        except DatabaseError as error:
            self.database_down(error)
            return
        if closed:
            log.info("closed %d calls left open that the PBX no longer has", closed)

    def message(self, kind: str, call: Call, clients: list) -> dict:
        if kind.startswith("originate."):
            return originate_status(kind.partition(".")[2], call, clients)
        message = realtime.call_message(kind, call, clients)
        if kind == "call.taken":
            message["taken_by"] = self._names.get(call.operator_id, "")
        return message

    def operators(self, wanted: set[str] = frozenset()) -> dict[str, int]:
        """Extension → operator's user id, with the phones the reducer knows; re-read now and then, and for an unknown extension."""
        age = time.monotonic() - self._operators_at
        if age > OPERATORS_TTL or (age > OPERATORS_RECHECK and not wanted <= self._operators.keys()):
            try:
                rows = list(Operator.objects.select_related("user"))
            except (OperationalError, InterfaceError) as error:
                self.database_down(error)  # the operators known so far serve meanwhile
                return self._operators
            self._operators = {row.extension: row.user_id for row in rows}
            self._names = {row.user_id: row.user.get_full_name() or row.user.get_username() for row in rows}
            self.tracker.phones.set_endpoints({row.channel: row.extension for row in rows if row.channel})
            self._operators_at = time.monotonic()
        return self._operators
