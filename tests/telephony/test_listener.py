import asyncio

import time
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from channels.layers import get_channel_layer
from asgiref.sync import async_to_sync, sync_to_async
from django.utils import timezone

from clients.models import Client
from history.models import Call, Recording
from telephony.listener import OPERATORS_RECHECK, Listener, Pusher
from telephony.models import Operator
from telephony.realtime import operator_group
from tests.helpers import renumbered, transcript_events

pytestmark = pytest.mark.django_db


def replay(listener: Listener, name: str) -> None:
    """Feed a transcript as if it arrived when its Timestamps say (the listener's clock agrees with the PBX's)."""
    clock = timezone.now()
    for message in transcript_events(f"{name}.txt"):
        try:
            clock = datetime.fromtimestamp(float(message.get("Timestamp", "")), UTC)
        except ValueError:
            pass
        listener.inbox.put((message, clock))
    while listener.step(timeout=0):
        pass


@pytest.fixture
def listener():
    return Listener()


def test_an_answered_inbound_call_becomes_one_call_row_linked_to_client_and_operator(listener, operator_user, django_capture_on_commit_callbacks):
    ivanov = Client.objects.create(last_name="Иванов", phone_mobile="+74957894561")
    with django_capture_on_commit_callbacks(execute=False):
        replay(listener, "inbound__answered")
    call = Call.objects.get()
    assert (call.direction, call.disposition, call.phone, call.extension) == ("in", "answered", "+74957894561", "100")
    assert call.operator == operator_user and call.client == ivanov
    assert call.answered_at and call.ended_at and call.duration >= call.billsec > 0
    assert call.source == "ami"


@pytest.mark.parametrize(
    "name, direction, disposition",
    [
        ("inbound__missed", "in", "no_answer"),
        ("inbound__no_answer", "in", "no_answer"),
        ("inbound__busy", "in", "busy"),
        ("originate__answered", "out", "answered"),
        ("originate__no_answer", "out", "no_answer"),
        ("originate__busy", "out", "busy"),
        ("originate__failed", "out", "failed"),
    ],
)
def test_every_scenario_ends_as_the_right_call_row(listener, operator_user, django_user_model, name, direction, disposition):
    other = django_user_model.objects.create_user("operator2")
    Operator.objects.create(user=other, extension="101", channel="PJSIP/101")
    replay(listener, name)
    call = Call.objects.get()
    assert (call.direction, call.disposition) == (direction, disposition)
    assert call.operator.operator.extension == call.extension


def test_replaying_a_stream_creates_no_duplicates(operator_user):
    replay(Listener(), "inbound__answered")
    first = Call.objects.get()
    replay(Listener(), "inbound__answered")  # a fresh listener, as after a restart
    assert Call.objects.get() == first


def test_registration_made_by_the_operator_survives_later_pbx_updates(listener, operator_user):
    replay(listener, "inbound__answered")
    Call.objects.update(comment="перезвонить", caller_kind="regular", registered_at=timezone.now())
    replay(Listener(), "inbound__answered")
    call = Call.objects.get()
    assert (call.comment, call.caller_kind) == ("перезвонить", "regular") and call.registered_at


def test_a_recorded_call_keeps_its_recording(listener, operator_user):
    replay(listener, "inbound__recorded")
    recording = Recording.objects.get()
    assert recording.file.endswith(".wav") and recording.call.disposition == "answered"


def test_a_number_shared_by_two_clients_links_neither(listener, operator_user):
    Client.objects.create(last_name="Орлов", phone_home="+74957894561")
    Client.objects.create(last_name="Орлова", phone_work="+74957894561")
    replay(listener, "inbound__answered")
    assert Call.objects.get().client is None


def test_garbage_in_the_stream_does_not_stop_the_call_after_it(listener, operator_user):
    replay(listener, "malformed")
    assert Call.objects.get().disposition == "answered"


def test_the_operator_is_told_ringing_answered_ended_after_commit(listener, operator_user, django_capture_on_commit_callbacks):
    layer = get_channel_layer()

    def replay_and_commit():
        with django_capture_on_commit_callbacks(execute=True):
            replay(listener, "inbound__answered")

    async def scenario():
        # Subscribe and receive on one loop (the Redis pub/sub layer's subscriptions belong to it).
        channel = await layer.new_channel()
        await layer.group_add(operator_group(operator_user.pk), channel)
        await sync_to_async(replay_and_commit)()
        return [(await asyncio.wait_for(layer.receive(channel), 5))["type"] for _ in range(3)]

    assert async_to_sync(scenario)() == ["call.ringing", "call.answered", "call.ended"]


