"""`realtime.publish` on the Redis channel layer: a batch goes out in one pipeline, each message to its operator's group."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from django.conf import settings

from telephony import realtime
from tests.conftest import needs

pytestmark = pytest.mark.asyncio


async def test_a_batch_reaches_each_operators_page_in_order_and_nobody_elses():
    needs(bool(settings.REDIS_URL), "the pipelined push is Redis pub/sub's")
    layer = get_channel_layer()
    pages = {user_id: await layer.new_channel() for user_id in (1, 2, 3)}
    for user_id, channel in pages.items():
        await layer.group_add(realtime.operator_group(user_id), channel)
    batch = [(1, {"type": "call.ringing", "n": 1}), (2, {"type": "call.ringing", "n": 2}), (1, {"type": "call.ended", "n": 3})]

    await realtime.publish(batch)

    def heard(user_id, timeout=2.0):
        return asyncio.wait_for(layer.receive(pages[user_id]), timeout)

    assert [await heard(1), await heard(1), await heard(2)] == [batch[0][1], batch[2][1], batch[1][1]]
    with pytest.raises(TimeoutError):
        await heard(3, 0.2)
    for user_id, channel in pages.items():
        await layer.group_discard(realtime.operator_group(user_id), channel)


async def test_an_unreachable_redis_is_logged_and_nothing_raised(settings, caplog):
    needs(bool(settings.REDIS_URL), "the pipelined push is Redis pub/sub's")
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}}
    channel_layers.backends.clear()
    try:
        await realtime.publish([(1, {"type": "call.ringing"})])
    finally:
        channel_layers.backends.clear()
    assert "could not push 1 live messages" in caplog.text


@pytest.mark.django_db(transaction=True)
async def test_a_live_message_goes_on_to_the_page_without_a_trip_to_channels_database_thread(django_user_model, monkeypatch):
    from asgiref.sync import sync_to_async

    from tests.telephony.test_consumers import connect, make_operator

    anna = await sync_to_async(make_operator)(django_user_model, "anna", "100")
    page = await connect(anna)
    await page.connect()
    assert (await page.receive_json_from())["type"] == "calls.pending"

    async def no_trip():
        raise AssertionError("a live message waited for the database thread")

    monkeypatch.setattr("channels.consumer.aclose_old_connections", no_trip)
    message = {"type": "call.ringing", "call": {"linkedid": "1.1"}, "clients": []}
    await realtime.publish([(anna.pk, message)])
    assert await page.receive_json_from() == message
    monkeypatch.undo()  # leaving is the consumer's own business again
    await page.disconnect()
