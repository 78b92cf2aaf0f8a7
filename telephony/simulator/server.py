"""The TCP side: the Simulator object, one Session per AMI connection, event fan-out."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence

from . import protocol
from .actions import handle
from .calls import Call, Engine
from .dialplan import SMART_SCENARIOS, DialplanHttp, inbound_smart
from .groups import GROUP_SCENARIOS, inbound_queue, inbound_ring_group
from .outbound import OUTBOUND_SCENARIOS, outbound, outbound_channel
from .pbx import Pbx
from .protocol import EVENT_CLASSES, FrameParser, Request
from .scenarios import INBOUND_SCENARIOS, inbound, inbound_channel

SCENARIOS = INBOUND_SCENARIOS + GROUP_SCENARIOS + OUTBOUND_SCENARIOS + SMART_SCENARIOS

log = logging.getLogger(__name__)

AUTH_TIMEOUT = 30.0  # manager.conf authtimeout; real seconds, not scaled, so slow clients still log in
AUTH_LIMIT = 50  # manager.conf authlimit: unauthenticated sessions allowed at once
# A client that stops reading is cut off past this much unsent output, instead of
# growing the simulator's memory without bound (Asterisk drops it after writetimeout).
MAX_PENDING_OUTPUT = 64 * 1024 * 1024


class Session(asyncio.Protocol):
    """One AMI connection. Actions run one after another, as in Asterisk's session thread."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self.authenticated = False
        self.event_mask = protocol.ALL_EVENTS
        self.challenge = ""
        self.transport: asyncio.Transport | None = None
        self._parser = FrameParser()
        self._requests: asyncio.Queue[Request] = asyncio.Queue()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._worker: asyncio.Task[None] | None = None
        self._auth_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.simulator.unauthenticated_count() >= AUTH_LIMIT:
            transport.close()
            return
        self.simulator.sessions.add(self)
        transport.write(protocol.BANNER)
        loop = asyncio.get_running_loop()
        self._worker = loop.create_task(self._serve())
        self._auth_timer = loop.call_later(AUTH_TIMEOUT, self._auth_expired)

    def data_received(self, data: bytes) -> None:
        on_action = self.simulator.on_action
        for request in self._parser.feed(data):
            if on_action is not None:
                on_action(request)
            self._requests.put_nowait(request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.simulator.sessions.discard(self)
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        if self._worker is not None:
            self._worker.cancel()
        self._out.clear()

    # -- output ----------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue bytes; everything queued in one loop iteration goes out in one write."""
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        transport = self.transport
        if not self._out or transport is None or transport.is_closing():
            self._out.clear()
            return
        transport.write(b"".join(self._out))
        self._out.clear()
        if transport.get_write_buffer_size() > self.simulator.max_pending_output:
            log.warning("AMI client is not reading; dropping it")
            transport.abort()

    def close(self) -> None:
        """Send what is queued, then close, as after Logoff or a failed Login."""
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- actions ---------------------------------------------------------------------------

    async def _serve(self) -> None:
        while True:
            request = await self._requests.get()
            try:
                keep_open = await handle(self, request)
            except Exception:
                log.exception("AMI action failed")
                self.send(protocol.response(request, "Error", "Internal error"))
                keep_open = True
            if not keep_open:
                self.close()
                return

    def logged_in(self) -> None:
        self.authenticated = True
        if self._auth_timer is not None:
            self._auth_timer.cancel()

    def _auth_expired(self) -> None:
        if not self.authenticated:
            self.close()


class Simulator:
    """An AMI server that behaves like Asterisk 18 and plays scripted calls.

    `on_action`, when given, is called on the event loop with every request (a `protocol.Request`)
    as it arrives, before its session handles it: benchmarks time when an Originate reached the PBX.
    It must be quick and must not raise.

    `dialplan_url` (the smart-transfer endpoints' base, `http://host:port/telephony/dialplan/`) and
    `dialplan_token` are where the `inbound_smart` scenario's dialplan asks; without a URL it takes
    the normal route, as a dialplan whose CURL() failed would.

    `read_classes` and `write_classes` are the user's `read=` and `write=` of manager.conf
    (`call,dialplan`, `originate,reporting`; default `all`): an action of a class the user may not
    write is answered `Permission denied` before its headers are read, and events of a class the
    user may not read are never sent, whatever the Login's `Events:` asks (docs/pbx.md §2).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 5038,
        username: str = "admin",
        secret: str = "admin",
        cdr_csv: str | None = None,
        recordings_dir: str | None = None,
        chanvariables: list[str] | None = None,
        time_scale: float = 1.0,
        endpoints: Mapping[str, str] | None = None,
        on_action: Callable[[Request], None] | None = None,
        dialplan_url: str | None = None,
        dialplan_token: str = "",
        read_classes: str = "all",
        write_classes: str = "all",
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.secret = secret
        self.read_mask = max(protocol.strings_to_mask(read_classes), 0)
        self.write_mask = max(protocol.strings_to_mask(write_classes), 0)
        self.time_scale = time_scale
        self.sessions: set[Session] = set()
        self.on_action = on_action
        self.dialplan = DialplanHttp(dialplan_url, dialplan_token) if dialplan_url else None
        self.pbx = Pbx(self._broadcast, chanvariables)
        self.engine = Engine(
            self.pbx, time_scale=time_scale, recordings_dir=recordings_dir, cdr_csv=cdr_csv, endpoints=endpoints,
        )
        self.started_at = time.time()
        self.max_pending_output = MAX_PENDING_OUTPUT
        self._server: asyncio.AbstractServer | None = None

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Session(self), self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.started_at = time.time()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.abort()
        await self.engine.cancel_all()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    # -- sessions --------------------------------------------------------------------------

    def _broadcast(self, category: str, data: bytes) -> None:
        bit = EVENT_CLASSES[category]
        for session in self.sessions:
            if session.authenticated and session.event_mask & bit:
                session.send(data)

    def may_write(self, authority: int) -> bool:
        """Whether the user may run an action needing `authority` (any one of its classes will do, as in manager.c)."""
        return authority == 0 or bool(self.write_mask & authority)

    def unauthenticated_count(self) -> int:
        return sum(1 for session in self.sessions if not session.authenticated)

    def credentials_ok(self, session: Session, request: Request) -> bool:
        if request.get("username").lower() != self.username.lower():
            return False
        if request.get("authtype").lower() == "md5":
            if not session.challenge:
                return False
            expected = hashlib.md5((session.challenge + self.secret).encode()).hexdigest()
            return request.get("key") == expected
        return request.get("secret") == self.secret

    def inject_raw(self, data: bytes) -> None:
        """Write raw bytes to every logged-in session (tests: garbage and oversized frames)."""
        for session in self.sessions:
            if session.authenticated:
                session.send(data)

    async def drop_connections(self, *, keep: Session | None = None) -> int:
        """Close client sockets abruptly, without Logoff (tests: reconnecting)."""
        dropped = [session for session in self.sessions if session is not keep]
        for session in dropped:
            session.abort()
        await asyncio.sleep(0)
        return len(dropped)

    # -- calls -----------------------------------------------------------------------------

    def start_call(
        self,
        scenario: str,
        *,
        caller: str = "74957894561",
        caller_name: str = "",
        extensions: Sequence[str] = ("100",),
        ring: float = 1.0,
        talk: float = 2.0,
        busy: Collection[str] = (),
        endpoints: Mapping[str, str] | None = None,
    ) -> Call:
        """Start a scripted call (see the package docstring for the scenarios); `endpoints` adds to the simulator's."""
        if scenario not in SCENARIOS:
            raise ValueError(f"Unknown scenario: {scenario}")
        if not extensions:
            raise ValueError("At least one extension is needed")
        engine = self.engine
        phones = {**engine.endpoints, **(endpoints or {})}
        call = engine.new_call()
        script: Coroutine[object, object, None]
        if scenario in OUTBOUND_SCENARIOS:
            phone = outbound_channel(engine, call, extensions[0], caller, phones)
            script = outbound(engine, call, phone, ring_seconds=ring, talk=talk)
        elif scenario in SMART_SCENARIOS:
            trunk = inbound_channel(engine, call, caller, caller_name)
            script = inbound_smart(
                engine, call, trunk, http=self.dialplan, extensions=list(extensions), ring=ring, talk=talk, endpoints=phones,
            )
        elif scenario in GROUP_SCENARIOS:
            trunk = inbound_channel(engine, call, caller, caller_name)
            play = inbound_ring_group if scenario == "inbound_ring_group" else inbound_queue
            script = play(
                engine, call, trunk, extensions=list(extensions), busy=set(busy), endpoints=phones,
                ring_seconds=ring, talk=talk,
            )
        else:
            trunk = inbound_channel(engine, call, caller, caller_name)
            script = inbound(
                engine, call, trunk, scenario, extensions=list(extensions), ring=ring, talk=talk, endpoints=phones,
            )
        return engine.launch(call, script)

    async def call(
        self,
        scenario: str,
        *,
        caller: str = "74957894561",
        caller_name: str = "",
        extensions: Sequence[str] = ("100",),
        ring: float = 1.0,
        talk: float = 2.0,
        busy: Collection[str] = (),
        endpoints: Mapping[str, str] | None = None,
        wait: bool = True,
    ) -> str:
        """Play one call and return its Linkedid; by default once the call has ended."""
        call = self.start_call(
            scenario, caller=caller, caller_name=caller_name, extensions=extensions, ring=ring, talk=talk,
            busy=busy, endpoints=endpoints,
        )
        if wait:
            await call.wait()
        return call.linkedid

    async def load(
        self,
        *,
        rate: float,
        seconds: float,
        scenario: str = "inbound_answered",
        extensions: Sequence[str] = ("100",),
        ring: float = 1.0,
        talk: float = 2.0,
        wait: bool = True,
    ) -> int:
        """Start `rate` calls per second for `seconds` (wall-clock, not scaled); return the count.

        Callers are numbered 74950000000, 74950000001, … With `wait`, return once every
        call has ended; otherwise as soon as the last one has started.
        """
        total = max(int(round(rate * seconds)), 0)
        loop = asyncio.get_running_loop()
        begin = loop.time()
        calls: list[Call] = []
        while len(calls) < total:
            due = min(total, int((loop.time() - begin) * rate) + 1)
            while len(calls) < due:
                calls.append(self.start_call(
                    scenario, caller=f"7495{len(calls) % 10_000_000:07d}",
                    extensions=extensions, ring=ring, talk=talk,
                ))
            if len(calls) < total:
                await asyncio.sleep(max(begin + len(calls) / rate - loop.time(), 0.0))
        if wait:
            await asyncio.gather(*(call.wait() for call in calls))
        return len(calls)
