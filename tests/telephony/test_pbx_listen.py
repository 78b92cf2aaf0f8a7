"""The listener end to end: the simulator over TCP, the real AMI client, the database."""

import time

import pytest

from history.models import Call
from telephony.cdr import read_csv
from telephony.leader import Lease
from telephony.listener import Listener
from telephony.models import Operator
from tests.helpers import wait_for
from tests.telephony.conftest import RunningListener, RunningSimulator, logged_in, running_simulator

pytestmark = pytest.mark.django_db(transaction=True)


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


def test_a_replayed_call_creates_no_duplicate(listening, caplog):
    """A second writer (no lease) hears the whole call too, but writes it only after the row is final, as a lagging one would."""
    from telephony.ami import AMIConnection

    lagging = Listener()
    ami = AMIConnection(listening.config(), on_event=lagging.on_event)
    ami.connect()
    ami.login()
    linkedid = listening.call("inbound_answered", caller="84957894561", extensions=["101", "100"])
    wait_for(ended(linkedid))
    final = Call.objects.values().get(linkedid=linkedid)
    wait_for(lambda: any(headers.get("Event") == "Hangup" for headers, _ in list(lagging.inbox.queue)))
    ami.close()

    while lagging.step(timeout=0):  # the same call's ringing, answer and end, written again
        pass

    assert Call.objects.values().get(linkedid=linkedid) == final, "one row, and the replay changed none of it"
    assert (final["disposition"], final["extension"], final["phone"]) == ("answered", "101", "+74957894561")
    assert "could not be written" not in caplog.text, "the replayed rows are merged, not refused"


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


def test_a_hot_standby_hears_everything_and_writes_only_once_the_active_one_stops(simulator, operators):
    logged_in_count = lambda: sum(session.authenticated for session in simulator.simulator.sessions)  # noqa: E731
    active = RunningListener(simulator.config(), Listener(lease=Lease(simulator.config().address, ttl=1.0)))
    logged_in(simulator)
    wait_for(lambda: active.listener.leading)
    standby = RunningListener(simulator.config(), Listener(lease=Lease(simulator.config().address, ttl=1.0)))
    wait_for(lambda: logged_in_count() == 2)
    first = simulator.call("inbound_answered")
    wait_for(ended(first))
    assert not standby.listener.leading and standby.listener.tracker.known(Call.objects.get().started_at), "the standby reduces the stream too"

    active.close()
    wait_for(lambda: standby.listener.leading, timeout=5)
    second = simulator.call("inbound_answered")
    wait_for(ended(second))
    standby.close()
    assert Call.objects.count() == 2


def test_a_linkedid_too_long_to_store_is_skipped_and_the_calls_after_it_are_written(listening, caplog):
    long_id = "9" * 200
    snapshot = f"Channel: PJSIP/trunk-0000abcd\r\nChannelState: 4\r\nCallerIDNum: 84957894561\r\nUniqueid: {long_id}\r\nLinkedid: {long_id}\r\n"
    listening.inject_raw(f"Event: Newchannel\r\nPrivilege: call,all\r\n{snapshot}\r\n".encode())
    listening.inject_raw(b"Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/trunk-0000abce\r\nUniqueid: 55.\x001\r\nLinkedid: 55.\x001\r\n\r\n")
    linkedid = listening.call("inbound_answered")
    wait_for(ended(linkedid))
    assert "cannot be stored; skipped" in caplog.text
    assert sorted(Call.objects.values_list("linkedid", flat=True)) == sorted([linkedid, "55.1"])


@pytest.mark.parametrize("with_cdr", [True, False])
def test_a_call_that_ends_while_the_link_is_down_is_closed_after_the_reconnect(simulator, operators, settings, tmp_path, with_cdr):
    settings.CDR_CSV = str(tmp_path / "Master.csv") if with_cdr else ""
    listener = RunningListener(simulator.config())
    logged_in(simulator)
    linkedid = simulator.run(simulator.simulator.call("inbound_answered", ring=10, talk=150, wait=False))
    wait_for(lambda: Call.objects.filter(linkedid=linkedid, answered_at__isnull=False).exists())

    async def drop_then_hang_up():
        await simulator.simulator.drop_connections()
        engine = simulator.simulator.engine
        [trunk] = [chan.name for chan in engine.pbx.channels.values() if chan.linkedid == linkedid and "trunk" in chan.name]
        engine.request_hangup(trunk)  # before the listener is back: it hears nothing of the end
        await engine.calls[linkedid].wait()

    simulator.run(drop_then_hang_up())
    wait_for(ended(linkedid), timeout=15)
    listener.close()
    call = Call.objects.get(linkedid=linkedid)
    assert call.disposition == "answered" and call.ended_at >= call.answered_at
    if with_cdr:  # the CDR's own figures, to the second
        rows, _ = read_csv(settings.CDR_CSV, tz=settings.CDR_TIMEZONE)
        [answered] = [row for row in rows if row.linkedid == linkedid and row.disposition == "ANSWERED"]
        assert (call.billsec, call.ended_at.replace(microsecond=0)) == (answered.billsec, answered.end)


# -- ring groups and queues through Local channels, Local chains, named endpoints, NL numbers ----------


@pytest.mark.parametrize("scenario", ["inbound_ring_group", "inbound_queue"])
@pytest.mark.parametrize(
    "busy, disposition, extension",
    [(["100"], "answered", "101"), (["100", "101", "102"], "busy", "100")],
)
def test_a_group_call_through_local_channels_ends_as_the_right_call_row(listening, scenario, busy, disposition, extension):
    # Rings for 1 s and talks for 1.5 s in real time, so the answer and the talk show in whole seconds.
    linkedid = listening.call(scenario, caller="84957894561", extensions=["100", "101", "102"], busy=busy, ring=100, talk=150)
    wait_for(ended(linkedid))
    call = Call.objects.get(linkedid=linkedid)
    assert (call.direction, call.disposition, call.phone, call.extension) == ("in", disposition, "+74957894561", extension)
    assert call.operator.operator.extension == extension
    if disposition == "answered":  # when the member's phone answered, not a Local half or the queue's own Answer()
        assert (call.answered_at - call.started_at).total_seconds() >= 0.9 and call.duration >= call.billsec >= 1