def two_calls_at_once(listener: Listener, extensions=("100", "101")) -> list[str]:
    """Two answered calls, fed in one batch."""
    messages = transcript_events("inbound__answered.txt")
    linkedids = []
    clock = timezone.now()
    for n, extension in enumerate(extensions):
        for message in renumbered(messages, n):
            copy = {key: value.replace("PJSIP/100-", f"PJSIP/{extension}-") for key, value in message.items()}
            listener.inbox.put((copy, clock))
        linkedids.append(f"1732711200.42-{n}")
    return linkedids


@pytest.mark.django_db(transaction=True)
def test_a_call_the_database_refuses_is_logged_and_skipped_and_the_others_are_written(operator_user, django_user_model, caplog):
    other = django_user_model.objects.create_user("operator2")
    Operator.objects.create(user=other, extension="101", channel="PJSIP/101")
    listener = Listener(publish=lambda messages: None)
    listener.operators()  # cached: the operator of 100 is deleted behind the listener's back
    operator_user.delete()
    refused, written = two_calls_at_once(listener)

    while listener.step(timeout=0):
        pass

    assert list(Call.objects.values_list("linkedid", flat=True)) == [written]
    assert f"call {refused} could not be written; skipped" in caplog.text
    caplog.clear()
    listener.step(timeout=0)
    assert "could not be written" not in caplog.text, "a refused call is dropped, not retried forever"


