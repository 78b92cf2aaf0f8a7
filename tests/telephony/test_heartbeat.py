"""Listener heartbeats in the cache: one slot each, freed on stop, and a failing cache never reaches the listener."""

import threading

import pytest
from django.core.cache import cache

from telephony.heartbeat import SLOTS, Heartbeat, listener_heartbeats
from telephony.leader import Lease
from telephony.listener import STAGES, Listener
from tests.helpers import transcript_events, wait_for
from tests.telephony.test_listener import replay


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def heartbeat(pbx="10.0.0.1:5038") -> Heartbeat:
    return Heartbeat(Listener(lease=Lease(pbx)), pbx, threading.Event(), threading.Event())


def test_each_listener_keeps_a_slot_of_its_own_and_says_what_it_does():
    first, second = heartbeat(), heartbeat()
    first.connected.set()
    first.stepped(worked=True)
    second.stepped(worked=False)
    for beat in (first, second, first, second):
        beat.beat()

    beats = {beat["id"]: beat for beat in listener_heartbeats("10.0.0.1:5038")}
    assert beats.keys() == {first.id, second.id} and first.slot != second.slot
    assert beats[first.id]["connected"] and beats[first.id]["last_event"] == first.stepped_at
    assert not beats[second.id]["connected"] and beats[second.id]["last_event"] is None and beats[second.id]["stepped"]
    assert not beats[first.id]["leading"], "its lease is not held"
    assert listener_heartbeats("10.0.0.2:5038") == [], "another PBX's listeners are not these"


def test_a_stopped_heartbeat_frees_its_slot_and_a_lost_slot_is_claimed_again():
    beat = heartbeat().start()
    wait_for(lambda: listener_heartbeats("10.0.0.1:5038"))
    cache.clear()  # Redis restarted
    beat.beat()
    assert [found["id"] for found in listener_heartbeats("10.0.0.1:5038")] == [beat.id]

    beat.stop.set()
    wait_for(lambda: listener_heartbeats("10.0.0.1:5038") == [])


def test_with_every_slot_taken_a_listener_goes_unseen_but_carries_on():
    beats = [heartbeat() for _ in range(SLOTS + 1)]
    for beat in beats:
        beat.beat()
    assert len(listener_heartbeats("10.0.0.1:5038")) == SLOTS and beats[-1].slot is None


def test_a_cache_that_fails_never_raises_into_the_listener(settings, caplog):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    beat = heartbeat()
    beat.beat()
    beat.beat()
    assert beat.slot is None
    assert sum(record.message.startswith("listener heartbeat not written") for record in caplog.records) == 1, "said once, not every beat"


@pytest.mark.django_db
def test_the_heartbeat_says_what_the_listener_did_and_where_its_time_went(operator_user):
    beat = Heartbeat(Listener(), "10.0.0.1:5038", threading.Event(), threading.Event())  # the only listener: it writes
    before = beat.value()
    assert before["spent"] == dict.fromkeys(STAGES, 0.0) and before["events"] == before["batches"] == before["calls_written"] == 0
    replay(beat.listener, "inbound__answered")
    beat.beat()
    [after] = listener_heartbeats("10.0.0.1:5038")
    assert after["events"] == len(transcript_events("inbound__answered.txt")) and after["calls_written"] >= after["batches"] >= 1
    assert all(after["spent"][stage] > 0 for stage in STAGES), after["spent"]
    assert before["spent"] == dict.fromkeys(STAGES, 0.0), "a beat keeps the figures of its moment"