def click_to_dial(simulator, channel, number="84951234567"):
    from telephony.ami import AMIConnection

    connection = AMIConnection(simulator.config())
    connection.connect()
    connection.login()
    connection.send_action({"Action": "SimOutcome", "Exten": number, "Outcome": "answered", "Ring": "0.5", "Talk": "150"})
    response = connection.send_action({
        "Action": "Originate", "Channel": channel, "Context": "from-internal", "Exten": number,
        "Priority": "1", "Async": "true", "CallerID": f"Client <{number}>", "Timeout": "3000",
    })
    assert response.get_header("Response") == "Success"
    wait_for(lambda: Call.objects.filter(direction="out", ended_at__isnull=False).exists())
    connection.close()
    return Call.objects.get()


def test_a_click_to_dial_through_local_chains_is_a_call_out_to_the_number_by_the_operator(listening):
    call = click_to_dial(listening, "Local/100@click-to-call")
    assert (call.direction, call.disposition, call.phone, call.extension) == ("out", "answered", "+74951234567", "100")
    assert call.operator.operator.extension == "100" and call.answered_at and call.billsec > 0


NAMED = {"104": "SIP/4411-7", "105": "SIP/310020005", "106": "PJSIP/hg63xv", "107": "SIP/office-front"}


@pytest.fixture
def named_operators(django_user_model):
    for extension, endpoint in NAMED.items():
        user = django_user_model.objects.create_user(f"operator{extension}")
        Operator.objects.create(user=user, extension=extension, channel=endpoint)


@pytest.fixture
def named_listening(named_operators):
    """A PBX whose phones are named after accounts, rooms and MAC-like ids, and a listener reading the operator table."""
    with running_simulator(time_scale=0.01, endpoints=NAMED) as simulator:
        listener = RunningListener(simulator.config())
        logged_in(simulator)
        yield simulator
        listener.close()


def test_an_operator_on_a_named_endpoint_answering_is_the_calls_operator(named_listening):
    linkedid = named_listening.call("inbound_answered", caller="89161234567", extensions=["107", "104", "105"])
    wait_for(ended(linkedid))
    call = Call.objects.get(linkedid=linkedid)
    assert (call.direction, call.disposition, call.phone, call.extension) == ("in", "answered", "+79161234567", "107")
    assert call.operator.username == "operator107"


def test_a_queue_member_on_a_named_endpoint_answering_is_the_calls_operator(named_listening):
    linkedid = named_listening.call("inbound_queue", caller="89161234567", extensions=["104", "106"], busy=["104"])
    wait_for(ended(linkedid))
    call = Call.objects.get(linkedid=linkedid)
    assert (call.direction, call.disposition, call.extension, call.operator.username) == ("in", "answered", "106", "operator106")


def test_an_operator_dialling_out_from_a_named_desk_phone_makes_an_outgoing_call(named_listening):
    linkedid = named_listening.call("outbound_answered", caller="84951234567", extensions=["106"])
    wait_for(ended(linkedid))
    call = Call.objects.get(linkedid=linkedid)
    assert (call.direction, call.disposition, call.phone, call.extension) == ("out", "answered", "+74951234567", "106")
    assert call.operator.username == "operator106"


def test_a_click_to_dial_through_local_chains_to_a_named_endpoint_calls_the_client(named_listening):
    call = click_to_dial(named_listening, "Local/106@click-to-call")
    assert (call.direction, call.disposition, call.phone, call.extension) == ("out", "answered", "+74951234567", "106")
    assert call.operator.username == "operator106"


@pytest.mark.parametrize("caller_id", ["0201234567", "0031201234567", "+31201234567"])
def test_a_dutch_caller_id_with_phone_region_nl_finds_the_client(simulator, operators, settings, caller_id):
    from clients.models import Client

    settings.PHONE_REGION = "NL"  # the listener builds its tracker from the settings when it is made
    jansen = Client.objects.create(last_name="Jansen", phone_mobile="+31201234567")
    listener = RunningListener(simulator.config())
    logged_in(simulator)
    linkedid = simulator.call("inbound_answered", caller=caller_id, caller_name="Jansen", extensions=["100"])
    wait_for(ended(linkedid))
    listener.close()
    call = Call.objects.get(linkedid=linkedid)
    assert (call.direction, call.disposition, call.phone, call.extension) == ("in", "answered", "+31201234567", "100")
    assert call.client == jansen


def test_the_daemon_leaves_what_it_loaded_at_start_out_of_the_collectors_passes(monkeypatch, settings):
    import gc

    from django.core.management import call_command

    from telephony.management.commands import pbx_listen

    frozen = []
    monkeypatch.setattr(pbx_listen.signal, "signal", lambda *args: None)  # the test runner's own handlers stay
    monkeypatch.setitem(settings.DATABASES["default"], "OPTIONS", dict(settings.DATABASES["default"].get("OPTIONS", {})))
    monkeypatch.setattr(pbx_listen, "run", lambda stop, config, listener: frozen.append(gc.get_freeze_count()))
    gc.unfreeze()
    try:
        call_command("pbx_listen")
    finally:
        gc.unfreeze()
    assert frozen and frozen[0] > 10_000, "Django and the listener are in the permanent generation before the first event"
