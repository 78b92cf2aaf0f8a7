import time
import uuid

import pytest
import redis
from django.conf import settings

from tests.conftest import needs
from telephony.leader import Leadership


@pytest.fixture
def redis_url():
    url = settings.REDIS_URL or "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_timeout=1).ping()
    except redis.RedisError:
        needs(False, f"no Redis at {url}")
    return url


def test_only_one_listener_is_active_and_a_standby_takes_over_when_it_dies(redis_url):
    name = f"test-{uuid.uuid4().hex}"
    active = Leadership(redis_url, name, ttl=1.0, renew_every=0.1)
    standby = Leadership(redis_url, name, ttl=1.0, renew_every=0.1)
    assert active.hold() and not standby.hold()
    time.sleep(0.3)
    assert active.hold() and not standby.hold(), "renewal keeps the lock past a renew period"
    # The active process dies: it stops renewing, and the lock expires after its ttl.
    deadline = time.monotonic() + 3
    while not standby.hold():
        assert time.monotonic() < deadline, "the standby did not take over"
        time.sleep(0.05)
    time.sleep(0.15)
    assert not active.hold(), "the old holder notices it lost the lock"
    standby.release()


def test_a_released_lock_is_taken_at_once(redis_url):
    name = f"test-{uuid.uuid4().hex}"
    first, second = Leadership(redis_url, name), Leadership(redis_url, name)
    assert first.hold()
    first.release()
    assert second.hold()
    second.release()


def test_an_unreachable_redis_means_standing_by_not_crashing():
    assert Leadership("redis://127.0.0.1:1/0", "nowhere").hold() is False
