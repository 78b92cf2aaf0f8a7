"""How daphne runs Django's views (simplecalls/web.py): a few long-lived threads, each request wholly in one of them.

The views below are served through `WebHandler` as daphne hands requests over; this module is their URLconf.
"""

import asyncio
import contextvars
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import HttpCommunicator
from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from django.urls import path
from django.utils import translation

from simplecalls.env import database_url
from simplecalls.web import WebHandler, serving_loop
from telephony import realtime
from telephony.management.commands.bench_failover import free_port, port_open
from tests.conftest import needs


class Seen:
    """What the views saw: how many ran at once, in which threads, and the loop async_to_sync reached."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running = self.most = self.finished = 0
        self.threads: set[int] = set()
        self.loop = None
        self.release = threading.Event()


seen = Seen()


def slow(request):
    with seen.lock:
        seen.running += 1
        seen.most = max(seen.most, seen.running)
        seen.threads.add(threading.get_ident())
    seen.release.wait(5)
    with seen.lock:
        seen.running -= 1
        seen.finished += 1
    return HttpResponse("done")


def language(request):
    return HttpResponse(translation.get_language())


MARK = contextvars.ContextVar("mark", default="unset")


def mark(request):
    MARK.set("set by the request before")
    return HttpResponse("marked")


def read_mark(request):
    return HttpResponse(MARK.get())


async def running_loop():
    return asyncio.get_running_loop()


def live(request):
    seen.loop = async_to_sync(running_loop)()  # as a view sending live messages does
    return HttpResponse("sent")


def push(request):
    seen.loop = serving_loop()
    realtime.send_many([(4242, {"type": "test.pushed", "text": "hello"})])
    return HttpResponse("pushed")


urlpatterns = [path("slow/", slow), path("language/", language), path("live/", live), path("push/", push), path("mark/", mark), path("read-mark/", read_mark)]


@pytest.fixture(autouse=True)
def views_here(settings):
    global seen
    settings.ROOT_URLCONF = __name__
    seen = Seen()


async def get(handler, url, headers=()):
    response = await HttpCommunicator(handler, "GET", url, headers=[(b"host", b"testserver"), *headers]).get_response(timeout=10)
    return response["status"], response["body"].decode()


async def test_requests_beyond_the_threads_wait_their_turn_and_each_is_served():
    handler = WebHandler(threads=2)
    requests = [asyncio.create_task(get(handler, "/slow/")) for _ in range(6)]
    await asyncio.sleep(0.3)
    assert seen.running == 2  # the other four wait before Django, holding nothing
    seen.release.set()
    assert await asyncio.gather(*requests) == [(200, "done")] * 6
    assert seen.most == 2 and len(seen.threads) == 2


async def test_a_client_gone_away_frees_its_thread_only_once_the_view_is_done():
    handler = WebHandler(threads=1)
    gone = asyncio.create_task(get(handler, "/slow/"))
    await asyncio.sleep(0.2)
    gone.cancel()  # as daphne cancels the application when the client disconnects
    waiting = asyncio.create_task(get(handler, "/language/"))
    await asyncio.sleep(0.3)
    assert not waiting.done() and seen.running == 1  # the one thread is still the first request's
    seen.release.set()
    assert await waiting == (200, "ru")
    assert seen.finished == 1


async def test_nothing_a_request_leaves_in_its_context_reaches_the_next_one_in_the_same_thread():
    handler = WebHandler(threads=1)
    assert await get(handler, "/mark/") == (200, "marked")
    assert await get(handler, "/read-mark/") == (200, "unset")
    assert await get(handler, "/language/", [(b"cookie", b"django_language=en")]) == (200, "en")
    assert await get(handler, "/language/") == (200, "ru")


async def test_a_view_reaches_the_servers_loop_through_async_to_sync():
    assert await get(WebHandler(threads=1), "/live/") == (200, "sent")
    assert seen.loop is asyncio.get_running_loop()


async def test_a_request_that_waits_too_long_for_a_thread_is_told_the_server_is_busy():
    handler = WebHandler(threads=1)
    handler.wait_seconds = 0.3
    held = asyncio.create_task(get(handler, "/slow/"))  # a view that does not end, as on a database that stopped answering
    await asyncio.sleep(0.1)
    status, body = await get(handler, "/language/")
    assert status == 503 and "busy" in body
    seen.release.set()
    assert await held == (200, "done")
    assert await get(handler, "/language/") == (200, "ru")  # the thread is free again


async def test_a_views_live_messages_are_handed_to_the_servers_loop_and_arrive():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(realtime.operator_group(4242), channel)
    assert await get(WebHandler(threads=1), "/push/") == (200, "pushed")
    assert seen.loop is asyncio.get_running_loop()
    message = await asyncio.wait_for(layer.receive(channel), 5)
    assert message["text"] == "hello"
    await layer.group_discard(realtime.operator_group(4242), channel)


@pytest.mark.django_db
def test_through_daphne_on_a_pool_a_burst_and_dropped_sessions_cost_no_request():
    """Daphne as production runs it: more requests at once than threads and pooled connections, then every
    connection of the pool terminated by the server; each request still reads the database."""
    needs(connection.vendor == "postgresql", "the pool is PostgreSQL's")
    port = free_port()
    environ = os.environ | {
        "DATABASE_URL": database_url(connection.settings_dict), "DATABASE_POOL_SIZE": "2", "WEB_THREADS": "8",
        "DJANGO_SETTINGS_MODULE": "simplecalls.settings.base", "DEBUG": "1", "ALLOWED_HOSTS": "127.0.0.1",
    }
    daphne = subprocess.Popen([sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port), "simplecalls.asgi:application"],
                              env=environ, cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not port_open(port):
            assert daphne.poll() is None and time.monotonic() < deadline, "daphne did not start"
            time.sleep(0.1)

        def database_answers(_=None) -> bool:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30).read()
            except urllib.error.HTTPError as error:  # 503: no listener runs here
                body = error.read()
            return json.loads(body)["database"]["status"] == "ok"

        with ThreadPoolExecutor(20) as burst:
            assert all(burst.map(database_answers, range(40)))
        with connection.cursor() as cursor:  # every session the web process holds, as a restarted server would
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        with ThreadPoolExecutor(20) as burst:
            assert all(burst.map(database_answers, range(40)))
    finally:
        daphne.terminate()
        daphne.wait(timeout=15)


def test_the_server_leaves_what_it_loaded_at_start_out_of_the_collectors_passes():
    script = "import gc, simplecalls.asgi; assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()"
    subprocess.run([sys.executable, "-c", script], check=True, cwd=settings.BASE_DIR, env=os.environ | {"DJANGO_SETTINGS_MODULE": "simplecalls.settings.test"})
