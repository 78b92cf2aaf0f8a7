"""sync_cdr on ring groups and queues: the member who answered, and busy only when every member refused."""

from io import StringIO

import pytest
from django.core.management import call_command

from history.models import Call
from telephony.models import Operator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def members(django_user_model):
    for extension in ("100", "101", "102"):
        user = django_user_model.objects.create_user(f"operator{extension}")
        Operator.objects.create(user=user, extension=extension, channel=f"PJSIP/{extension}")


def synced(simulator, tmp_path) -> dict[str, Call]:
    call_command("sync_cdr", str(tmp_path / "Master.csv"), stdout=StringIO(), stderr=StringIO())
    return {call.linkedid: call for call in Call.objects.select_related("operator")}


@pytest.mark.parametrize("scenario", ["inbound_ring_group", "inbound_queue"])
def test_a_group_call_one_member_busy_is_the_answering_members(simulator, members, tmp_path, scenario):
    linkedid = simulator.run(simulator.simulator.call(scenario, extensions=["100", "101", "102"], busy=["100"]))

    call = synced(simulator, tmp_path)[linkedid]

    assert (call.direction, call.disposition, call.extension, call.operator.username, call.source) == ("in", "answered", "101", "operator101", "cdr")


def test_a_missed_group_call_with_one_member_busy_is_missed_not_busy(simulator, members, tmp_path):
    missed = simulator.run(simulator.simulator.call("inbound_ring_group", extensions=["100", "101"], busy=["100"], ring=0.5, talk=0, wait=False))
    engine = simulator.simulator.engine
    simulator.run(_hang_up_caller(engine, missed))
    all_busy = simulator.run(simulator.simulator.call("inbound_ring_group", extensions=["100", "101"], busy=["100", "101"]))

    calls = synced(simulator, tmp_path)

    assert (calls[missed].disposition, calls[all_busy].disposition) == ("no_answer", "busy")


async def _hang_up_caller(engine, linkedid):
    """The caller gives up while the members ring."""
    import asyncio

    while not any(chan.linkedid == linkedid and chan.state == 5 for chan in engine.pbx.channels.values()):
        await asyncio.sleep(0.001)
    [trunk] = [chan.name for chan in engine.pbx.channels.values() if chan.linkedid == linkedid and "trunk" in chan.name]
    engine.request_hangup(trunk)
    await engine.calls[linkedid].wait()
