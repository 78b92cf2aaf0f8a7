import time

import pytest
from django.urls import reverse

from clients.models import Client
from telephony.ami import AMIConnection
from tests.telephony.conftest import SECRET, USERNAME

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_pbx(simulator, settings):
    settings.DEMO, settings.AMI_HOST, settings.AMI_PORT = True, "127.0.0.1", simulator.port
    settings.AMI_USERNAME, settings.AMI_SECRET = USERNAME, SECRET
    events = []
    watcher = AMIConnection(simulator.config(), on_event=events.append)
    watcher.connect()
    watcher.login()
    yield events
    watcher.close()


def newchannel_from(events, number, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in events:
            if event.get("Event") == "Newchannel" and event.get("CallerIDNum", "").lstrip("+") == number.lstrip("+"):
                return event
        time.sleep(0.02)
    return None


def test_the_demo_control_rings_the_operators_extension_from_a_known_client(operator_client, demo_pbx):
    Client.objects.create(last_name="Савицкая", phone_mobile="+74957894561")
    response = operator_client.post(reverse("telephony:demo_call"), {"caller": "known"})
    assert response.status_code == 204
    assert newchannel_from(demo_pbx, "+74957894561")
    assert any(e.get("Event") == "DialBegin" and e.get("DestChannel", "").startswith("PJSIP/100-") for e in demo_pbx)


def test_the_demo_control_is_off_outside_demo_mode(operator_client, settings):
    settings.DEMO = False
    assert operator_client.post(reverse("telephony:demo_call"), {"caller": "known"}).status_code == 404


def test_the_demo_control_says_when_the_pbx_is_unreachable(operator_client, settings):
    settings.DEMO, settings.AMI_HOST, settings.AMI_PORT = True, "127.0.0.1", 1
    response = operator_client.post(reverse("telephony:demo_call"), {"caller": "unknown"})
    assert response.status_code == 502 and "127.0.0.1:1" in response.content.decode()
