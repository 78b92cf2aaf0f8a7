import asyncio
import logging
import threading

from daphne.management.commands.runserver import Command as RunserverCommand
from django.conf import settings

from telephony import realtime
from telephony.ami import AMIConfig
from telephony.management.commands.pbx_listen import run as run_listener
from telephony.simulator import Simulator

log = logging.getLogger("telephony.run_embedded")


class Command(RunserverCommand):
    help = "The embedded mode (make run): web server, PBX simulator and listener in one process."

    def inner_run(self, *args, **options):
        from daphne.server import twisted_loop  # the loop daphne's reactor runs on

        # The in-memory channel layer only reaches consumers through that loop.
        realtime.attach_server_loop(twisted_loop)
        stop = threading.Event()
        threading.Thread(target=serve_simulator, args=(stop,), name="pbx-simulator", daemon=True).start()
        threading.Thread(target=run_listener, args=(stop, AMIConfig.from_settings()), name="pbx-listen", daemon=True).start()
        try:
            super().inner_run(*args, **options)
        finally:
            stop.set()


def serve_simulator(stop: threading.Event) -> None:
    async def main():
        settings.RECORDINGS_DIR.mkdir(parents=True, exist_ok=True)
        simulator = Simulator(
            host=settings.AMI_HOST, port=settings.AMI_PORT, username=settings.AMI_USERNAME, secret=settings.AMI_SECRET,
            cdr_csv=str(settings.VAR_DIR / "Master.csv"), recordings_dir=str(settings.RECORDINGS_DIR),
        )
        await simulator.start()
        log.info("PBX simulator on %s:%s", settings.AMI_HOST, simulator.port)
        while not stop.is_set():
            await asyncio.sleep(0.5)
        await simulator.stop()

    asyncio.run(main())
