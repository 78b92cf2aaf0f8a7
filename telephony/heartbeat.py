"""Which listeners are alive: their lease, and the heartbeats they keep in the cache.

Every `pbx_listen` keeps one of `SLOTS` cache keys (Redis in production) holding who it is, whether
it is connected to the PBX and leads, when its step loop last turned and when an AMI event last
arrived, and what it has done since it started and where that time went (the stages of
telephony/listener.py). The cache cannot list keys, so a fixed set of slots is read in one go (as
telephony/presence.py does); a slot is claimed with an atomic `add`, rewritten every `BEAT_EVERY`
seconds by a thread of the listener's own (a slow Redis never holds up a call), and lives
`HEARTBEAT_TTL` seconds: a killed listener's slot frees itself. `pbx_check` and `/healthz` read them.
"""

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db.models.functions import Now

from simplecalls.cache import cache
from telephony.models import ListenerLease

log = logging.getLogger(__name__)

SLOTS = 8  # listeners per installation that can be seen (two per PBX is the usual)
HEARTBEAT_TTL = 30
BEAT_EVERY = 2.0
STALE = 15.0  # a listener whose step loop has not turned for this long is stuck or cut off


def heartbeat_key(slot: int) -> str:
    return f"listener:{slot}"


class Heartbeat:
    """One listener's sign of life in the cache; `stepped` is called by its step loop, the writes happen on a thread."""

    def __init__(self, listener, pbx: str, connected: threading.Event, stop: threading.Event):
        self.listener = listener
        self.pbx = pbx
        self.connected = connected
        self.stop = stop
        self.id = listener.lease.holder if listener.lease else f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.slot: int | None = None
        self.stepped_at: float | None = None
        self.event_at: float | None = None
        self._failing = False

    def stepped(self, worked: bool) -> None:
        """The step loop went round; `worked`: it had AMI events to reduce."""
        self.stepped_at = time.time()
        if worked:
            self.event_at = self.stepped_at

    def start(self) -> "Heartbeat":
        threading.Thread(target=self._loop, name="listener-heartbeat", daemon=True).start()
        return self

    def value(self) -> dict:
        return {
            "id": self.id, "pbx": self.pbx, "host": socket.gethostname(), "pid": os.getpid(),
            "leading": self.listener.leading, "connected": self.connected.is_set(),
            "beat": time.time(), "stepped": self.stepped_at, "last_event": self.event_at,
            # Copies: the step loop goes on adding to them (their keys are fixed, so copying in this thread is safe).
            "spent": dict(self.listener.spent), **dict(self.listener.counts),
        }

    def beat(self) -> None:
        """Write the heartbeat into this listener's slot, claiming one if needed; never raises."""
        try:
            value = self.value()
            if self.slot is not None and (cache.get(heartbeat_key(self.slot)) or {}).get("id") == self.id:
                cache.set(heartbeat_key(self.slot), value, HEARTBEAT_TTL)
            else:
                self.slot = next((slot for slot in range(SLOTS) if cache.add(heartbeat_key(slot), value, HEARTBEAT_TTL)), None)
                if self.slot is None:
                    log.warning("listener heartbeat: all %d slots are taken; this listener is not shown", SLOTS)
        except Exception as error:  # the cache is only for the checks: the listener goes on without it
            if not self._failing:
                log.warning("listener heartbeat not written (%s); retrying", error)
            self._failing = True
        else:
            self._failing = False

    def _loop(self) -> None:
        while True:
            self.beat()
            if self.stop.wait(BEAT_EVERY):
                break
        try:
            if self.slot is not None and (cache.get(heartbeat_key(self.slot)) or {}).get("id") == self.id:
                cache.delete(heartbeat_key(self.slot))
        except Exception:
            pass


def listener_heartbeat(listener, pbx: str, connected: threading.Event, stop: threading.Event) -> Heartbeat:
    """Start `listener`'s heartbeat for the PBX at `pbx` (its lease name); it stops with `stop`."""
    return Heartbeat(listener, pbx, connected, stop).start()


def listener_heartbeats(pbx: str) -> list[dict]:
    """The heartbeats of the listeners of the PBX at `pbx`, as written (times are Unix seconds)."""
    found = cache.get_many([heartbeat_key(slot) for slot in range(SLOTS)]).values()
    return [beat for beat in found if isinstance(beat, dict) and beat.get("pbx") == pbx]


@dataclass(frozen=True)
class LeaseState:
    holder: str
    epoch: int
    age: float  # seconds since the holder last renewed it, by the database's clock
    held: bool  # not expired


def listener_lease(pbx: str) -> LeaseState | None:
    """Who holds the listener lease of the PBX at `pbx` and how fresh it is; None when no listener ever ran."""
    row = ListenerLease.objects.filter(name=pbx).annotate(now=Now()).values_list("holder", "epoch", "expires_at", "now").first()
    if row is None:
        return None
    holder, epoch, expires_at, now = row
    left = (expires_at - now).total_seconds()
    return LeaseState(holder=holder, epoch=epoch, age=max(settings.LISTENER_LEASE_SECONDS - left, 0.0), held=left > 0)
