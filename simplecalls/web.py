"""How Daphne runs Django's HTTP side: a few long-lived threads per process, each request wholly in one of them.

Django's own ASGI handler gives every request a new thread, runs the middleware that can be asynchronous in the
event loop and the rest, and the view, in that thread: a request crosses between the loop and its thread a dozen
times, each crossing waiting for a loop that also serves hundreds of operators' sockets; and it starts every request
at once, each holding a pooled database connection from its first query to its end and competing for the one
interpreter, so that past the pool's size requests fail after its 10-second timeout. Measured with bench_load
(deploy/README.md) on 2 cores at 50 calls/s, every pop-up loading its form: 2,736 of 6,000 requests failed with
Django's handler, none with this one.

`WebHandler` instead runs the whole middleware chain and the view as WSGI would, in one of `threads` threads kept
for the process's life (each keeps its database wrapper; the pooled connection goes back at the request's end).
Requests beyond them wait here, in order of arrival, which costs nothing while it lasts: a burst of calls is served
a little later rather than refused; one that finds no thread free for `wait_seconds` (every thread held by a request
that does not end) is answered 503. Reading the request and sending the response stay in the loop, as in Django's
handler, so a slow client or a recording being streamed holds no thread.
"""

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponse
from django.urls import set_script_prefix

logger = logging.getLogger(__name__)

BUSY = "The server is busy: try again in a few seconds."


serving: asyncio.AbstractEventLoop | None = None  # the loop the handler serves requests on, once it has served one


def serving_loop() -> asyncio.AbstractEventLoop | None:
    """The loop this process serves requests on (daphne's), for a view to hand it work without waiting; None elsewhere."""
    return serving if serving is not None and serving.is_running() else None


class WebHandler(ASGIHandler):
    # A request that waits longer than this for a thread gets 503 "busy": every thread is held by a request that does
    # not end (a database that stopped answering), and a clear refusal beats a browser left waiting.
    wait_seconds = 20.0

    def __init__(self, threads: int):
        super().__init__()
        self.threads = threads
        self.loop = self.idle = None  # the server's loop, and the threads waiting for a request in it

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)  # the synchronous chain, as under WSGI

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        if self.loop is not asyncio.get_running_loop():  # the first request (tests run a loop each, one after another)
            global serving
            serving = self.loop = asyncio.get_running_loop()
            self.idle = asyncio.Queue()
            for _ in range(self.threads):
                self.idle.put_nowait(ThreadPoolExecutor(1, thread_name_prefix="web"))
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        idle = self.idle
        try:
            thread = await asyncio.wait_for(idle.get(), self.wait_seconds)
        except asyncio.CancelledError:  # the client went away while waiting
            body_file.close()
            raise
        except TimeoutError:
            body_file.close()
            logger.error("%s %s: no thread free for %.0f s; answered 503", scope["method"], scope["path"][:200], self.wait_seconds)
            await self.send_response(HttpResponse(BUSY, status=503, content_type="text/plain; charset=utf-8", headers={"Retry-After": "5"}), send)
            return
        served = asyncio.ensure_future(self.serve(thread, scope, body_file, send))
        served.add_done_callback(lambda _: (idle.put_nowait(thread), body_file.close()))
        # A client that goes away stops the waiting, not the request: its thread comes back once the view is done.
        await asyncio.shield(served)

    async def serve(self, thread, scope, body_file, send) -> None:
        # Through sync_to_async, as Django's handler: each request in a copy of the loop's context, and the loop at
        # hand for async_to_sync (the live messages a view sends).
        in_thread = functools.partial(sync_to_async, thread_sensitive=False, executor=thread)
        response = await in_thread(self.respond)(scope, body_file)
        try:
            await self.send_response(response, send)
        finally:  # request_finished, in the request's thread: its database connection goes back to the pool
            await in_thread(response.close)()

    def respond(self, scope, body_file):
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            return error_response
        response = self.get_response(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        return response


def pool_size() -> int | None:
    """The web process's database pool (DATABASE_POOL_SIZE), or None without one (each request its own connection)."""
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    return pool.get("max_size") if isinstance(pool, dict) else None
