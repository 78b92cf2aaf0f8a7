import asyncio
import threading
from contextlib import contextmanager

import pytest

from telephony.ami import AMIConfig
from telephony.listener import Listener
from telephony.management.commands.pbx_listen import run
from telephony.simulator import Simulator
from tests.helpers import wait_for

USERNAME, SECRET = "simplecalls", "s3cret"


class RunningSimulator:
    """The simulator on its own event loop in a thread, as a separate PBX would be."""

    def __init__(self, port: int = 0, **options):
        self.loop = asyncio.new_event_loop()
        self.simulator = Simulator(host="127.0.0.1", port=port, username=USERNAME, secret=SECRET, **options)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.run(self.simulator.start())
        self.port = self.simulator.port

    def run(self, coroutine, timeout=30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def config(self, **overrides) -> AMIConfig:
        return AMIConfig(**{"host": "127.0.0.1", "port": self.port, "username": USERNAME, "secret": SECRET, "timeout": 3.0, "ping_interval": 0} | overrides)

    def call(self, scenario, **options) -> str:
        return self.run(self.simulator.call(scenario, **options))

    def inject_raw(self, data: bytes) -> None:
        self.loop.call_soon_threadsafe(self.simulator.inject_raw, data)

    def drop_connections(self) -> None:
        self.run(self.simulator.drop_connections())

    def stop(self) -> None:
        self.run(self.simulator.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@contextmanager
def running_simulator(**options):
    simulator = RunningSimulator(**options)
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def simulator(tmp_path):
    with running_simulator(time_scale=0.01, cdr_csv=str(tmp_path / "Master.csv"), recordings_dir=str(tmp_path / "recordings")) as running:
        yield running


class RunningListener:
    def __init__(self, config, listener=None):
        self.stop = threading.Event()
        self.listener = listener or Listener()
        self.thread = threading.Thread(target=run, args=(self.stop, config, self.listener), daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the listener stops when asked"


def logged_in(simulator, timeout=10.0):
    """The listener is logged in: a call placed now is heard from its first event."""
    wait_for(lambda: any(session.authenticated for session in simulator.simulator.sessions), timeout)


@pytest.fixture
def listening(simulator, operators):
    listener = RunningListener(simulator.config())
    logged_in(simulator)
    yield simulator
    listener.close()
