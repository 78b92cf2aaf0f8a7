"""Operators' presence for smart transfer: an open operator page counts, in any tab, until it closes or its process dies."""

import time

import pytest
from django.core.cache import cache

from telephony import presence
from telephony.presence import operator_present, presence_claim, presence_release, presence_renew
from tests.telephony.test_consumers import connect, make_operator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()


def test_each_page_holds_a_slot_of_its_own_until_it_closes():
    first, second = presence_claim(7, "tab-1"), presence_claim(7, "tab-2")
    assert (first, second) == (0, 1) and operator_present(7) and not operator_present(8)
    presence_release(7, first, "tab-1")
    assert operator_present(7), "the other tab is still open"
    presence_release(7, second, "tab-2")
    assert not operator_present(7)


def test_a_page_whose_process_died_stops_counting_once_its_slot_expires(monkeypatch):
    monkeypatch.setattr(presence, "TTL", 1)
    presence_claim(7, "tab-of-a-killed-daphne")
    assert operator_present(7)
    time.sleep(1.3)
    assert not operator_present(7)


def test_a_lost_slot_is_claimed_again_on_renewal_and_a_live_one_is_kept():
    slot = presence_claim(7, "tab-1")
    assert presence_renew(7, slot, "tab-1") == slot
    cache.clear()  # Redis restarted
    assert presence_renew(7, slot, "tab-1") == 0 and operator_present(7)


def test_releasing_a_slot_another_page_took_over_leaves_it_alone():
    cache.set(presence.slot_key(7, 0), "tab-2", 60)
    presence_release(7, 0, "tab-1")
    assert operator_present(7)


@pytest.mark.asyncio
async def test_the_operator_page_counts_while_its_socket_is_open(django_user_model):
    from asgiref.sync import sync_to_async

    anna = await sync_to_async(make_operator)(django_user_model, "anna", "100")
    first, second = await connect(anna), await connect(anna)
    assert (await first.connect())[0] and (await second.connect())[0]
    assert await sync_to_async(operator_present)(anna.pk)
    await first.disconnect()
    assert await sync_to_async(operator_present)(anna.pk)
    await second.disconnect()
    assert not await sync_to_async(operator_present)(anna.pk)
