"""A real Chromium (Debian's) driven by Playwright against the live test server."""

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from simplecalls.env import database_url
from telephony.ami import AMIConfig, AMIConnection
from tests.conftest import CHROMIUM, needs

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="package")
def browser():
    """One Chromium for the browser tests; stopped after them, as its event loop would block async tests."""
    needs(os.path.exists(CHROMIUM), f"no browser at {CHROMIUM}")
    with chromium() as browser:
        yield browser


@contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls in these tests are still synchronous.
    # Only while it runs: the tests after these must keep Django's guard against the ORM inside an event loop.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def browser_page(browser, base_url: str, width: int = 1280, height: int = 900):
    """A page in a fresh browser context: its own cookies, in Russian, a window of that size."""
    context = browser.new_context(base_url=base_url, locale="ru-RU", viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser, live_server):
    with browser_page(browser, live_server.url) as page:
        yield page


@pytest.fixture
def desk(browser, live_server):
    """A front desk's screen: 1366×768."""
    with browser_page(browser, live_server.url, 1366, 768) as page:
        yield page


@pytest.fixture
def screenshot(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take


def log_in(page, username: str, password: str) -> None:
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    """`make run`'s embedded stack (web server, listener, PBX simulator) as its own process, on the test database."""

    def __init__(self, workdir: Path):
        self.port, ami_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ami = AMIConfig("127.0.0.1", ami_port, "simplecalls", "stack-secret", ping_interval=0)
        self.log_path = workdir / "stack.log"
        self.environ = os.environ | {
            "DJANGO_SETTINGS_MODULE": "simplecalls.settings.test", "DATABASE_URL": database_url(connection.settings_dict), "DEBUG": "1",
            "AMI_HOST": "127.0.0.1", "AMI_PORT": str(ami_port), "AMI_USERNAME": "simplecalls", "AMI_SECRET": "stack-secret",
            "RECORDINGS_DIR": str(workdir / "recordings"), "LOG_LEVEL": "INFO",
        }
        self.process = None

    def start(self) -> None:
        self.log_path.write_text("")
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run_embedded", "--noreload", "--skip-checks", f"127.0.0.1:{self.port}"],
                cwd=ROOT, env=self.environ, stdout=log, stderr=subprocess.STDOUT,
            )
        wait_until_listening(self.port, self.process, self.log_path)
        wait_until_listening(self.ami.port, self.process, self.log_path)
        wait_until_logged(": connected to Asterisk", self.process, self.log_path)  # the listener hears calls from now on

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # a loaded machine; the next test needs the port and the database
            self.process.kill()
            self.process.wait(timeout=15)

    def outcome(self, *, ring: float, talk: float, **outcomes: str) -> None:
        """How the simulator plays click-to-calls from now on (SimOutcome: extension=…, outcome=… for the legs)."""
        ami = AMIConnection(self.ami)
        ami.connect()
        ami.login()
        ami.send_action({"Action": "SimOutcome", "Exten": "*", "Ring": ring, "Talk": talk, **outcomes})
        ami.close()

    def ring(self, caller: str, *, extensions: str = "100", scenario: str = "inbound_answered", ring: float = 2, talk: float = 3) -> str:
        """A call from `caller` to the extensions, through the simulator's SimCall action."""
        ami = AMIConnection(self.ami)
        ami.connect()
        ami.login()
        response = ami.send_action({"Action": "SimCall", "Scenario": scenario, "Caller": caller, "Extensions": extensions, "Ring": ring, "Talk": talk})
        ami.close()
        return response.get_header("Linkedid")


@pytest.fixture
def stack(transactional_db, tmp_path):
    with Stack(tmp_path) as running:
        yield running


def wait_until_logged(text: str, process, log_path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the stack never logged {text!r}: {log_path.read_text()[-2000:]}")
        time.sleep(0.1)


def wait_until_listening(port: int, process, log_path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the stack exited: {log_path.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}: {log_path.read_text()[-2000:]}")


@pytest.fixture
def stack_page(browser, stack):
    with browser_page(browser, stack.url, 1280, 1000) as page:
        yield page
