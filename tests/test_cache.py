"""One cache object per process (simplecalls/cache.py), whatever context a request runs in."""

import contextvars

from django.core.cache import cache as djangos_cache
from django.core.cache import caches

from simplecalls.cache import cache, shared_cache


def test_requests_in_contexts_of_their_own_share_one_cache_object():
    # Each request runs in a context of its own; Django's `cache` is a new object (a new connection) in each.
    shared = [contextvars.Context().run(shared_cache) for _ in range(3)]
    djangos = [contextvars.Context().run(lambda: caches["default"]) for _ in range(3)]
    assert len({id(one) for one in shared}) == 1 and len({id(one) for one in djangos}) == 3


def test_it_holds_what_djangos_cache_holds_and_follows_a_change_of_caches(settings):
    djangos_cache.set("shared-cache-test", 42)
    assert cache.get("shared-cache-test") == 42
    before = shared_cache()
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": "another-installation"}}
    assert shared_cache() is not before and cache.get("shared-cache-test") is None
