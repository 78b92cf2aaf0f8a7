"""Smart transfer end to end without Asterisk: the simulator's dialplan asks the live server over HTTP, the listener records the call."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from clients.models import Client
from history.models import Call
from telephony.ami import AMIConnection
from telephony.models import Operator, RouteDecision
from tests.helpers import wait_for
from tests.telephony.conftest import RunningListener, logged_in, running_simulator

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "smart-token"


@pytest.fixture
def smart_pbx(live_server, settings, tmp_path, operators):
    """The simulator whose dialplan asks this test's live server, a listener writing calls, and a watcher of every event."""
    settings.DIALPLAN_TOKEN, settings.DIALPLAN_ALLOWED_IPS = TOKEN, []
    cache.clear()
    url = f"{live_server.url}/telephony/dialplan/"
    with running_simulator(time_scale=0.01, cdr_csv=str(tmp_path / "Master.csv"), dialplan_url=url, dialplan_token=TOKEN) as simulator:
        listener = RunningListener(simulator.config())
        logged_in(simulator)
        events = []
        watcher = AMIConnection(simulator.config(), on_event=events.append)
        watcher.connect()
        watcher.login()
        simulator.events = events
        yield simulator
        watcher.close()
        listener.close()


def ended(linkedid):
    return lambda: Call.objects.filter(linkedid=linkedid, ended_at__isnull=False).exists()


def test_a_clients_call_rings_their_managers_extension_with_the_callers_name(smart_pbx, operators):
    boris = operators[1]
    Operator.objects.filter(user=boris).update(available=True)
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", middle_name="Геннадьевна", phone_mobile="+74957894561", manager=boris)
    linkedid = smart_pbx.call("inbound_smart", caller="84957894561", extensions=["100"])
    wait_for(ended(linkedid))
    call = Call.objects.get(linkedid=linkedid)
    assert (call.extension, call.operator, call.client, call.disposition) == ("101", boris, savitskaya, "answered")
    decision = RouteDecision.objects.get(linkedid=linkedid)
    assert (decision.extension, decision.reason, decision.client) == ("101", "manager", savitskaya)
    dials = [event for event in smart_pbx.events if event.get("Event") == "DialBegin" and event.get("Linkedid") == linkedid]
    assert [event.get("DestChannel", "").split("-")[0] for event in dials] == ["PJSIP/101"]
    assert dials[0].get("CallerIDName") == "Савицкая Н.Г."
    assert any(event.get("Event") == "NewCallerid" and event.get("CallerIDName") == "Савицкая Н.Г." for event in smart_pbx.events)


def test_an_unknown_caller_takes_the_normal_route_unnamed(smart_pbx, operators):
    linkedid = smart_pbx.call("inbound_smart", caller="89031112233", extensions=["100"])
    wait_for(ended(linkedid))
    assert Call.objects.get(linkedid=linkedid).extension == "100"
    assert RouteDecision.objects.get(linkedid=linkedid).reason == "unknown"
    dial = next(event for event in smart_pbx.events if event.get("Event") == "DialBegin" and event.get("Linkedid") == linkedid)
    assert dial.get("CallerIDName") == "<unknown>"


def test_a_refused_token_leaves_the_call_to_the_normal_route(smart_pbx, operators, settings):
    settings.DIALPLAN_TOKEN = "another-token"
    Client.objects.create(last_name="Савицкая", phone_mobile="+74957894561", manager=operators[1])
    Operator.objects.filter(user=operators[1]).update(available=True)
    linkedid = smart_pbx.call("inbound_smart", caller="84957894561", extensions=["100"])
    wait_for(ended(linkedid))
    assert Call.objects.get(linkedid=linkedid).extension == "100"
    assert not RouteDecision.objects.exists()


def test_the_demo_control_calls_from_a_client_the_operator_manages(operator_client, operator_user, simulator, settings):
    from tests.telephony.conftest import SECRET, USERNAME

    settings.DEMO, settings.AMI_HOST, settings.AMI_PORT, settings.AMI_USERNAME, settings.AMI_SECRET = True, "127.0.0.1", simulator.port, USERNAME, SECRET
    events = []
    watcher = AMIConnection(simulator.config(), on_event=events.append)
    watcher.connect()
    watcher.login()
    try:
        unmanaged = Client.objects.create(last_name="Орлов", phone_mobile="+79166715740")
        response = operator_client.post(reverse("telephony:demo_call"), {"caller": "managed", "scenario": "inbound_smart"})
        assert response.status_code == 204
        unmanaged.refresh_from_db()
        assert unmanaged.manager == operator_user, "with nobody managed yet, a client becomes the operator's"
        wait_for(lambda: any(event.get("Event") == "Newchannel" and event.get("CallerIDNum", "").endswith("9166715740") for event in events))
    finally:
        watcher.close()