@pytest.mark.django_db(transaction=True)
def test_calls_wait_while_the_database_session_is_gone_and_are_written_once_it_is_back(operator_user, caplog):
    from django.db import connection

    from tests.conftest import needs

    needs(connection.vendor == "postgresql", "terminating a session needs PostgreSQL")
    import psycopg

    from simplecalls.env import database_url

    listener = Listener(publish=lambda messages: None)
    listener.operators()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [pid] = cursor.fetchone()
    with psycopg.connect(database_url(connection.settings_dict), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    linkedids = two_calls_at_once(listener)

    with psycopg.connect(database_url(connection.settings_dict), autocommit=True) as observer:  # the listener's own connection is down
        def written():
            return sorted(linkedid for [linkedid] in observer.execute(f"SELECT linkedid FROM {Call._meta.db_table}"))

        listener.step(timeout=0)
        assert "database unreachable" in caplog.text and written() == []
        deadline = time.monotonic() + 5
        while written() != sorted(linkedids) and time.monotonic() < deadline:
            listener.step(timeout=0.1)

        assert written() == sorted(linkedids)
    assert "database reachable again" in caplog.text


@contextmanager
def django_capture_on_commit_callbacks_executed():
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        yield


def test_a_push_that_hangs_does_not_hold_up_the_writes(operator_user):
    async def stuck(messages):
        await asyncio.sleep(30)

    listener = Listener(publish=Pusher(send=stuck))

    with django_capture_on_commit_callbacks_executed():
        started = time.monotonic()
        replay(listener, "inbound__answered")
        replay(listener, "inbound__missed")

    assert time.monotonic() - started < 5 and Call.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_call_the_cdr_closed_first_keeps_its_recording_and_its_operator_hears_it_ended(operator_user):
    pushed = []
    listener = Listener(publish=pushed.extend)
    messages = transcript_events("inbound__recorded.txt")
    hangup = next(i for i, m in enumerate(messages) if m["Event"] == "Hangup")
    clock = timezone.now()
    for message in messages[:hangup]:
        listener.inbox.put((message, clock))
    listener.step(timeout=0)
    Call.objects.update(ended_at=clock, duration=1)  # the reconciliation got there first

    for message in messages[hangup:]:
        listener.inbox.put((message, clock))
    listener.step(timeout=0)

    call = Call.objects.get()
    assert (call.duration, call.recordings.count()) == (1, 1), "the row stays as the CDR wrote it"
    assert [message["type"] for _, message in pushed] == ["call.ringing", "call.answered", "call.ended"]


def test_a_call_to_an_operator_on_a_named_endpoint_is_theirs(django_user_model):
    user = django_user_model.objects.create_user("reception")
    Operator.objects.create(user=user, extension="106", channel="PJSIP/hg63xv")
    listener = Listener(publish=lambda messages: None)
    trunk = {"Channel": "PJSIP/trunk-00000041", "Uniqueid": "41.1", "Linkedid": "41.1", "CallerIDNum": "84957894561"}
    phone = {"DestChannel": "PJSIP/hg63xv-00000042", "DestUniqueid": "41.2", "DestLinkedid": "41.1"}
    clock = timezone.now()
    for event in ({"Event": "Newchannel", **trunk}, {"Event": "DialBegin", **trunk, **phone, "DialString": "hg63xv"},
                  {"Event": "DialEnd", **trunk, **phone, "DialStatus": "ANSWER"}):
        listener.inbox.put((event, clock))
    listener.step(timeout=0)

    call = Call.objects.get()
    assert (call.direction, call.extension, call.operator, call.disposition) == ("in", "106", user, "answered")


@pytest.mark.django_db(transaction=True)
def test_every_operator_a_group_call_rings_is_told_and_the_others_hear_who_took_it(operator_user, django_user_model):
    boris = django_user_model.objects.create_user("operator2", first_name="Борис", last_name="Петров")
    Operator.objects.create(user=boris, extension="101", channel="PJSIP/101")
    pushed = []
    listener = Listener(publish=pushed.extend)

    replay(listener, "inbound__two_extensions_one_answers")

    told = [(user_id, message["type"]) for user_id, message in pushed]
    assert told == [
        (operator_user.pk, "call.ringing"), (boris.pk, "call.ringing"),
        (operator_user.pk, "call.taken"), (boris.pk, "call.answered"),
        (operator_user.pk, "call.ended"), (boris.pk, "call.ended"),
    ]
    [taken] = [message for _, message in pushed if message["type"] == "call.taken"]
    assert taken["taken_by"] == "Борис Петров"
    call = Call.objects.get()
    assert call.operator == boris and set(call.rung.all()) == {operator_user, boris}


@pytest.mark.django_db(transaction=True)
def test_a_missed_group_call_waits_for_every_operator_it_rang_until_one_registers_it(operator_user, django_user_model):
    from history.services import call_register, calls_awaiting_registration

    boris = django_user_model.objects.create_user("operator2")
    Operator.objects.create(user=boris, extension="101", channel="PJSIP/101")
    listener = Listener(publish=lambda messages: None)
    messages = transcript_events("inbound__two_extensions_one_answers.txt")
    answer = next(i for i, m in enumerate(messages) if m.get("ChannelState") == "6" and m.get("Channel", "").startswith("PJSIP/10"))
    clock = timezone.now()
    for message in messages[:answer]:
        listener.inbox.put((message, clock))
    listener.step(timeout=0)
    listener.close_silent(clock + listener.silence * 2)  # nobody answered, and the end never came
    listener.flush()

    call = Call.objects.get()
    assert call.disposition == "no_answer"
    assert [c.pk for c in calls_awaiting_registration(operator_user.pk)] == [call.pk] == [c.pk for c in calls_awaiting_registration(boris.pk)]
    call_register(call)
    assert not calls_awaiting_registration(operator_user.pk) and not calls_awaiting_registration(boris.pk)


def test_an_operator_added_while_the_listener_runs_gets_the_next_call_at_once(django_user_model):
    listener = Listener(publish=lambda messages: None)
    listener.step(timeout=0)  # running, with no operator yet
    user = django_user_model.objects.create_user("newcomer")
    Operator.objects.create(user=user, extension="100", channel="PJSIP/100")
    time.sleep(OPERATORS_RECHECK)

    replay(listener, "inbound__answered")

    assert Call.objects.get().operator == user


@pytest.mark.django_db(transaction=True)
def test_a_call_the_cdr_wrote_before_any_listener_still_reaches_its_operator_once(operator_user):
    messages = transcript_events("inbound__answered.txt")
    linkedid = next(message["Linkedid"] for message in messages if message.get("Linkedid"))
    clock = timezone.now()
    # A lagging listener: the reconciliation made the finished row, naming the operator, before the listener wrote it.
    Call.objects.create(
        linkedid=linkedid, direction="in", disposition="answered", phone="+74957894561", extension="100", operator=operator_user,
        started_at=clock, answered_at=clock, ended_at=clock, duration=5, billsec=3, source="cdr",
    )
    pushed = []
    replay(Listener(publish=pushed.extend), "inbound__answered")
    assert [(user_id, message["type"]) for user_id, message in pushed] == [
        (operator_user.pk, "call.ringing"), (operator_user.pk, "call.answered"), (operator_user.pk, "call.ended"),
    ]
    assert list(Call.objects.get().rung.all()) == [operator_user]

    again = []  # a listener taking over later: the first one's rung rows say the operator was told
    replay(Listener(publish=again.extend), "inbound__answered")
    assert again == []


def test_a_row_made_before_its_number_was_known_takes_the_callers_client_and_one_chosen_stays(listener, operator_user):
    ivanov = Client.objects.create(last_name="Иванов", phone_mobile="+74957894561")
    petrov = Client.objects.create(last_name="Петров", phone_mobile="+74957894562")
    messages = transcript_events("inbound__answered.txt")
    linkedid = next(message["Linkedid"] for message in messages if message.get("Linkedid"))
    Call.objects.create(linkedid=linkedid, direction="in", extension="100", started_at=timezone.now())  # no number, no client
    Call.objects.create(linkedid=f"{linkedid}-1", direction="in", extension="100", started_at=timezone.now(), client=petrov)
    for message in [*messages, *renumbered(messages, 1)]:
        listener.inbox.put((message, timezone.now()))
    while listener.step(timeout=0):
        pass
    assert Call.objects.get(linkedid=linkedid).client == ivanov
    assert Call.objects.get(linkedid=f"{linkedid}-1").client == petrov, "the client someone chose is not replaced"
