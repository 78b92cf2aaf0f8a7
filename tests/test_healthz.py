"""`/healthz`: 200 or 503 with JSON, for a load balancer or monitoring; no login, no secrets."""

import datetime
import socket

import pytest
from django.db import connection
from django.utils import timezone

from telephony.ami import AMIConfig
from telephony.heartbeat import listener_heartbeats, listener_lease
from telephony.leader import Lease
from telephony.listener import Listener
from telephony.models import ListenerLease
from tests.helpers import wait_for
from tests.telephony.conftest import SECRET, USERNAME, RunningListener, running_simulator

pytestmark = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def pbx(settings):
    with running_simulator(time_scale=0.01) as simulator:
        settings.AMI_HOST, settings.AMI_PORT, settings.AMI_USERNAME, settings.AMI_SECRET = "127.0.0.1", simulator.port, USERNAME, SECRET
        yield simulator


@pytest.fixture
def leader(pbx, operators):
    config = pbx.config()
    running = RunningListener(config, Listener(lease=Lease(config.address, ttl=3)))
    wait_for(lambda: listener_lease(config.address) is not None and listener_lease(config.address).held)
    yield running
    running.close()


def lease_renewed(seconds_ago: float) -> None:
    """The configured PBX's lease, as its holder left it `seconds_ago` (a 3 s lease)."""
    expires_at = timezone.now() - datetime.timedelta(seconds=seconds_ago - 3)
    ListenerLease.objects.update_or_create(name=AMIConfig.from_settings().address, defaults={"holder": "pbx1:4242:abcd", "expires_at": expires_at})


def test_a_live_listener_makes_it_healthy_with_the_ages_of_its_lease_and_last_event(client, pbx, leader):
    pbx.call("inbound_answered", extensions=["100"])
    wait_for(lambda: any(beat["last_event"] for beat in listener_heartbeats(pbx.config().address)), timeout=10)

    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["redis"]["status"] in ("ok", "not used")
    assert body["listener"]["status"] == "ok" and 0 <= body["listener"]["heartbeat_age"] <= 3
    assert body["ami_events"]["last_event_age"] is not None and body["ami_events"]["last_event_age"] < 30
    text = response.content.decode()
    assert "127.0.0.1" not in text and SECRET not in text and USERNAME not in text, "nothing about where or who"
    assert "no-store" in response["Cache-Control"]


def test_a_stale_listener_heartbeat_is_503(client, settings):
    lease_renewed(60)

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail" and body["listener"]["status"] == "fail"
    assert body["listener"]["heartbeat_age"] >= 59 and body["listener"]["max_age"] == settings.HEALTHZ_LISTENER_MAX_AGE
    assert body["database"]["status"] == "ok"
    assert "pbx1" not in response.content.decode(), "the holder's host stays private"


def test_no_listener_ever_is_503(client, settings):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["listener"] == {"status": "fail", "heartbeat_age": None, "max_age": settings.HEALTHZ_LISTENER_MAX_AGE}


def test_a_fresh_lease_is_healthy_and_the_event_age_only_counts_when_asked(client, settings):
    lease_renewed(1)
    first = client.get("/healthz")
    assert first.status_code == 200, first.json()
    assert first.json()["ami_events"] == {"status": "unknown", "last_event_age": None, "max_age": None}

    settings.HEALTHZ_EVENT_MAX_AGE = 600
    second = client.get("/healthz")
    assert second.status_code == 503 and second.json()["ami_events"]["status"] == "fail"


def test_an_unreachable_redis_is_503(client, settings):
    lease_renewed(1)
    settings.REDIS_URL = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["redis"] == {"status": "fail", "error": "ConnectionError"}
    assert "hunter2" not in response.content.decode()


def test_an_unreachable_database_is_503(client):
    lease_renewed(1)
    key, nowhere = ("NAME", "/nonexistent/healthz.sqlite3") if connection.vendor == "sqlite" else ("PORT", closed_port())
    saved = connection.settings_dict[key]
    connection.close()
    connection.settings_dict[key] = nowhere
    try:
        response = client.get("/healthz")
    finally:
        connection.settings_dict[key] = saved
        connection.close()

    assert response.status_code == 503
    body = response.json()
    assert body["database"] == {"status": "fail", "error": "OperationalError"}
    assert body["listener"]["status"] == "unknown"


def test_it_needs_no_login_and_takes_no_post(client):
    assert client.get("/healthz").status_code in (200, 503)
    assert client.post("/healthz").status_code == 405
