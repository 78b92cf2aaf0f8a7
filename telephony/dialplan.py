"""The endpoints the PBX's dialplan asks with CURL() before it rings anyone (deploy/asterisk/extensions.conf).

    GET /telephony/dialplan/route?number=…&did=…[&call=<linkedid>][&attempt=N]   → an extension, or nothing
    GET /telephony/dialplan/callerid?number=…[&ascii=1]                          → a name, or nothing

No session: the token DIALPLAN_TOKEN comes as the header X-Dialplan-Token or the parameter `token`
(none configured: every request is refused), optionally only from DIALPLAN_ALLOWED_IPS. Answers are
plain text with no line end. A refusal has an empty body too, because CURL() hands the dialplan the
body whatever the status (docs/pbx.md §10): nothing but an answer may ever look like one.

Daphne reaches them through `dialplan_in_front` (simplecalls/asgi.py), past Django's request cycle;
the views below serve the test client and `runserver`. Both run the same answer functions.
"""

import hmac
import ipaddress
import logging
import time
from urllib.parse import parse_qsl

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http import HttpResponse
from django.views.decorators.http import require_GET

from telephony.transfer import callerid_lookup, route_decide

log = logging.getLogger(__name__)


def allowed(given: str, address: str) -> bool:
    """The token is right (compared in constant time) and the address is allowed."""
    token = settings.DIALPLAN_TOKEN
    if not token:
        return False
    networks = settings.DIALPLAN_ALLOWED_IPS
    if networks and not address_in(address, networks):
        return False
    return hmac.compare_digest(given.encode(), token.encode())


def address_in(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def number_of(query, name: str) -> str:
    return query.get(name, "").strip()[:64]


def route_answer(query, started: float | None = None) -> str:
    """The extension to ring for this caller: their manager's, a fallback step's, or empty for the normal route."""
    try:
        attempt = query.get("attempt", "0")
        return route_decide(
            number=number_of(query, "number"), did=number_of(query, "did"), linkedid=query.get("call", "").strip(),
            attempt=int(attempt) if attempt.isascii() and attempt.isdigit() else 0, budget_ms=settings.DIALPLAN_BUDGET_MS,
            started=started,
        ).extension
    except Exception:  # fail open: the dialplan's normal route
        log.exception("smart transfer: the route answered empty")
        return ""


def callerid_answer(query, started: float | None = None) -> str:
    """The caller's short name («Савицкая Н.Г.»; `ascii=1`: "Savitskaia N.G."), empty when there is no one client to name."""
    try:
        return callerid_lookup(
            number=number_of(query, "number"), ascii=query.get("ascii", "") in ("1", "yes", "true"),
            budget_ms=settings.DIALPLAN_BUDGET_MS, max_length=settings.CALLERID_MAX_LENGTH, started=started,
        )
    except Exception:
        log.exception("caller-ID name answered empty")
        return ""


# Django's views: what the test client and a plain `runserver` reach.

def plain(text: str = "", status: int = 200) -> HttpResponse:
    return HttpResponse(text, content_type="text/plain; charset=utf-8", status=status)


def dialplan_allowed(request) -> bool:
    return allowed(request.headers.get("X-Dialplan-Token") or request.GET.get("token", ""), request.META.get("REMOTE_ADDR", ""))


@require_GET
def route(request):
    return plain(route_answer(request.GET)) if dialplan_allowed(request) else plain(status=403)


@require_GET
def callerid(request):
    return plain(callerid_answer(request.GET)) if dialplan_allowed(request) else plain(status=403)


# The fast path: daphne hands these two paths straight to `dialplan_asgi`, past Django's request cycle
# (middleware, URL resolving, the one thread sync views share), which cost more than the lookup itself.

ANSWERS = {"/telephony/dialplan/route": route_answer, "/telephony/dialplan/callerid": callerid_answer}
MAX_QUERY = 4096  # bytes; a dialplan's ask is under 300


def dialplan_in_front(django_app):
    """An ASGI app answering the dialplan's two paths itself and passing everything else to `django_app`."""

    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["path"] in ANSWERS:
            await dialplan_asgi(scope, send)
        else:
            await django_app(scope, receive, send)

    return app


async def dialplan_asgi(scope, send) -> None:
    """The views' answers; every refusal (403, 405, and 400 for what no dialplan sends) with an empty body."""
    arrived = time.perf_counter()  # the budget counts from here, waiting for a free thread included
    if scope["method"] != "GET":
        return await respond(send, 405, extra=[(b"allow", b"GET")])
    raw = scope.get("query_string", b"")
    if len(raw) > MAX_QUERY:
        return await respond(send, 400)
    # As Django reads a query: UTF-8, anything undecodable replaced, the last of repeated names kept.
    query = dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True, errors="replace"))
    if any("\x00" in key or "\x00" in value for key, value in query.items()):  # PostgreSQL text cannot hold a NUL
        return await respond(send, 400)
    given = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"x-dialplan-token"), "")
    client = scope.get("client") or ("", 0)
    if not allowed(given or query.get("token", ""), client[0]):
        return await respond(send, 403)
    text = await sync_to_async(answer_in_thread, thread_sensitive=False)(ANSWERS[scope["path"]], query, arrived)
    await respond(send, 200, text.encode())


def answer_in_thread(answer, query, arrived: float) -> str:
    """`answer(query)` with the database connection handled as Django's request cycle does, before and after."""
    close_old_connections()
    try:
        return answer(query, arrived)
    finally:
        close_old_connections()


async def respond(send, status: int, body: bytes = b"", extra=()) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
