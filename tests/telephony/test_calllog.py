"""The administrator's journal: one line per call state change and per AMI (re)connect, numbers masked, no secrets."""

import logging
import time
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from history.models import Call
from telephony.calllog import masked
from telephony.listener import Listener
from tests.helpers import transcript_events, wait_for
from tests.telephony.conftest import RunningListener, RunningSimulator, SECRET, logged_in, running_simulator
from tests.telephony.test_listener import replay

pytestmark = pytest.mark.django_db

FULL = "+74957894561"


def call_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "telephony.calls"]


def everything(caplog) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


@pytest.fixture
def journal(caplog):
    caplog.set_level(logging.INFO)
    return caplog


def test_an_answered_call_is_three_lines_with_the_number_masked(operator_user, journal):
    replay(Listener(), "inbound__answered")
    call = Call.objects.get()
    assert call_lines(journal) == [
        f"call {call.linkedid} in from +749******61: ringing 100",
        f"call {call.linkedid}: answered at 100",
        f"call {call.linkedid}: ended answered, {call.billsec} s talk, {call.duration} s in all",
    ]
    assert FULL not in everything(journal) and "84957894561" not in everything(journal)


def test_debug_logging_shows_the_whole_number(operator_user, caplog):
    caplog.set_level(logging.DEBUG, logger="telephony.calls")
    caplog.set_level(logging.INFO)
    replay(Listener(), "inbound__answered")
    assert f"from {FULL}: ringing 100" in call_lines(caplog)[0]


def test_a_ring_group_names_each_phone_once_and_who_answered(operators, journal):
    replay(Listener(), "inbound__ring_group_busy_and_answer")
    lines = call_lines(journal)
    rung = [line for line in lines if ": ringing" in line]
    named = [extension.strip() for line in rung for extension in line.rsplit("ringing", 1)[1].removesuffix(" too").split(",")]
    assert len(named) == len(set(named)) and {"100", "101"} <= set(named)
    assert sum(": answered at" in line for line in lines) == 1
    assert sum(": ended " in line for line in lines) == 1
    assert lines.index(rung[0]) == 0 and ": ended " in lines[-1]


def test_a_missed_call_ends_without_an_answered_line(operator_user, journal):
    replay(Listener(), "inbound__missed")
    lines = call_lines(journal)
    assert len(lines) == 2 and "ended no_answer, 0 s talk" in lines[1]


def test_a_click_to_call_logs_each_stage_once_as_it_is_written(operator_user, journal):
    listener = Listener()
    clock = timezone.now()
    for message in transcript_events("originate__answered.txt"):
        message = {key: f"sc-{value}" if key.lower() == "linkedid" else value for key, value in message.items()}
        if message.get("Timestamp"):
            clock = datetime.fromtimestamp(float(message["Timestamp"]), UTC)
        listener.inbox.put((message, clock))
        listener.step(timeout=0)  # written event by event, as a live call is
    call = Call.objects.get()
    # This PBX answers the operator's leg of the Local channel at once: the first stage heard is "calling".
    assert call_lines(journal) == [
        f"call {call.linkedid}: click-to-call by 100 to +749******61: calling",
        f"call {call.linkedid}: connected",
        f"call {call.linkedid}: ended answered, {call.billsec} s talk, {call.duration} s in all",
    ]
    assert call.billsec > 0


def test_a_listener_taking_over_a_written_call_does_not_log_it_again(operator_user, journal):
    replay(Listener(), "inbound__answered")
    first = call_lines(journal)
    replay(Listener(), "inbound__answered")  # a fresh listener hears the same stream: the row says it all
    assert call_lines(journal) == first


def test_a_standby_logs_no_calls(operator_user, journal):
    class Standby:
        held, epoch = False, None

    replay(Listener(lease=Standby()), "inbound__answered")
    assert call_lines(journal) == [] and not Call.objects.exists()


@pytest.mark.parametrize(
    "number, shown",
    [("+74957894561", "+749******61"), ("84957894561", "8495*****61"), ("100", "100"), ("112", "112"),
     ("1234567", "*****67"), ("", ""), ("+31201234567", "+312******67")],
)
def test_masking(number, shown):
    assert masked(number) == shown


@pytest.mark.django_db(transaction=True)
def test_a_connect_a_lost_link_and_a_reconnect_are_one_line_each_without_the_secret(operators, journal):
    simulator = RunningSimulator(time_scale=0.01)
    listener = RunningListener(simulator.config())
    logged_in(simulator)
    port = simulator.port
    simulator.stop()
    time.sleep(1.1)
    with running_simulator(time_scale=0.01, port=port) as revived:
        logged_in(revived, timeout=20)
        wait_for(lambda: sum(": connected to " in record.getMessage() for record in journal.records) == 2)
        linkedid = revived.call("inbound_answered", caller="84957894561")
        wait_for(lambda: Call.objects.filter(linkedid=linkedid, ended_at__isnull=False).exists())
        listener.close()
    ami = [record.getMessage() for record in journal.records if record.name == "telephony.ami"]
    assert sum(": connected to " in line for line in ami) == 2
    assert sum("connection lost" in line or "closed the connection" in line for line in ami) == 1
    assert SECRET not in everything(journal)
    assert "84957894561" not in everything(journal) and FULL not in everything(journal)


def test_smart_transfer_logs_a_failed_ask_with_the_number_masked(journal, monkeypatch):
    from telephony import transfer

    def broken(*args):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(transfer, "fetch", broken)
    assert transfer.callerid_lookup(number="84957894561", ascii=False, budget_ms=300, max_length=20) == ""
    assert transfer.route_decide(number="84957894561", budget_ms=300, linkedid="t.1").extension == ""
    lines = [record.getMessage() for record in journal.records if record.name == "telephony.transfer"]
    assert any("caller-ID name for +749******61 answered empty" in line for line in lines)
    assert any("smart transfer for +749******61 answered empty" in line for line in lines)
    assert "4957894561" not in everything(journal)
