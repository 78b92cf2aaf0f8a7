"""AMI events → call state → `history.Call` rows → live messages, one batch per step."""

import queue
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clients.services import clients_by_phones
from history.models import Call
from history.services import calls_link_clients, calls_save_from_pbx, recording_add
from telephony import realtime
from telephony.events import CallState, CallTracker
from telephony.models import Operator


BATCH = 500
OPERATORS_TTL = 30.0


@dataclass
class Sent:
    """What the call's operator has been told so far."""

    operator_id: int | None = None
    answered: bool = False
    over: bool = False
    client_looked_up: bool = False
    clients: list = field(default_factory=list)  # the caller's matches, for the live messages
    client_id: int | None = None  # the one match, linked to the call
    recorded: bool = False


@dataclass
class Listener:
    """Owns the call tracker; the AMI reader thread only enqueues, `step` does the work."""

    tracker: CallTracker = field(default_factory=lambda: CallTracker(region=settings.PHONE_REGION))
    inbox: queue.Queue = field(default_factory=lambda: queue.Queue(maxsize=200_000))
    publish: object = realtime.send_many
    sent: dict[str, Sent] = field(default_factory=dict)
    _operators: dict[str, int] = field(default_factory=dict)
    _operators_at: float = 0.0

    def on_event(self, headers: dict) -> None:
        """Called in the AMI reader thread: stamp and enqueue, nothing more."""
        self.inbox.put((headers, timezone.now()))

    def step(self, timeout: float = 0.5) -> bool:
        """Reduce what has arrived (up to BATCH events) and write it in one transaction."""
        try:
            items = [self.inbox.get(timeout=timeout)]
        except queue.Empty:
            return False
        while len(items) < BATCH:
            try:
                items.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        changed: dict[str, CallState] = {}
        for headers, received_at in items:
            state = self.tracker.apply(headers, received_at)
            if state is not None and state.direction and state.started_at:
                changed[state.linkedid] = state
        if changed:
            self.write(list(changed.values()))
        return True

    def write(self, states: list[CallState]) -> None:
        operators = self.operators()
        self.look_up_clients(states)
        calls = [self.call_row(state, operators) for state in states]
        outbox = []
        with transaction.atomic():
            calls_save_from_pbx(calls)  # a new row takes its client here
            for state, call in zip(states, calls):
                sent = self.sent[state.linkedid]
                outbox += [(call.operator_id, realtime.call_message(kind, call, sent.clients)) for kind in self.news(state, call)]
            if outbox:
                # One push for the whole batch, after commit: the page may read the rows at once.
                transaction.on_commit(lambda: self.publish(outbox))
        # A call whose number became known after its row was made (an originate) is linked now.
        calls_link_clients({call.pk: call.client_id for call in calls if call.client_id})

    def look_up_clients(self, states: list[CallState]) -> None:
        """Find the callers of every call new in this batch, in one query."""
        for state in states:
            self.sent.setdefault(state.linkedid, Sent())
        fresh = [state for state in states if state.phone and not self.sent[state.linkedid].client_looked_up]
        matches = clients_by_phones({state.phone for state in fresh})
        for state in fresh:
            sent = self.sent[state.linkedid]
            sent.client_looked_up, sent.clients = True, matches[state.phone]
            if len(sent.clients) == 1:  # several matches are for the operator to choose from
                sent.client_id = sent.clients[0].pk

    def call_row(self, state: CallState, operators: dict[str, int]) -> Call:
        extension = state.extension or (state.extensions_rung[0] if state.extensions_rung else "")
        return Call(
            linkedid=state.linkedid, direction=state.direction, disposition=state.disposition, phone=state.phone,
            extension=extension or "", operator_id=operators.get(extension or ""), client_id=self.sent[state.linkedid].client_id,
            started_at=state.started_at, answered_at=state.answered_at, ended_at=state.ended_at if state.is_over else None,
            duration=state.duration, billsec=state.billsec, source=Call.Source.AMI,
        )

    def news(self, state: CallState, call: Call) -> list[str]:
        """What to tell the operator about this change (and the recording to keep)."""
        sent = self.sent[state.linkedid]
        kinds = []
        if call.operator_id and call.operator_id != sent.operator_id:
            # The pop-up goes to the operator once their extension is known to ring (or has answered).
            sent.operator_id = call.operator_id
            kinds.append("call.ringing")
        if state.answered_at and not sent.answered:
            sent.answered = True
            kinds.append("call.answered")
        if state.recording and state.is_over and not sent.recorded:
            sent.recorded = True
            recording_add(call.pk, state.recording, state.billsec)
        if state.is_over and not sent.over:
            sent.over = True
            kinds.append("call.ended")
            self.forget_later(state.linkedid)
        return kinds

    def forget_later(self, linkedid: str) -> None:
        # Finished calls stay known long enough to ignore late duplicates (the tracker keeps 1,000).
        if len(self.sent) > 5000:
            for key in [key for key, sent in self.sent.items() if sent.over][:1000]:
                del self.sent[key]

    def operators(self) -> dict[str, int]:
        """Extension → operator's user id, re-read every OPERATORS_TTL seconds."""
        if time.monotonic() - self._operators_at > OPERATORS_TTL:
            self._operators = dict(Operator.objects.values_list("extension", "user_id"))
            self._operators_at = time.monotonic()
        return self._operators
