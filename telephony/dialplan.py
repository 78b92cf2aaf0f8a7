"""The endpoints the PBX's dialplan asks with CURL() before it rings anyone (deploy/asterisk/extensions.conf).

    GET /telephony/dialplan/route?number=…&did=…[&call=<linkedid>][&attempt=N]   → an extension, or nothing
    GET /telephony/dialplan/callerid?number=…[&ascii=1]                          → a name, or nothing

No session: the token DIALPLAN_TOKEN comes as the header X-Dialplan-Token or the parameter `token`
(none configured: every request is refused), optionally only from DIALPLAN_ALLOWED_IPS. Answers are
plain text with no line end. A refusal has an empty body too, because CURL() hands the dialplan the
body whatever the status (docs/pbx.md §10): nothing but an answer may ever look like one.
"""

import hmac
import ipaddress
import logging

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_GET

from telephony.transfer import callerid_lookup, route_decide

log = logging.getLogger(__name__)


def plain(text: str = "", status: int = 200) -> HttpResponse:
    return HttpResponse(text, content_type="text/plain; charset=utf-8", status=status)


def dialplan_allowed(request) -> bool:
    """The token is right (compared in constant time) and the address is allowed."""
    token = settings.DIALPLAN_TOKEN
    if not token:
        return False
    networks = settings.DIALPLAN_ALLOWED_IPS
    if networks and not address_in(request.META.get("REMOTE_ADDR", ""), networks):
        return False
    given = request.headers.get("X-Dialplan-Token") or request.GET.get("token", "")
    return hmac.compare_digest(given.encode(), token.encode())


def address_in(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def number_of(request, name: str) -> str:
    return request.GET.get(name, "").strip()[:64]


@require_GET
def route(request):
    """The extension to ring for this caller: their manager's, a fallback step's, or empty for the normal route."""
    if not dialplan_allowed(request):
        return plain(status=403)
    try:
        attempt = request.GET.get("attempt", "0")
        decision = route_decide(
            number=number_of(request, "number"), did=number_of(request, "did"), linkedid=request.GET.get("call", "").strip(),
            attempt=int(attempt) if attempt.isascii() and attempt.isdigit() else 0, budget_ms=settings.DIALPLAN_BUDGET_MS,
        )
        return plain(decision.extension)
    except Exception:  # fail open: the dialplan's normal route
        log.exception("smart transfer: the route answered empty")
        return plain()


@require_GET
def callerid(request):
    """The caller's short name («Савицкая Н.Г.»; `ascii=1`: "Savitskaia N.G."), empty when there is no one client to name."""
    if not dialplan_allowed(request):
        return plain(status=403)
    try:
        return plain(callerid_lookup(
            number=number_of(request, "number"), ascii=request.GET.get("ascii", "") in ("1", "yes", "true"),
            budget_ms=settings.DIALPLAN_BUDGET_MS, max_length=settings.CALLERID_MAX_LENGTH,
        ))
    except Exception:
        log.exception("caller-ID name answered empty")
        return plain()
