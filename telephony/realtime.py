"""The only code that calls the channel layer: each operator's page listens on its own group.

What the messages say, and to whom, is worked out in `telephony/messages.py`.
"""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer

from simplecalls.web import serving_loop
from telephony import messages as live
from telephony.messages import call_message, catch_up_messages  # noqa: F401 -- listener.py and tests import them from here

log = logging.getLogger(__name__)

SEND_TIMEOUT = 2.0  # a Redis that does not answer must not hold the sender for longer

# In the embedded mode the in-memory layer only reaches consumers through the server's own loop.
_server_loop: asyncio.AbstractEventLoop | None = None


def attach_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    global _server_loop
    _server_loop = loop


def operator_group(user_id: int) -> str:
    return f"operator.{user_id}"


async def publish(messages: list[tuple[int, dict]]) -> None:
    """Send each message to its operator's group, all at once; a failure is logged, never raised."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return
    try:
        await asyncio.wait_for(send_all(layer, messages), SEND_TIMEOUT)
    except Exception as error:  # the page catches up on its next connect
        log.warning("could not push %d live messages: %s", len(messages), repr(error)[:200])


async def send_all(layer, messages: list[tuple[int, dict]]) -> None:
    """On Redis pub/sub, every PUBLISH of the batch in one round trip; on any other layer, a group_send each.

    channels_redis's own group_send waits for each PUBLISH in turn: a hundred pop-ups queued
    behind one another. Its names, serializer and connections are used (channels-redis 4.3, pinned),
    so the consumers hear them as usual.
    """
    if not isinstance(layer, RedisPubSubChannelLayer):
        await asyncio.gather(*(layer.group_send(operator_group(user_id), message) for user_id, message in messages))
        return
    pubsub = layer._get_layer()  # this loop's connections
    batches = {}
    for user_id, message in messages:
        name = pubsub._get_group_channel_name(operator_group(user_id))
        batches.setdefault(pubsub._get_shard(name), []).append((name, layer.serialize(message)))
    for shard, batch in batches.items():
        shard._ensure_redis()
        async with shard._redis.pipeline(transaction=False) as pipe:
            for name, data in batch:
                pipe.publish(name, data)
            await pipe.execute()


async def warm_up() -> None:
    """Set the channel layer up and connect it before the first call needs it: that first use costs ~100 ms."""
    layer = get_channel_layer()
    if layer is not None:
        try:
            await asyncio.wait_for(layer.group_send("warm-up", {"type": "warm.up"}), SEND_TIMEOUT)
        except Exception as error:
            log.warning("the channel layer is not reachable yet: %s", repr(error)[:200])


def server_loop() -> asyncio.AbstractEventLoop | None:
    """The web server's own loop: in the embedded mode the only way into its in-memory layer; under daphne a view's
    messages go out on it while the view's thread moves on to the next request."""
    if _server_loop is not None and _server_loop.is_running():
        return _server_loop
    return serving_loop()


def send_many(messages: list[tuple[int, dict]]) -> None:
    """`publish` from synchronous code; a failure is logged, never raised."""
    if not messages:
        return
    loop = server_loop()
    if loop is not None:
        asyncio.run_coroutine_threadsafe(publish(messages), loop)
    else:
        async_to_sync(publish)(messages)


def call_changed(call_id: int, kinds: list[str]) -> None:
    """Tell the call's operator what happened to it: call.ringing, call.answered, call.ended."""
    send_many(live.call_changed_messages(call_id, kinds))


def call_closed(call_id: int) -> None:
    """Registered or dismissed: every open page of every operator the call rang drops its form."""
    send_many(live.call_closed_messages(call_id))
