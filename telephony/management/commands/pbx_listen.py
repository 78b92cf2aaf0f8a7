import gc
import logging
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections as db_connections

from telephony.ami import AMIConfig, connect_with_retry
from telephony.heartbeat import listener_heartbeat
from telephony.leader import Lease
from telephony.listener import Listener

log = logging.getLogger("telephony.pbx_listen")

# How often the leader asks the PBX which channels live, to close calls whose end was lost.
AUDIT_EVERY = 300.0


class Command(BaseCommand):
    help = "Listen to the PBX (AMI_* settings), keep history.Call up to date and push changes to operators."

    def handle(self, *args, **options):
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        database = settings.DATABASES["default"]
        if database["ENGINE"] == "django.db.backends.postgresql":
            # A listener frozen inside a transaction must not hold the lease row (and a takeover) for long.
            options = database.setdefault("OPTIONS", {})
            options["options"] = (options.get("options", "") + " -c idle_in_transaction_session_timeout=5000").strip()
            db_connections.close_all()
        config = AMIConfig.from_settings()
        listener = Listener(lease=Lease(config.address, ttl=settings.LISTENER_LEASE_SECONDS))
        # What is loaded by now lives as long as the process: the collector no longer walks it. Its full passes took
        # 55-75 ms here over Django's own objects, every event waiting meanwhile; they now look at the calls' alone.
        gc.freeze()
        run(stop, config, listener)


def run(stop: threading.Event, config: AMIConfig, listener: Listener | None = None) -> None:
    """Listen until `stop` is set, reconnecting when the link drops; write while holding the lease."""
    listener = listener or Listener(lease=Lease(config.address, ttl=settings.LISTENER_LEASE_SECONDS))
    connected = threading.Event()
    keeper = listener.lease.keep(stop, connected) if listener.lease else None
    heartbeat = listener_heartbeat(listener, config.address, connected, stop)  # for pbx_check and /healthz
    try:
        while not stop.is_set():
            lost = threading.Event()
            connection = connect_with_retry(config, stop, on_event=listener.on_event, on_close=lost.set)
            if connection is None:
                break
            connected.set()
            listener.repair_due, audited_at = True, time.monotonic()
            while not stop.is_set() and not lost.is_set():
                heartbeat.stepped(listener.step())
                if listener.leading and (listener.repair_due or time.monotonic() - audited_at > AUDIT_EVERY):
                    listener.repair(connection)
                    audited_at = time.monotonic()
            connected.clear()
            connection.close()
            while listener.step(timeout=0):  # what arrived before the link dropped is still written
                pass
    finally:
        stop.set()
        if keeper is not None:
            keeper.join(timeout=5)
        db_connections.close_all()  # this thread's connections
        log.info("listener stopped")
