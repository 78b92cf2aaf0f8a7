"""Running calls: their timers, hang-up requests, recordings, CDR rows and outcomes."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from . import wav
from .cdr import Cdr, CdrWriter, clid
from .pbx import Channel, Pbx

OUTCOMES = ("answered", "no_answer", "busy", "failed")
DEFAULT_MONITOR_DIR = "/var/spool/asterisk/monitor"


@dataclass(frozen=True)
class Outcome:
    """What happens to an originate: `extension` for the operator leg, `outside` for the number."""

    extension: str = "answered"
    outside: str = "answered"
    ring: float = 1.0
    talk: float = 2.0


class Call:
    """A call in progress. Scenarios await `sleep`, which a Hangup request cuts short."""

    def __init__(self, linkedid: str, time_scale: float) -> None:
        self.linkedid = linkedid
        self.time_scale = time_scale
        self.hangup_channel: str | None = None
        self.hangup_cause = 16
        self.task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[bool] | None = None

    @property
    def hangup_requested(self) -> bool:
        return self.hangup_channel is not None

    def request_hangup(self, channel: str, cause: int) -> None:
        if self.hangup_channel is None:
            self.hangup_channel, self.hangup_cause = channel, cause
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(True)

    async def sleep(self, seconds: float) -> bool:
        """Wait `seconds` (scaled); return True if a hang-up was requested meanwhile."""
        if self.hangup_requested:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        # A bare call_later on a future is far cheaper than wait_for() under load.
        handle = loop.call_later(max(seconds, 0.0) * self.time_scale, _resolve, waiter)
        try:
            return await waiter
        finally:
            handle.cancel()
            self._waiter = None

    async def wait(self) -> None:
        if self.task is not None:
            await asyncio.shield(self.task)


def _resolve(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class Engine:
    """Shared state of all calls: the PBX, outcomes per dialled number, recordings and CDRs."""

    def __init__(
        self,
        pbx: Pbx,
        *,
        time_scale: float,
        recordings_dir: str | None,
        cdr_csv: str | None,
        endpoints: Mapping[str, str] | None = None,
    ) -> None:
        self.pbx = pbx
        # Extension -> the endpoint its phone is dialled on (`106` -> `PJSIP/hg63xv`); PJSIP/<ext> otherwise.
        self.endpoints = dict(endpoints or {})
        self.time_scale = time_scale
        self.recordings_dir = Path(recordings_dir).resolve() if recordings_dir else None
        self.cdr = CdrWriter(cdr_csv) if cdr_csv else None
        self.calls: dict[str, Call] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.outcomes: dict[str, Outcome] = {"*": Outcome()}
        # Outside number -> the DTMF digits it has been sent after answering (SimDTMF reads it).
        self.dtmf_received: dict[str, str] = {}
        self._cdr_sequence = itertools.count(0)

    # -- call registry ---------------------------------------------------------------------

    def new_call(self) -> Call:
        return Call("", self.time_scale)

    def attach(self, call: Call, first: Channel) -> None:
        """Name the call after its first channel, as Asterisk's Linkedid does."""
        call.linkedid = first.uniqueid
        self.calls[call.linkedid] = call

    def launch(self, call: Call, coroutine: Coroutine[object, object, None]) -> Call:
        task = asyncio.ensure_future(self._run(call, coroutine))
        call.task = task
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return call

    async def _run(self, call: Call, coroutine: Coroutine[object, object, None]) -> None:
        try:
            await coroutine
        finally:
            if call.linkedid:
                self.calls.pop(call.linkedid, None)

    def request_hangup(self, channel: str, cause: int = 16) -> bool:
        chan = self.pbx.channels.get(channel)
        if chan is None:
            return False
        call = self.calls.get(chan.linkedid)
        if call is not None:
            call.request_hangup(channel, cause)
        else:
            self.pbx.hangup(chan, cause)
        return True

    async def cancel_all(self) -> None:
        tasks = [task for task in self.tasks if not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- outcomes --------------------------------------------------------------------------

    def set_outcome(
        self,
        number: str,
        *,
        outside: str | None = None,
        extension: str | None = None,
        ring: float | None = None,
        talk: float | None = None,
    ) -> Outcome:
        current = self.outcomes.get(number, self.outcomes["*"])
        changes = {
            key: value
            for key, value in (("outside", outside), ("extension", extension), ("ring", ring), ("talk", talk))
            if value is not None
        }
        self.outcomes[number] = replace(current, **changes)
        return self.outcomes[number]

    def outcome_for(self, number: str) -> Outcome:
        return self.outcomes.get(number, self.outcomes["*"])

    # -- recordings and CDRs ---------------------------------------------------------------

    def recording_path(self, call: Call) -> str:
        folder = self.recordings_dir or Path(DEFAULT_MONITOR_DIR)
        return str(folder / f"{call.linkedid}.wav")

    def start_recording(self, call: Call, chan: Channel) -> None:
        self.pbx.start_mixmonitor(chan, self.recording_path(call))

    def save_recording(self, call: Call, chan: Channel) -> None:
        """Write the file before the hang-up events, so it is complete when they arrive."""
        if self.recordings_dir is not None and chan.answered is not None:
            wav.write_tone(self.recording_path(call), time.time() - chan.answered)

    def dial_cdr(
        self,
        call: Call,
        a: Channel,
        b: Channel | None,
        *,
        dst: str,
        dcontext: str,
        lastdata: str,
        disposition: str,
        lastapp: str = "Dial",
    ) -> Cdr:
        """One Party A / Party B row, once both sides are gone."""
        ends = [t for t in (a.ended, b.ended if b else None) if t is not None]
        return Cdr(
            src=a.caller_num,
            dst=dst,
            dcontext=dcontext,
            clid=clid(a.caller_name, a.caller_num),
            channel=a.name,
            dstchannel=b.name if b else "",
            lastapp=lastapp,
            lastdata=lastdata,
            start=a.created,
            answer=b.answered if b and disposition == "ANSWERED" else None,
            end=min(ends) if ends else time.time(),
            disposition=disposition,
            uniqueid=a.uniqueid,
            linkedid=call.linkedid,
            sequence=next(self._cdr_sequence),
        )

    def write_cdrs(self, rows: Sequence[Cdr]) -> None:
        if self.cdr is not None:
            self.cdr.write(list(rows))
