"""Smart transfer as the dialplan plays it: ask SimpleCalls over HTTP, as Asterisk's CURL() does, then dial.

`inbound_smart` follows deploy/asterisk/extensions.conf: before ringing anyone the trunk channel
asks the caller-ID endpoint for the caller's name and sets CALLERID(name) when there is one (a
`NewCallerid` event; every later snapshot carries the name), then asks the route endpoint which
extension to dial and dials it — or, with an empty or unusable answer, the call's own Extensions,
the normal route. Only the first ask is played: the simulated extension always answers. Like CURL(), the body counts whatever the status, trailing blanks
are trimmed, and a failure or a timeout is an empty answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from .calls import Call, Engine
from .pbx import Channel
from .scenarios import DID, INBOUND_CONTEXT, inbound

log = logging.getLogger(__name__)

SMART_SCENARIOS = ("inbound_smart",)
# What the dialplan accepts as an extension to dial (the snippet's REGEX); anything else is the normal route.
EXTENSION = re.compile(r"[0-9A-Za-z*#_-]{1,20}")
MAX_BODY = 4096
# What the snippet takes for an error page rather than a name.
NOT_A_NAME = re.compile(r"[<>]")


@dataclass(frozen=True)
class DialplanHttp:
    """Where the dialplan asks: the endpoints' base URL (`http://host:port/telephony/dialplan/`) and the token."""

    url: str
    token: str = ""
    timeout: float = 2.0  # CURLOPT(httptimeout) in the snippet

    def endpoint(self, name: str, params: Mapping[str, str]) -> str:
        query = urlencode({**params, "token": self.token} if self.token else params)
        return f"{self.url.rstrip('/')}/{name}?{query}"


async def http_get(url: str, timeout: float) -> str:
    """The response body of a GET, as CURL() gives it to the dialplan; "" on any failure or after `timeout`."""
    try:
        return await asyncio.wait_for(_get(url), timeout)
    except Exception as error:  # CURL() logs a warning and the variable stays empty
        log.warning("dialplan HTTP %s failed: %r", url.split("?")[0], error)
        return ""


async def _get(url: str) -> str:
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or (443 if secure else 80), ssl=secure or None)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        # HTTP/1.0: the body ends with the connection, never chunked.
        writer.write(f"GET {target} HTTP/1.0\r\nHost: {parts.netloc}\r\nUser-Agent: asterisk-libcurl-agent/1.0\r\n\r\n".encode("ascii"))
        response = b""
        while len(response) < MAX_BODY + 16384 and (chunk := await reader.read(8192)):
            response += chunk
    finally:
        writer.close()
    _, _, body = response.partition(b"\r\n\r\n")
    return body[:MAX_BODY].decode("utf-8", errors="replace").rstrip()


async def ask(engine: Engine, trunk: Channel, http: DialplanHttp | None, endpoint: str, params: Mapping[str, str], variable: str) -> str:
    """`Set(<variable>=${CURL(…/<endpoint>?…)})` on the trunk channel: Newexten, the request, VarSet."""
    pbx = engine.pbx
    pbx.new_exten(trunk, INBOUND_CONTEXT, DID, "Set", f"{variable}=${{CURL(${{SIMPLECALLS_URL}}/{endpoint}?…)}}")
    value = await http_get(http.endpoint(endpoint, params), http.timeout) if http else ""
    if trunk.alive:
        pbx.set_var(trunk, variable, value)
    return value


def set_caller_name(engine: Engine, trunk: Channel, name: str) -> None:
    """`Set(CALLERID(name)=…)`: Asterisk announces the change with NewCallerid."""
    pbx = engine.pbx
    pbx.new_exten(trunk, INBOUND_CONTEXT, DID, "Set", f"CALLERID(name)={name}")
    trunk.caller_name = name
    trunk.changed()
    pbx.emit("NewCallerid", "call", pbx.snapshot(trunk) + "CID-CallingPres: 0 (Presentation Allowed, Not Screened)\r\n")


async def inbound_smart(
    engine: Engine,
    call: Call,
    trunk: Channel,
    *,
    http: DialplanHttp | None,
    extensions: Sequence[str],
    ring: float,
    talk: float,
    endpoints: Mapping[str, str] | None = None,
) -> None:
    caller = trunk.caller_num
    name = await ask(engine, trunk, http, "callerid", {"number": caller}, "SIMPLECALLS_NAME")
    if name and not NOT_A_NAME.search(name) and trunk.alive:
        set_caller_name(engine, trunk, name)
    target = await ask(engine, trunk, http, "route", {"number": caller, "did": DID, "call": call.linkedid, "attempt": "0"}, "SIMPLECALLS_ROUTE")
    if not trunk.alive:
        return
    dial = [target] if EXTENSION.fullmatch(target) else list(extensions)
    await inbound(engine, call, trunk, "inbound_answered", extensions=dial, ring=ring, talk=talk, endpoints=endpoints)
