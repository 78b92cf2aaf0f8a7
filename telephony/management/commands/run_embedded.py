import asyncio
import logging
import secrets
import threading
from pathlib import Path

from daphne.management.commands.runserver import Command as RunserverCommand
from django.conf import settings
from django.db import close_old_connections, connections

from simplecalls.celery import app as celery_app
from telephony import realtime
from telephony.ami import AMIConfig
from telephony.management.commands.pbx_listen import run as run_listener
from telephony.reconcile import cdr_reconcile_recent
from telephony.simulator import Simulator

log = logging.getLogger("telephony.run_embedded")
RECONCILE_EVERY = 60.0
# The simulator plays the operator's desk phone for click-to-call: picked up after a moment, then the client answers and talks a while.
DEMO_RING_SECONDS, DEMO_TALK_SECONDS = 2.0, 15.0
SIMULATOR_CDR = settings.VAR_DIR / "Master.csv"


class Command(RunserverCommand):
    help = "The embedded mode (make run): web server, PBX simulator, listener and CDR reconciliation in one process."

    def inner_run(self, *args, **options):
        from daphne.server import twisted_loop  # the loop daphne's reactor runs on

        # The in-memory channel layer only reaches consumers through that loop.
        realtime.attach_server_loop(twisted_loop)
        # One process does everything here: click-to-call's task runs at once, with or without a Redis to queue it on.
        celery_app.conf.task_always_eager = True
        if not settings.CDR_CSV:
            use_simulator_cdr(SIMULATOR_CDR)
        if not settings.DIALPLAN_TOKEN:
            # The simulator's dialplan asks this very server (smart transfer), with a token of this run's own.
            settings.DIALPLAN_TOKEN = secrets.token_urlsafe(24)
        stop = threading.Event()
        threading.Thread(target=serve_simulator, args=(stop, self.dialplan_url()), name="pbx-simulator", daemon=True).start()
        threading.Thread(target=run_listener, args=(stop, AMIConfig.from_settings()), name="pbx-listen", daemon=True).start()
        threading.Thread(target=reconcile_periodically, args=(stop,), name="cdr-reconcile", daemon=True).start()
        try:
            super().inner_run(*args, **options)
        finally:
            stop.set()

    def dialplan_url(self) -> str:
        """Smart transfer's endpoints on this server, for the simulator's inbound_smart calls."""
        host = {"0": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.addr, self.addr)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/telephony/dialplan/"


def serve_simulator(stop: threading.Event, dialplan_url: str | None = None) -> None:
    async def main():
        settings.RECORDINGS_DIR.mkdir(parents=True, exist_ok=True)
        simulator = Simulator(
            host=settings.AMI_HOST, port=settings.AMI_PORT, username=settings.AMI_USERNAME, secret=settings.AMI_SECRET,
            cdr_csv=str(SIMULATOR_CDR), recordings_dir=str(settings.RECORDINGS_DIR),
            dialplan_url=dialplan_url, dialplan_token=settings.DIALPLAN_TOKEN,
        )
        simulator.engine.set_outcome("*", ring=DEMO_RING_SECONDS, talk=DEMO_TALK_SECONDS)
        await simulator.start()
        log.info("PBX simulator on %s:%s", settings.AMI_HOST, simulator.port)
        while not stop.is_set():
            await asyncio.sleep(0.5)
        await simulator.stop()

    asyncio.run(main())


def use_simulator_cdr(path: Path) -> None:
    """Reconcile from the simulator's records, begun afresh: calls of an earlier run, perhaps on another database, must not come back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.replace(path.with_name(path.name + ".old"))
    path.touch()  # a PBX with no calls yet is not a missing file
    # The simulator writes its times in this process's local time, which Django sets to TIME_ZONE.
    settings.CDR_CSV, settings.CDR_TIMEZONE = str(path), settings.TIME_ZONE


def reconcile_periodically(stop: threading.Event, every: float = RECONCILE_EVERY) -> None:
    """What the Celery beat task does in production: repair the call log from the CDR every minute."""
    while not stop.wait(every):
        close_old_connections()
        try:
            cdr_reconcile_recent()
        finally:
            connections.close_all()  # this thread's connections
