"""AMI events → call state → `history.Call` rows → live messages, one batch per step."""

import logging
import queue
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clients.services import client_find_by_phone
from history.models import Call
from history.services import call_link_client, calls_save_from_pbx, recording_add
from telephony import realtime
from telephony.events import CallState, CallTracker
from telephony.models import Operator

log = logging.getLogger(__name__)

BATCH = 500
OPERATORS_TTL = 30.0


@dataclass
class Sent:
    """What the call's operator has been told so far."""

    operator_id: int | None = None
    answered: bool = False
    over: bool = False
    client_looked_up: bool = False
    recorded: bool = False


@dataclass
class Listener:
    """Owns the call tracker; the AMI reader thread only enqueues, `step` does the work."""

    tracker: CallTracker = field(default_factory=lambda: CallTracker(region=settings.PHONE_REGION))
    inbox: queue.Queue = field(default_factory=lambda: queue.Queue(maxsize=200_000))
    publish: object = realtime.call_changed
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
        calls = [self.call_row(state, operators) for state in states]
        with transaction.atomic():
            calls_save_from_pbx(calls)
            for state, call in zip(states, calls):
                kinds = self.news(state, call)
                if kinds:
                    transaction.on_commit(lambda call_id=call.pk, kinds=kinds: self.publish(call_id, kinds))

    def call_row(self, state: CallState, operators: dict[str, int]) -> Call:
        extension = state.extension or (state.extensions_rung[0] if state.extensions_rung else "")
        return Call(
            linkedid=state.linkedid, direction=state.direction, disposition=state.disposition, phone=state.phone,
            extension=extension or "", operator_id=operators.get(extension or ""), started_at=state.started_at,
            answered_at=state.answered_at, ended_at=state.ended_at if state.is_over else None,
            duration=state.duration, billsec=state.billsec, source=Call.Source.AMI,
        )

    def news(self, state: CallState, call: Call) -> list[str]:
        """Side writes for this change, and what to tell the operator about it."""
        sent = self.sent.setdefault(state.linkedid, Sent())
        kinds = []
        if call.operator_id and call.operator_id != sent.operator_id:
            # The pop-up goes to the operator once their extension is known to ring (or has answered).
            sent.operator_id = call.operator_id
            kinds.append("call.ringing")
        if state.phone and not sent.client_looked_up:
            sent.client_looked_up = True
            matches = client_find_by_phone(state.phone)
            if len(matches) == 1:  # several matches are for the operator to choose from
                call_link_client(call.pk, matches[0].pk)
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
