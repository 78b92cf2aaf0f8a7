"""The listener end to end: the simulator over TCP, the real AMI client, the database."""

import threading
import time

import pytest

from history.models import Call
from telephony.listener import Listener
from telephony.management.commands.pbx_listen import run
from telephony.models import Operator
from tests.telephony.conftest import RunningSimulator, running_simulator

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class RunningListener:
    def __init__(self, config):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=run, args=(self.stop, config, Listener()), daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the listener stops when asked"


@pytest.fixture
def operators(django_user_model):
    for username, extension in (("operator1", "100"), ("operator2", "101")):
        user = django_user_model.objects.create_user(username)
        Operator.objects.create(user=user, extension=extension, channel=f"PJSIP/{extension}")


def logged_in(simulator, timeout=10.0):
    """The listener is logged in: a call placed now is heard from its first event."""
    wait_for(lambda: any(session.authenticated for session in simulator.simulator.sessions), timeout)


@pytest.fixture
def listening(simulator, operators):
    listener = RunningListener(simulator.config())
    logged_in(simulator)
    yield simulator
    listener.close()


def ended(linkedid):
    return lambda: Call.objects.filter(linkedid=linkedid, ended_at__isnull=False).exists()


@pytest.mark.parametrize(
    "scenario, extensions, disposition, answered_by",
    [
        ("inbound_answered", ["100"], "answered", "100"),
        ("inbound_missed", ["100"], "no_answer", "100"),
        ("inbound_no_answer", ["101"], "no_answer", "101"),
        ("inbound_busy", ["100"], "busy", "100"),
        ("inbound_answered", ["101", "100"], "answered", "101"),
    ],
)
def test_every_inbound_scenario_ends_as_the_right_call_row(listening, scenario, extensions, disposition, answered_by):
    linkedid = listening.call(scenario, caller="84957894561", extensions=extensions)
    wait_for(ended(linkedid))
    call = Call.objects.get(linkedid=linkedid)
    assert (call.direction, call.disposition, call.phone, call.extension) == ("in", disposition, "+74957894561", answered_by)
    assert call.operator.operator.extension == answered_by


@pytest.mark.parametrize(
    "outcome, disposition",
    [("answered", "answered"), ("no_answer", "no_answer"), ("busy", "busy"), ("failed", "failed")],
)
def test_every_click_to_call_outcome_ends_as_the_right_call_row(listening, outcome, disposition):
    from telephony.ami import AMIConnection

    connection = AMIConnection(listening.config())
    connection.connect()
    connection.login()
    connection.send_action({"Action": "SimOutcome", "Exten": "84951234567", "Outcome": outcome, "Ring": "0.5", "Talk": "1"})
    response = connection.send_action({
        "Action": "Originate", "Channel": "Local/100@from-internal", "Context": "from-internal", "Exten": "84951234567",
        "Priority": "1", "Async": "true", "CallerID": "Савицкая <84951234567>", "Timeout": "3000",
    })
    assert response.get_header("Response") == "Success"
    wait_for(lambda: Call.objects.filter(direction="out", ended_at__isnull=False).exists())
    call = Call.objects.get()
    assert (call.direction, call.disposition, call.extension) == ("out", disposition, "100")
    assert call.phone == "+74951234567"
    connection.close()


def test_a_replayed_call_creates_no_duplicate(listening):
    linkedid = listening.call("inbound_answered")
    wait_for(ended(linkedid))
    listener = RunningListener(listening.config())  # a second listener hears nothing new, and writes nothing twice
    time.sleep(0.3)
    listener.close()
    assert Call.objects.filter(linkedid=linkedid).count() == 1


def test_chan_variables_and_garbage_do_not_stop_the_listener(operators, tmp_path):
    with running_simulator(time_scale=0.01, chanvariables=["CDR(userfield)"]) as simulator:
        listener = RunningListener(simulator.config())
        logged_in(simulator)
        simulator.inject_raw(b"no colon here\r\n\r\nEvent: Newchannel\r\nbroken\r\n\r\n" + b"Z" * 80_000 + b"\r\n\r\n")
        linkedid = simulator.call("inbound_answered")
        wait_for(ended(linkedid))
        listener.close()


def test_a_killed_simulator_is_reconnected_to(operators):
    simulator = RunningSimulator(time_scale=0.01)
    listener = RunningListener(simulator.config())
    logged_in(simulator)
    first = simulator.call("inbound_answered")
    wait_for(ended(first))
    port = simulator.port
    simulator.stop()
    time.sleep(1.1)  # Uniqueids are <epoch>.<seq>: a restarted PBX counts from a later second
    with running_simulator(time_scale=0.01, port=port) as revived:
        logged_in(revived, timeout=20)  # its reconnect backoff runs 1, 2, 4… s
        second = revived.call("inbound_answered")
        wait_for(ended(second))
    listener.close()
    assert Call.objects.count() == 2


def test_sigterm_stops_the_daemon_cleanly(simulator, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from django.db import connection

    from simplecalls.env import database_url

    config = simulator.config()
    environ = os.environ | {
        "DJANGO_SETTINGS_MODULE": "simplecalls.settings.test", "DATABASE_URL": database_url(connection.settings_dict),
        "AMI_HOST": config.host, "AMI_PORT": str(config.port), "AMI_USERNAME": config.username, "AMI_SECRET": config.secret,
    }
    daemon = subprocess.Popen([sys.executable, "manage.py", "pbx_listen"], env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    logged_in(simulator, timeout=30)
    daemon.send_signal(signal.SIGTERM)
    output, _ = daemon.communicate(timeout=15)
    assert daemon.returncode == 0, output
    assert "listener stopped" in output and "Traceback" not in output


def test_a_standby_listener_takes_over_when_the_active_one_stops(simulator, operators, settings):
    from tests.conftest import needs

    needs(bool(settings.REDIS_URL), "the standby's lock lives in Redis: set REDIS_URL")
    logged_in_count = lambda: sum(session.authenticated for session in simulator.simulator.sessions)  # noqa: E731
    active = RunningListener(simulator.config())
    logged_in(simulator)
    standby = RunningListener(simulator.config())
    time.sleep(1.5)
    assert logged_in_count() == 1, "the standby waits without connecting"
    active.close()
    wait_for(lambda: logged_in_count() == 1, timeout=12)
    linkedid = simulator.call("inbound_answered")
    wait_for(ended(linkedid))
    standby.close()
