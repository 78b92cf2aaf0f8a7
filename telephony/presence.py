"""Which operators have a page open: kept in the cache (Redis in production) by the operator consumer.

Each open page holds one of its user's `SLOTS` cache keys, claimed with an atomic `add` and renewed
every `REFRESH` seconds; a key lives `TTL` seconds, so the pages of a killed web process stop
counting within that time, with nothing to clean up. Closing a page frees its key at once.
Smart transfer (telephony/transfer.py) asks `operator_present`: one read of the user's keys.
"""

import asyncio
import logging
import uuid

from asgiref.sync import sync_to_async

from simplecalls.cache import cache

log = logging.getLogger(__name__)

SLOTS = 8  # pages a user may have open at once and be counted by (more still count while these live)
TTL = 60
REFRESH = 20


def slot_key(user_id: int, slot: int) -> str:
    return f"presence:{user_id}:{slot}"


def presence_claim(user_id: int, token: str) -> int | None:
    """Take a free slot for one page; None when all are taken."""
    for slot in range(SLOTS):
        if cache.add(slot_key(user_id, slot), token, TTL):
            return slot
    return None


def presence_renew(user_id: int, slot: int | None, token: str) -> int | None:
    """Keep the page's slot alive, or claim one again when it was lost (expired, Redis restarted)."""
    if slot is not None:
        key = slot_key(user_id, slot)
        if cache.get(key) == token:
            cache.touch(key, TTL)
            return slot
    return presence_claim(user_id, token)


def presence_release(user_id: int, slot: int | None, token: str) -> None:
    if slot is None:
        return
    key = slot_key(user_id, slot)
    if cache.get(key) == token:
        cache.delete(key)


def operator_present(user_id: int) -> bool:
    """Whether the user has an operator page open (in any tab, on any web process)."""
    return bool(cache.get_many([slot_key(user_id, slot) for slot in range(SLOTS)]))


class PagePresence:
    """One open page's slot, renewed while the page's socket lives; the cache failing never breaks the page."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.token = uuid.uuid4().hex
        self.slot: int | None = None
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        self.slot = await self.call(presence_claim, self.user_id, self.token)
        self.task = asyncio.create_task(self.keep())

    async def keep(self) -> None:
        while True:
            await asyncio.sleep(REFRESH)
            self.slot = await self.call(presence_renew, self.user_id, self.slot, self.token)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.call(presence_release, self.user_id, self.slot, self.token)

    async def call(self, function, *args):
        try:
            return await sync_to_async(function)(*args)
        except Exception as error:  # a page works without presence; smart transfer then uses the fallback
            log.warning("operator presence for user %s: %s", self.user_id, error)
            return None
