"""Django's default cache as one object for the whole process.

Under ASGI Django keeps its cache objects per context, and every request runs in a context of its own:
`django.core.cache.cache` is a new object in each request, and a new Redis cache opens a new connection to
Redis (measured on the dialplan's route: a fifth of its CPU went to connecting). The backends this project
configures (Redis; local memory for the demo and the tests) are safe to share between threads, so this
module keeps one, made again when a test changes CACHES.
"""

import functools

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.signals import setting_changed
from django.dispatch import receiver


@functools.cache
def shared_cache():
    return caches.create_connection(DEFAULT_CACHE_ALIAS)


@receiver(setting_changed)
def settings_changed(*, setting, **kwargs):
    if setting == "CACHES":
        shared_cache.cache_clear()


class SharedCache:
    """`cache` as Django's, every call going to the process's one cache object."""

    def __getattr__(self, name):
        return getattr(shared_cache(), name)


cache = SharedCache()
