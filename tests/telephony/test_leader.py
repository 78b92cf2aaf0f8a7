"""The listener lease: one writer per PBX, a standby that takes over, and a fence no stale writer passes."""

import copy
import datetime
import threading
import time
import uuid

import pytest
from django.db import transaction
from django.utils import timezone

from history.models import Call
from telephony.leader import FenceError, Lease
from telephony.listener import Listener
from telephony.models import ListenerLease
from tests.helpers import transcript_events

pytestmark = pytest.mark.django_db(transaction=True)


def expire(lease: Lease) -> None:
    """What a frozen or killed holder's lease becomes once it stops renewing."""
    ListenerLease.objects.filter(name=lease.name).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))


@pytest.fixture
def name():
    return f"pbx-{uuid.uuid4().hex[:8]}"


def test_only_one_listener_holds_the_lease_and_a_standby_takes_it_when_it_expires(name):
    active, standby = Lease(name, ttl=30), Lease(name, ttl=30)
    assert active.renew() and not standby.renew()
    assert active.renew() and not standby.renew(), "renewing keeps it"

    expire(active)

    assert standby.renew() and standby.epoch == active.epoch + 1
    assert not active.renew(), "the old holder learns it lost the lease"
    assert not active.held


def test_a_lease_that_expired_unnoticed_is_still_held_while_nobody_took_it(name):
    lease = Lease(name, ttl=30)
    lease.renew()
    epoch = lease.epoch
    expire(lease)

    assert lease.renew() and lease.epoch == epoch


def test_a_released_lease_is_taken_at_once(name):
    first, second = Lease(name), Lease(name)
    assert first.renew()
    first.release()
    assert second.renew()


def test_a_write_fenced_as_the_lease_is_released_neither_writes_nor_keeps_the_lease(name):
    leader = Lease(name, ttl=30)
    assert leader.renew()
    writing = copy.copy(leader)  # the writer thread read the epoch a moment before the release
    leader.release()

    with pytest.raises(FenceError), transaction.atomic():
        writing.fence()
    assert Lease(name).renew(), "a standby takes the released lease at once"


def test_the_fence_refuses_a_writer_whose_epoch_was_taken_over(name):
    old, new = Lease(name, ttl=30), Lease(name, ttl=30)
    old.renew()
    expire(old)
    new.renew()

    with pytest.raises(FenceError):
        old.fence()
    new.fence()


def test_a_fence_refused_by_the_database_undoes_what_was_sent_with_it(name):
    from history.services import calls_send_from_pbx
    from simplecalls.db import pipelined_transaction

    old, new = Lease(name, ttl=30), Lease(name, ttl=30)
    old.renew()
    expire(old)
    new.renew()
    call = Call(linkedid="stale.1", direction="in", phone="+74957894561", started_at=timezone.now())
    # Sent without waiting for any answer, the fence after the write: the database's refusal takes the write with it.
    with pytest.raises(FenceError), old.fencing(), pipelined_transaction():
        calls_send_from_pbx([call])
        old.fence_send()
    assert not Call.objects.exists() and old.epoch is None
    with new.fencing(), pipelined_transaction():
        new.fence_send()
        calls_send_from_pbx([call])
    assert Call.objects.get().linkedid == "stale.1"


def test_a_write_longer_than_what_was_left_of_the_lease_does_not_lose_it(name):
    from django.db import connection, transaction

    leader, standby = Lease(name, ttl=1.5), Lease(name, ttl=1.5)
    assert leader.renew()
    time.sleep(1.0)  # most of the lease gone before the write begins
    took = []
    with transaction.atomic():
        leader.fence()
        # The standby asks while the write holds the lease row: it waits for the commit, as the leader's own renewal does.
        asking = threading.Thread(target=lambda: (took.append(standby.renew()), connection.close()))
        asking.start()
        time.sleep(1.0)  # a slow write: the lease would have run out during it without the fence renewing it
    asking.join(timeout=10)
    assert took == [False], "the standby found the lease renewed by the write"
    with transaction.atomic():
        leader.fence()  # still the writer


def test_a_listener_that_lost_the_lease_writes_nothing_from_its_backlog(name, operator_user):
    old, new = Listener(lease=Lease(name, ttl=30)), Listener(lease=Lease(name, ttl=30))
    old.lease.renew()
    messages = transcript_events("inbound__answered.txt")
    hangup = next(i for i, m in enumerate(messages) if m["Event"] == "Hangup")
    for listener in (old, new):  # both hear the call until the old one freezes
        feed(listener, messages[:hangup])
    assert Call.objects.get().ended_at is None

    expire(old.lease)  # frozen: its lease ran out, and the standby took it
    new.lease.renew()
    new.step(timeout=0)
    written = Call.objects.values().get()
    feed(old, messages[hangup:])  # it wakes up with a backlog, still believing it leads

    assert Call.objects.values().get() == written, "the stale listener wrote nothing"
    assert not old.leading
    feed(new, messages[hangup:])
    assert Call.objects.get().ended_at is not None


def test_a_new_leader_writes_every_call_it_knows_at_once(name, operator_user):
    old, new = Listener(lease=Lease(name, ttl=30)), Listener(lease=Lease(name, ttl=30))
    old.lease.renew()
    messages = transcript_events("inbound__answered.txt")
    hangup = next(i for i, m in enumerate(messages) if m["Event"] == "Hangup")
    feed(old, messages[:3])  # the leader wrote the call's start, then died
    feed(new, messages)  # the standby heard it all, writing nothing
    assert Call.objects.get().ended_at is None

    expire(old.lease)
    new.lease.renew()
    new.step(timeout=0)

    call = Call.objects.get()
    assert (call.disposition, call.billsec > 0, call.ended_at is not None) == ("answered", True, True)
    assert hangup > 3


def test_renewing_goes_on_by_itself_and_stops_with_the_listener(name):
    lease = Lease(name, ttl=1.0, renew_every=0.1)
    stop, ready = threading.Event(), threading.Event()
    ready.set()
    thread = lease.keep(stop, ready)
    time.sleep(1.5)
    assert lease.held, "renewed past its ttl"
    ready.clear()  # the PBX link dropped: another listener may lead
    time.sleep(0.3)
    assert not lease.held and Lease(name).renew()
    stop.set()
    thread.join(timeout=5)


def feed(listener: Listener, messages: list[dict]) -> None:
    clock = timezone.now()
    for number, message in enumerate(messages):
        listener.inbox.put((message, clock + datetime.timedelta(seconds=number)))
    while listener.step(timeout=0):
        pass

