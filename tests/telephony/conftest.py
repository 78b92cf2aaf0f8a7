import asyncio
import threading
from contextlib import contextmanager

import pytest

from telephony.ami import AMIConfig
from telephony.simulator import Simulator

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
