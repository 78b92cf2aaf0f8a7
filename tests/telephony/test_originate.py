"""Click-to-call: POST /telephony/originate/ → a logged outgoing call → Originate at the simulator over TCP → the listener completes it."""

import csv
import threading
from contextlib import contextmanager

import pytest
from django.core.cache import cache
from django.db import connections
from django.urls import reverse

from clients.models import Client
from history.models import Call
from simplecalls.celery import app
from telephony.ami import AMIConnection
from telephony.services import call_originate_request
from telephony.simulator.actions import originate_variables
from telephony.simulator.protocol import Request
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


@contextmanager
def pbx_events(simulator):
    """Every event the PBX sends while the block runs, as a third-party AMI client sees them."""
    events = []
    ami = AMIConnection(simulator.config(), on_event=events.append)
    ami.connect()
    ami.login()
    try:
        yield events
    finally:
        ami.close()


def ask_pbx(simulator, action: dict) -> dict:
    ami = AMIConnection(simulator.config())
    ami.connect()
    ami.login()
    try:
        return ami.send_action(action).headers
    finally:
        ami.close()


def trunk_dials(simulator) -> list[str]:
    """The Dial data (CDR lastdata) of each PBX call that reached the trunk."""
    path = simulator.simulator.engine.cdr.path
    rows = list(csv.reader(path.read_text().splitlines())) if path.exists() else []
    return [row[8] for row in rows if row[8].startswith("PJSIP/trunk/")]


def answered_trunk(simulator) -> str | None:
    async def find():
        return next((chan.name for chan in simulator.simulator.pbx.channels.values() if chan.name.startswith("PJSIP/trunk-") and chan.state == 6), None)
    return simulator.run(find())


@pytest.mark.parametrize("context", ["from-internal", "click-to-call"])  # the simulator's plain originate, and its Local chain
def test_an_extension_after_the_number_reaches_the_client_as_dtmf_once_they_answer(client, pbx, listening, operators, settings, context):
    settings.ORIGINATE_CONTEXT = context
    outcome(listening)
    client.force_login(operators[0])

    with pbx_events(listening) as events:
        answer = originate(client, "+7 495 123-45-67 доб. 123")
        wait_for(lambda: Call.objects.filter(pk=answer["call"], ended_at__isnull=False).exists(), timeout=15)

    assert pbx.simulator.engine.dtmf_received == {"84951234567": "123"}
    assert ask_pbx(pbx, {"Action": "SimDTMF", "Exten": "84951234567"})["Digits"] == "123"
    dtmf = [event for event in events if event["Event"] in ("DTMFBegin", "DTMFEnd")]
    assert [(event["Event"], event["Digit"], event["Direction"]) for event in dtmf] == [
        (name, digit, "Sent") for digit in "123" for name in ("DTMFBegin", "DTMFEnd")
    ]
    assert {event["Channel"].rsplit("-", 1)[0] for event in dtmf} == {"PJSIP/trunk"}
    assert all(event["DurationMs"] == "100" for event in dtmf if event["Event"] == "DTMFEnd")
    trunk_answers = next(n for n, event in enumerate(events) if event["Event"] == "DialEnd" and event["DestChannel"].startswith("PJSIP/trunk-"))
    assert events[trunk_answers]["DialStatus"] == "ANSWER" and trunk_answers < events.index(dtmf[0])
    assert trunk_dials(pbx) == ["PJSIP/trunk/84951234567,30,D(wwww123)"]
    assert Call.objects.get().disposition == "answered"


def test_a_number_without_an_extension_sends_no_dtmf(client, pbx, listening, operators):
    outcome(listening)
    client.force_login(operators[0])

    answer = originate(client, "+7 495 123-45-67")

    wait_for(lambda: Call.objects.filter(pk=answer["call"], ended_at__isnull=False).exists(), timeout=15)
    assert pbx.simulator.engine.dtmf_received == {}
    assert ask_pbx(pbx, {"Action": "SimDTMF", "Exten": "84951234567"})["Digits"] == ""
    assert trunk_dials(pbx) == ["PJSIP/trunk/84951234567,30"]


@pytest.mark.parametrize("pause, waits", [(0, ""), (0.5, "w"), (1.2, "ww"), (2.0, "wwww"), (30, "w" * 60)])
def test_the_pause_before_the_digits_is_originate_dtmf_pause_in_half_second_ws(pbx, operators, settings, pause, waits):
    settings.ORIGINATE_DTMF_PAUSE = pause
    outcome(pbx)

    assert call_originate_request(user=operators[0], phone="8 495 123-45-67 ext. 45").status == "dialling"

    wait_for(lambda: trunk_dials(pbx), timeout=15)
    assert trunk_dials(pbx) == [f"PJSIP/trunk/84951234567,30,D({waits}45)"]
    assert pbx.simulator.engine.dtmf_received == {"84951234567": "45"}


def test_a_call_hung_up_before_the_digits_are_sent_sends_none(pbx, operators, settings):
    settings.ORIGINATE_DTMF_PAUSE = 30  # sixty `w`s: 0.3 s at the simulator's time scale
    outcome(pbx)

    with pbx_events(pbx) as events:
        assert call_originate_request(user=operators[0], phone="8 495 123-45-67 x45").status == "dialling"
        wait_for(lambda: answered_trunk(pbx), timeout=15)
        assert ask_pbx(pbx, {"Action": "Hangup", "Channel": answered_trunk(pbx)})["Response"] == "Success"
        wait_for(lambda: trunk_dials(pbx), timeout=15)

    assert pbx.simulator.engine.dtmf_received == {}
    assert not [event for event in events if event["Event"].startswith("DTMF")]
    assert any(event["Event"] == "Hangup" and event["Channel"].startswith("PJSIP/trunk-") for event in events)


def test_the_simulator_reads_originate_variables_repeated_and_comma_separated_as_asterisk_does():
    request = Request(lines=[
        ("Action", "Originate"),
        ("Variable", "SIMPLECALLS_CALL=7,SIMPLECALLS_DTMF=ww12"),
        ("variable", "A=1=2"),
        ("Channel", "Local/100@from-internal"),
        ("VARIABLE", "no-equals,=nameless,B=,A=3"),
    ])

    assert originate_variables(request) == {"SIMPLECALLS_CALL": "7", "SIMPLECALLS_DTMF": "ww12", "A": "3", "B": ""}
