import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.db import IntegrityError
from django.utils import timezone

from clients.models import Client
from history.models import Call
from telephony import services
from telephony.ami import AMIError
from telephony.realtime import operator_group

pytestmark = pytest.mark.django_db


def make_call(operator, phone="+79031112233", **fields):
    return Call.objects.create(linkedid=f"{timezone.now().timestamp()}", direction="in", phone=phone, extension="100", operator=operator, started_at=timezone.now(), disposition="no_answer", ended_at=timezone.now(), **fields)


def pushed_while(users, action) -> dict[int, dict]:
    """Run `action` while each user's group is listened to; the message each user then received."""

    async def listen():
        layer = get_channel_layer()
        channels = {}
        for user in users:
            channels[user.pk] = await layer.new_channel()
            await layer.group_add(operator_group(user.pk), channels[user.pk])
        await sync_to_async(action)()
        return {pk: await asyncio.wait_for(layer.receive(channel), 5) for pk, channel in channels.items()}

    return async_to_sync(listen)()


def test_registering_with_a_new_caller_creates_them_and_attaches_the_numbers_earlier_calls(operator_user, django_capture_on_commit_callbacks):
    earlier = make_call(operator_user)
    call = make_call(operator_user)
    call.comment = "хочет на стрижку"
    with django_capture_on_commit_callbacks():
        services.call_registration_save(call=call, new_client=Client(last_name="Новикова", phone_mobile="+79031112233"))
    call.refresh_from_db()
    earlier.refresh_from_db()
    client = Client.objects.get(last_name="Новикова")
    assert call.client == client and earlier.client == client
    assert call.registered_at is not None and call.comment == "хочет на стрижку"


def test_a_registration_tells_every_operator_the_call_rang_once_it_is_committed(operators, django_capture_on_commit_callbacks):
    anna, boris = operators
    call = make_call(anna)
    call.rung.add(anna, boris)
    with django_capture_on_commit_callbacks() as callbacks:
        services.call_registration_save(call=call)
    assert len(callbacks) == 1, "nothing is pushed before the commit"
    received = pushed_while([anna, boris], callbacks[0])
    for operator in (anna, boris):
        assert received[operator.pk]["type"] == "call.registered" and received[operator.pk]["call"]["id"] == call.pk


def test_a_registration_the_database_refuses_creates_no_client(operator_user):
    call = make_call(operator_user)
    call.comment = None  # NOT NULL: refused after the client was written
    with pytest.raises(IntegrityError):
        services.call_registration_save(call=call, new_client=Client(last_name="Новикова", phone_mobile="+79031112233"))
    call.refresh_from_db()
    assert call.registered_at is None and call.client is None
    assert not Client.objects.exists()


def test_choosing_a_client_makes_them_the_caller(operator_user):
    call = make_call(operator_user)
    orlova = Client.objects.create(last_name="Орлова", phone_home="+79031112233")
    services.call_client_choose(call=call, client=orlova)
    call.refresh_from_db()
    assert call.client == orlova


def test_closing_a_call_takes_it_off_the_pending_list_and_closes_every_form_on_it(operator_user, django_capture_on_commit_callbacks):
    call = make_call(operator_user)
    with django_capture_on_commit_callbacks() as callbacks:
        services.call_close(call=call)
    call.refresh_from_db()
    assert call.dismissed_at is not None
    assert pushed_while([operator_user], callbacks[0])[operator_user.pk]["type"] == "call.registered"


def test_closing_a_registered_call_leaves_it_registered(operator_user):
    call = make_call(operator_user, registered_at=timezone.now())
    services.call_close(call=call)
    call.refresh_from_db()
    assert call.dismissed_at is None


def test_a_demo_call_refuses_an_unknown_scenario_before_calling_the_pbx():
    with pytest.raises(ValueError):
        services.demo_call_place(extension="100", scenario="outbound_answered", known_caller=False)


def test_a_demo_call_to_an_unreachable_pbx_raises_an_ami_error(settings):
    settings.AMI_HOST, settings.AMI_PORT = "127.0.0.1", 9  # discard: nothing listens there
    with pytest.raises(AMIError):
        services.demo_call_place(extension="100", scenario="inbound_answered", known_caller=False)
