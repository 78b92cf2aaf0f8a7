"""Click-to-call: POST /telephony/originate/ → a logged outgoing call → Originate at the simulator over TCP → the listener completes it."""

import threading

import pytest
from django.core.cache import cache
from django.db import connections
from django.urls import reverse

from clients.models import Client
from history.models import Call
from simplecalls.celery import app
from telephony.ami import AMIConnection
from telephony.services import call_originate_request
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_cache():
    """The duplicate and rate counters live in the cache, which outlives the test database (user ids repeat)."""
    cache.clear()


@pytest.fixture
def pbx(simulator, settings):
    """The simulator as the PBX the web and its tasks talk to, with tasks run at once."""
    config = simulator.config()
    settings.AMI_HOST, settings.AMI_PORT, settings.AMI_USERNAME, settings.AMI_SECRET = config.host, config.port, config.username, config.secret
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield simulator
    app.conf.task_always_eager = eager


def outcome(simulator, **headers):
    ami = AMIConnection(simulator.config())
    ami.connect()
    ami.login()
    ami.send_action({"Action": "SimOutcome", "Exten": "*", "Ring": "0.5", "Talk": "1", **headers})
    ami.close()


def originate(http, phone, **fields):
    return http.post(reverse("telephony:originate"), {"phone": phone, **fields}).json()


@pytest.mark.parametrize("headers, disposition", [
    ({}, "answered"),
    ({"ExtensionOutcome": "no_answer"}, "no_answer"),
    ({"Outcome": "no_answer"}, "no_answer"),
    ({"Outcome": "busy"}, "busy"),
])
def test_a_click_logs_the_call_at_once_and_the_listener_completes_the_same_row(client, pbx, listening, operators, headers, disposition):
    outcome(listening, **headers)
    savitskaya = Client.objects.create(last_name="Савицкая", phone_mobile="+74951234567")
    client.force_login(operators[0])

    answer = originate(client, "+7 (495) 123-45-67", client=savitskaya.pk)

    assert answer["status"] == "dialling" and answer["call"]
    wait_for(lambda: Call.objects.filter(pk=answer["call"], ended_at__isnull=False).exists(), timeout=15)
    call = Call.objects.get()
    assert (call.pk, call.direction, call.disposition, call.phone, call.extension) == (answer["call"], "out", disposition, "+74951234567", "100")
    assert (call.operator, call.client) == (operators[0], savitskaya)


def test_a_pbx_that_cannot_be_reached_ends_the_call_as_failed(client, operators, settings):
    settings.AMI_HOST, settings.AMI_PORT = "127.0.0.1", 1
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        client.force_login(operators[0])
        answer = originate(client, "84951234567")
    finally:
        app.conf.task_always_eager = eager

    call = Call.objects.get(pk=answer["call"])
    assert (answer["status"], call.disposition, call.ended_at is not None) == ("dialling", "failed", True)


def pbx_cdr(simulator) -> list[str]:
    path = simulator.simulator.engine.cdr.path
    return path.read_text().splitlines() if path.exists() else []


def test_ten_simultaneous_clicks_make_one_call(pbx, listening, operators):
    answers = []

    def click():
        answers.append(call_originate_request(user=operators[0], phone="8 495 123-45-67").status)
        connections.close_all()

    threads = [threading.Thread(target=click) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answers) == ["dialling"] + ["duplicate"] * 9
    assert Call.objects.count() == 1
    wait_for(lambda: Call.objects.filter(ended_at__isnull=False).exists(), timeout=15)
    assert len({row.split(",")[19] for row in pbx_cdr(pbx)}) == 1, "one call at the PBX"


@pytest.mark.parametrize("phone", ["84951234567\r\nAction: Hangup", "Action: Originate", "84951234567\x00", "абв", ""])
def test_a_phone_no_pbx_could_dial_is_refused_and_nothing_reaches_the_pbx(client, pbx, operators, phone):
    client.force_login(operators[0])

    answer = originate(client, phone)

    assert answer["status"] == "refused" and answer["message"] and answer["call"] is None
    assert not Call.objects.exists() and not pbx.simulator.engine.calls


def test_an_operator_without_an_extension_is_told_to_ask_an_administrator(client, pbx, django_user_model):
    client.force_login(django_user_model.objects.create_user("newcomer"))

    answer = originate(client, "84951234567")

    assert (answer["status"], answer["call"], answer["message"]) == ("refused", None, "Для вас не настроен внутренний номер: обратитесь к администратору.")
    assert not Call.objects.exists()


def test_it_needs_a_login_and_a_post(client):
    assert client.post(reverse("telephony:originate"), {"phone": "84951234567"}).status_code == 302
    assert client.get(reverse("telephony:originate")).status_code in (302, 405)


def test_an_operator_clicking_more_than_the_limit_in_a_minute_is_refused(pbx, operators, settings):
    settings.ORIGINATE_PER_MINUTE = 3
    pbx.simulator.engine.set_outcome("*", extension="failed")  # nobody needs to pick up

    answers = [call_originate_request(user=operators[0], phone=f"8495123456{n}").status for n in range(5)]

    assert answers[:3] == ["dialling"] * 3 and answers[3:] == ["refused"] * 2
    assert call_originate_request(user=operators[1], phone="84951234560").status == "dialling", "the limit is each operator's"
