"""Two installations on one Redis server share nothing: live messages, cache entries, Celery tasks."""

import asyncio
from urllib.parse import urlparse

import pytest
import redis
from celery import Celery
from django.conf import settings
from django.utils.module_loading import import_string

from simplecalls.celery import app as celery_app
from simplecalls.env import (
    broker_transport_options,
    cache_config,
    channel_layer_config,
    channel_prefix_from_env,
    database_from_env,
    redis_url_from_env,
)
from tests.conftest import needs


def redis_database(number: int) -> str:
    """The tests' Redis server, another database on it."""
    needs(bool(settings.REDIS_URL), "two installations on one Redis server need REDIS_URL")
    return urlparse(settings.REDIS_URL)._replace(path=f"/{number}", query="").geturl()


def installation(database_name: str, redis_number: int, **environ) -> dict:
    """What the settings make of an installation's environment: its prefix and its Redis-facing configs."""
    environ = {"DATABASE_URL": f"postgres://root@127.0.0.1:5432/{database_name}", "REDIS_URL": redis_database(redis_number), **environ}
    redis_url = redis_url_from_env(environ)
    prefix = channel_prefix_from_env(environ, database_from_env(environ, ""))
    return {"prefix": prefix, "redis_url": redis_url, "channel_layer": channel_layer_config(redis_url, prefix), "cache": cache_config(redis_url, prefix)}


def channel_layer(config: dict):
    return import_string(config["BACKEND"])(**config["CONFIG"])


@pytest.fixture
def redis_7():
    url = redis_database(7)
    yield
    redis.Redis.from_url(url).flushdb()


async def delivered(layer, channel: str, timeout: float) -> dict | None:
    try:
        return await asyncio.wait_for(layer.receive(channel), timeout)
    except asyncio.TimeoutError:
        return None


async def send_across(sender, listener) -> tuple[dict | None, dict | None]:
    """One operator's page open in each installation; `sender` pushes a pop-up to that operator's group."""
    listening = await listener.new_channel()
    await listener.group_add("operator.1", listening)
    sending = await sender.new_channel()
    await sender.group_add("operator.1", sending)
    try:
        await sender.group_send("operator.1", {"type": "call.ringing", "call": {"id": 7}})
        own = await delivered(sender, sending, 5)
        other = await delivered(listener, listening, 1)
    finally:
        await sender.flush()
        await listener.flush()
    return own, other


async def test_a_pop_up_in_one_installation_never_reaches_the_other():
    north = installation("salon_north", 7)
    south = installation("salon_south", 8)
    own, other = await send_across(channel_layer(north["channel_layer"]), channel_layer(south["channel_layer"]))
    assert own == {"type": "call.ringing", "call": {"id": 7}}, "the installation that sent it hears it"
    assert other is None


async def test_without_their_own_prefixes_two_installations_hear_each_other_whatever_their_database_numbers():
    north = installation("salon_north", 7, CHANNEL_PREFIX="isolation_shared")
    south = installation("salon_south", 8, CHANNEL_PREFIX="isolation_shared")
    own, other = await send_across(channel_layer(north["channel_layer"]), channel_layer(south["channel_layer"]))
    assert own is not None and other == own, "pub/sub ignores database numbers: the prefix is what keeps them apart"


def test_cache_entries_of_one_installation_are_invisible_to_the_other_on_the_same_database(redis_7):
    north, south = installation("salon_north", 7), installation("salon_south", 7)
    north_cache, south_cache = (import_string(config["BACKEND"])(config["LOCATION"], config) for config in (north["cache"], south["cache"]))
    north_cache.set("login-failures:address:10.0.0.1", 5)
    assert south_cache.get("login-failures:address:10.0.0.1") is None
    assert north_cache.get("login-failures:address:10.0.0.1") == 5


def celery_for(config: dict) -> Celery:
    """A Celery app configured as simplecalls/settings/base.py configures the project's."""
    app = Celery(set_as_current=False)
    app.conf.update(
        broker_url=config["redis_url"], task_default_queue=config["prefix"],
        broker_transport_options=broker_transport_options(config["redis_url"], config["prefix"]),
    )
    return app


def next_task(app: Celery) -> str | None:
    """What a worker of `app`, on its default queue, would take next."""
    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue(app.conf.task_default_queue)
        try:
            message = queue.get(timeout=1)
        except queue.Empty:
            return None
        finally:
            queue.close()
    message.ack()
    return message.headers["task"]


def test_a_task_sent_by_one_installation_goes_to_its_own_workers_only(redis_7):
    north, south = celery_for(installation("salon_north", 7)), celery_for(installation("salon_south", 7))
    for app in (north, south):
        next_task(app)  # each worker's queue exists before anything is sent, as with running workers
    north.send_task("telephony.tasks.reconcile_cdr")
    assert next_task(south) is None
    assert next_task(north) == "telephony.tasks.reconcile_cdr"


def test_the_project_puts_everything_it_keeps_on_redis_under_its_prefix():
    prefix = settings.CHANNEL_PREFIX
    assert settings.CACHES["default"]["KEY_PREFIX"] == prefix
    assert celery_app.conf.task_default_queue == prefix
    if settings.REDIS_URL:
        assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] == f"{prefix}."
        assert celery_app.conf.broker_transport_options == {"global_keyprefix": f"{prefix}:"}
