import logging
import signal
import threading

from django.conf import settings
from django.db import connections as db_connections
from django.core.management.base import BaseCommand

from telephony.ami import AMIConfig, connect_with_retry
from telephony.leader import Leadership
from telephony.listener import Listener

log = logging.getLogger("telephony.pbx_listen")


class Command(BaseCommand):
    help = "Listen to the PBX (AMI_* settings), keep history.Call up to date and push changes to operators."

    def handle(self, *args, **options):
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        run(stop, AMIConfig.from_settings())


def run(stop: threading.Event, config: AMIConfig, listener: Listener | None = None) -> None:
    """Stand by or listen until `stop` is set; reconnects when the link drops."""
    listener = listener or Listener()
    leader = Leadership(settings.REDIS_URL, config.address) if settings.REDIS_URL else None
    try:
        while not stop.is_set():
            if leader and not leader.hold():
                stop.wait(1)
                continue
            lost = threading.Event()
            connection = connect_with_retry(config, stop, on_event=listener.on_event, on_close=lost.set)
            if connection is None:
                break
            while not stop.is_set() and not lost.is_set() and (leader is None or leader.hold()):
                listener.step()
            connection.close()
            while listener.step(timeout=0):  # what arrived before the link dropped is still written
                pass
    finally:
        if leader:
            leader.release()
        db_connections.close_all()  # this thread's connections
        log.info("listener stopped")
