"""Click-to-call's live status: what the operator's page is told, stage by stage, from the PBX's events over TCP."""

import asyncio
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.urls import reverse

from clients.models import Client
from history.models import Call
from telephony.listener import Listener
from telephony.messages import catch_up_messages
from telephony.realtime import operator_group
from tests.helpers import make_call, wait_for
from tests.telephony.conftest import RunningListener, logged_in
from tests.telephony.test_originate import fresh_cache, originate, outcome, pbx  # noqa: F401 -- fixtures and helpers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def told(pbx, operators):  # noqa: F811 -- the fixture imported above
    """The listener on the simulator; every live message it pushes is kept, in order."""
    pushed = []
    listener = RunningListener(pbx.config(), Listener(publish=pushed.extend))
    logged_in(pbx)
    yield pushed
    listener.close()


def statuses(pushed, call_id):
    return [message["status"] for _, message in list(pushed) if message["type"] == "originate.status" and message["call"]["id"] == call_id]


def click(http, operator, phone="+7 495 123-45-67", **fields):
    http.force_login(operator)
    answer = originate(http, phone, **fields)
    assert answer["status"] == "dialling", answer
    return answer["call"]


def test_an_answered_click_to_call_is_told_stage_by_stage(client, pbx, told, operators):  # noqa: F811
    outcome(pbx, Ring="20", Talk="40")  # 0.2 s and 0.4 s at the fixture's time scale: every stage is its own batch
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Нина", phone_mobile="+74951234567")

    call_id = click(client, operators[0], client=savitskaya.pk)

    wait_for(lambda: "ended" in statuses(told, call_id), timeout=15)
    assert statuses(told, call_id) == ["operator_ringing", "calling", "connected", "ended"]
    messages = [message for user_id, message in told if message["type"] == "originate.status"]
    assert {user_id for user_id, message in told if message["type"] == "originate.status"} == {operators[0].pk}, "only the caller's own page"
    connected = messages[2]
    assert connected["call"]["answered_at"] and connected["clients"][0]["name"].startswith("Савицкая")
    assert [message["type"] for _, message in told if message["type"].startswith("call.")] == ["call.answered", "call.ended"], (
        "the registration form opens when the client answers, as for an incoming call"
    )


@pytest.mark.parametrize("headers, last, disposition", [
    ({"ExtensionOutcome": "no_answer"}, "operator_no_answer", "no_answer"),
    ({"ExtensionOutcome": "busy"}, "operator_busy", "busy"),
    ({"ExtensionOutcome": "failed"}, "operator_failed", "failed"),
    ({"Outcome": "no_answer"}, "no_answer", "no_answer"),
    ({"Outcome": "busy"}, "busy", "busy"),
    ({"Outcome": "failed"}, "failed", "failed"),
])
def test_a_failed_click_to_call_says_which_leg_failed(client, pbx, told, operators, headers, last, disposition):  # noqa: F811
    outcome(pbx, **headers)

    call_id = click(client, operators[0])

    wait_for(lambda: Call.objects.filter(pk=call_id, ended_at__isnull=False).exists(), timeout=15)
    wait_for(lambda: last in statuses(told, call_id))
    seen = statuses(told, call_id)
    assert seen[-1] == last and set(seen[:-1]) <= {"operator_ringing", "calling"}, seen
    assert Call.objects.get(pk=call_id).disposition == disposition
    assert Call.objects.count() == 1, "an originate that made no channel still completes the row the click made (its ActionID)"


def test_a_pbx_that_cannot_be_reached_is_said_so(client, operators, settings):
    settings.AMI_HOST, settings.AMI_PORT = "127.0.0.1", 1
    from simplecalls.celery import app

    async def click_and_listen():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(operator_group(operators[0].pk), channel)
        call_id = await sync_to_async(click)(client, operators[0], "84951234567")
        return call_id, await asyncio.wait_for(layer.receive(channel), 10)

    eager, app.conf.task_always_eager = app.conf.task_always_eager, True
    try:
        call_id, message = async_to_sync(click_and_listen)()
    finally:
        app.conf.task_always_eager = eager

    assert (message["type"], message["status"], message["call"]["id"]) == ("originate.status", "unreachable", call_id)
    assert "127.0.0.1:1" in message["reason"]


def test_a_page_opened_during_a_click_to_call_is_told_where_it_stands(operators):
    dialling = make_call(operators[0], linkedid="sc-0123", direction="out", ended_at=None, answered_at=None, disposition="ringing")
    someone_elses = make_call(operators[1], linkedid="sc-4567", direction="out", ended_at=None, answered_at=None, disposition="ringing")

    messages = [message for message in catch_up_messages(operators[0].pk) if message["type"] == "originate.status"]

    assert [(message["call"]["id"], message["status"]) for message in messages] == [(dialling.pk, "dialling")]
    assert someone_elses.pk not in {message["call"]["id"] for message in messages}


def test_every_phone_on_a_client_card_has_a_call_button_for_an_operator(client, operators, django_user_model):
    savitskaya = Client.objects.create(last_name="Савицкая", phone_mobile="+74951234567", phone_work="+74957894561")
    client.force_login(operators[0])

    page = client.get(reverse("clients:detail", args=[savitskaya.pk])).content.decode()

    assert page.count('class="dial"') == 2
    assert f'data-dial="+74951234567" data-shown="+7 495 123-45-67" data-client="{savitskaya.pk}"' in page
    assert 'title="Позвонить по номеру +7 495 123-45-67"' in page

    client.force_login(django_user_model.objects.create_user("accountant"))
    page = client.get(reverse("clients:detail", args=[savitskaya.pk])).content.decode()
    assert 'class="dial"' not in page and "+7 495 123-45-67" in page, "no extension, nothing to ring: the number alone"
