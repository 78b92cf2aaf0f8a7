import asyncio
from pathlib import Path

import pytest
from channels.layers import get_channel_layer
from asgiref.sync import async_to_sync, sync_to_async
from django.utils import timezone

from clients.models import Client
from history.models import Call, Recording
from telephony.events import parse_transcript
from telephony.listener import Listener
from telephony.models import Operator
from telephony.realtime import operator_group

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ami"


def replay(listener: Listener, name: str) -> None:
    for message in parse_transcript((FIXTURES / f"{name}.txt").read_bytes().decode("utf-8", "replace")):
        if "Event" in message:
            listener.on_event(message)
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
