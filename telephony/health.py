"""The setup self-test: the checklist of `pbx_check` and of the admin's «PBX check» page.

One `Verdict` per check, in order, each failure with its fix. AMI permissions are probed without
placing a call: manager.c checks the user's write= classes before an action reads any header, so an
Originate without a Channel answers "Permission denied" to a user lacking `originate` and "Channel
not specified" to one who has it (docs/pbx.md §2). The listeners are judged by their lease and
their heartbeats (telephony/heartbeat.py).
"""

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from django.utils.translation import gettext as _

from history.models import Recording
from history.recordings import recording_path
from telephony.ami import AMIAuthError, AMIConfig, AMIConnection, AMIError
from telephony.cdr import CdrError, read_csv, read_table
from telephony.heartbeat import STALE, LeaseState, listener_heartbeats, listener_lease
from telephony.models import Operator

log = logging.getLogger(__name__)

EVENT_WAIT = 3.0  # how long pbx_check listens for events of its own
TEST_SOUND = "hello-world"  # what the test originate plays to the operator who picks up (Asterisk's core sounds)
NEEDED_READ = ("call", "dialplan")


@dataclass(frozen=True)
class Verdict:
    status: str  # OK, WARN, FAIL, or SKIP (could not be checked because an earlier check failed)
    what: str
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"

    def line(self) -> str:
        text = f"{self.status:<5} {self.what}: {self.detail}"
        return f"{text} {_('Fix:')} {self.fix}" if self.fix else text


class EventsSeen:
    """Collects, on the AMI reader thread, the event classes that arrive and the answers to a test originate."""

    def __init__(self):
        self.classes: set[str] = set()
        self.responses: dict[str, dict] = {}
        self._changed = threading.Condition()

    def __call__(self, headers: dict) -> None:
        classes = {name.strip() for name in headers.get("Privilege", "").split(",")} - {"all", ""}
        with self._changed:
            self.classes |= classes
            if headers.get("Event") == "OriginateResponse" and headers.get("ActionID"):
                self.responses[headers["ActionID"]] = headers
            self._changed.notify_all()

    def wait(self, condition, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(condition, timeout)

    def forget_classes(self) -> None:
        with self._changed:
            self.classes.clear()


def pbx_check(*, originate_to: str | None = None, wait: float = EVENT_WAIT) -> Iterator[Verdict]:
    """The setup self-test, one verdict at a time; with `originate_to` (a user name), a test call to that operator's phone last."""
    config = replace(AMIConfig.from_settings(), ping_interval=0)
    seen = EventsSeen()
    ami = AMIConnection(config, on_event=seen)
    try:
        logged_in = False
        verdict = check_reachable(ami)
        yield verdict
        reached = not verdict.failed
        if reached:
            verdict = check_login(ami)
            yield verdict
            logged_in = not verdict.failed
        lease, beats, listeners_error = _listeners(config.address)
        if logged_in:
            yield check_write(ami)
            yield check_events(seen, wait, lease, beats)
        else:
            skipped = {
                (False, False): _("login, permissions and events"), (False, True): _("login, permissions, events and the test originate"),
                (True, False): _("permissions and events"), (True, True): _("permissions, events and the test originate"),
            }[reached, bool(originate_to)]
            yield Verdict("SKIP", _("AMI checks"), _("%(what)s not checked: the PBX must be reached and accept the login first.") % {"what": skipped})
        yield check_recordings()
        yield check_cdr()
        yield from check_listeners(config.address, lease, beats, listeners_error)
        if originate_to and logged_in:
            yield check_originate(ami, seen, originate_to)
    finally:
        ami.close()


def check_reachable(ami: AMIConnection) -> Verdict:
    what = _("AMI reachable")
    try:
        greeting = ami.connect()
    except AMIError as error:
        return Verdict("FAIL", what, _("cannot talk AMI to %(address)s (%(error)s).") % {"address": ami.config.address, "error": _reason(error)}, _(
            "check AMI_HOST and AMI_PORT; in the PBX's manager.conf: enabled = yes, port and bindaddr; "
            "a firewall between this machine and the PBX must let TCP %(port)s through."
        ) % {"port": ami.config.port})
    return Verdict("OK", what, _("%(address)s answers \"%(greeting)s\".") % {"address": ami.config.address, "greeting": greeting})


def check_login(ami: AMIConnection) -> Verdict:
    what = _("AMI login")
    username = ami.config.username
    try:
        ami.login()
    except AMIAuthError as error:
        return Verdict("FAIL", what, _("user %(user)s: %(error)s.") % {"user": username, "error": _reason(error)}, _(
            "fix AMI_USERNAME/AMI_SECRET in SimpleCalls' environment and the [%(user)s] section of the PBX's manager.conf "
            "(secret =, and permit = must allow this machine's address), then `manager reload` in the Asterisk console."
        ) % {"user": username})
    except AMIError as error:
        return Verdict("FAIL", what, _("no answer to the login (%(error)s).") % {"error": _reason(error)}, _(
            "AMI_PORT must be the Asterisk Manager Interface's port (manager.conf, 5038 by default)."
        ))
    return Verdict("OK", what, _("logged in as %(user)s.") % {"user": username})


# What SimpleCalls sends, and the write= class each needs; none of them changes anything at the PBX.
WRITE_PROBES = (
    ("Ping", "", {"Action": "Ping"}),
    ("CoreShowChannels", "reporting", {"Action": "CoreShowChannels"}),
    ("Originate", "originate", {"Action": "Originate"}),  # no Channel: refused before anything is dialled
)


def check_write(ami: AMIConnection) -> Verdict:
    what = _("AMI permissions")
    missing = []
    try:
        for name, needed, action in WRITE_PROBES:
            answer = ami.send_action(action, listing=name == "CoreShowChannels")
            if answer.get_header("Response") != "Success" and answer.get_header("Message", "") == "Permission denied":
                missing.append((name, needed))
    except AMIError as error:
        return Verdict("FAIL", what, _("the PBX stopped answering (%(error)s).") % {"error": _reason(error)}, _("run the check again; if it repeats, read the PBX's log."))
    if missing:
        names = ", ".join(f"{name} (write = {needed})" for name, needed in missing)
        return Verdict("FAIL", what, _("the AMI user %(user)s may not run %(actions)s: the PBX answers \"Permission denied\".") % {"user": ami.config.username, "actions": names}, _(
            "in the [%(user)s] section of manager.conf set write = originate,reporting and read = call,dialplan, "
            "run `manager reload`, then restart pbx_listen and the Celery worker (a login keeps the permissions it began with)."
        ) % {"user": ami.config.username})
    return Verdict("OK", what, _("Ping, CoreShowChannels and Originate are allowed (write = originate,reporting)."))


def check_events(seen: EventsSeen, wait: float, lease: LeaseState | None, beats: list[dict]) -> Verdict:
    what = _("AMI events")
    seen.wait(lambda: set(NEEDED_READ) <= seen.classes, wait)
    classes = seen.classes & set(NEEDED_READ)
    if "call" in classes:
        return Verdict("OK", what, _("events arrive (classes %(classes)s).") % {"classes": ", ".join(sorted(classes))} + recorded_note(classes))
    if classes:
        return Verdict("WARN", what, _("events arrive (classes %(classes)s), but none of class call in %(wait)s s.") % {
            "classes": ", ".join(sorted(classes)), "wait": f"{wait:g}"}, _(
            "read = call,dialplan in manager.conf (call: the calls themselves; dialplan: the recordings' file names), then `manager reload` and restart pbx_listen."
        ))
    leader = _leader_beat(lease, beats)
    if leader and leader.get("last_event"):
        age = max(time.time() - leader["last_event"], 0)
        return Verdict("OK", what, _("none in the last %(wait)s s here, but the leading listener last heard one %(age)s s ago.") % {"wait": f"{wait:g}", "age": f"{age:.0f}"})
    return Verdict("WARN", what, _(
        "no call event in %(wait)s s and none heard by a listener: normal while the PBX has no calls, and nothing proves the user's read= classes yet."
    ) % {"wait": f"{wait:g}"}, _(
        "make a call, or run the test originate; if calls are going on, set read = call,dialplan in manager.conf (no eventfilter that drops them), "
        "then `manager reload` and restart pbx_listen."
    ))


def recorded_note(classes: set[str]) -> str:
    """Class dialplan carries only a recording's file name: the shipped manager.conf lets nothing else of it through."""
    if "dialplan" in classes:
        return ""
    return " " + _("Class dialplan (a recording's file name) comes only with a recorded call: check that one shows its recording.")


def check_recordings() -> Verdict:
    what = _("Recordings directory")
    root = Path(settings.RECORDINGS_DIR)
    fix = _(
        "RECORDINGS_DIR must be the directory MixMonitor writes to (or where it is mounted, at the same path as on the PBX), "
        "readable by the user SimpleCalls runs as (e.g. setfacl -R -m u:simplecalls:rX)."
    )
    try:
        with os.scandir(root) as entries:
            next(entries, None)
    except FileNotFoundError:
        return Verdict("FAIL", what, _("%(path)s does not exist.") % {"path": root}, fix)
    except OSError as error:
        return Verdict("FAIL", what, _("%(path)s cannot be read (%(error)s).") % {"path": root, "error": error.strerror or error}, fix)
    latest = Recording.objects.order_by("-pk").first()
    if latest is not None:
        path = recording_path(latest)
        if path is None:
            return Verdict("WARN", what, _("%(path)s is readable, but the newest recording, %(file)s, is not found inside it.") % {"path": root, "file": latest.file}, fix)
        try:
            with open(path, "rb") as file:
                file.read(1)
        except OSError as error:
            return Verdict("FAIL", what, _("the newest recording, %(file)s, cannot be read (%(error)s).") % {"file": path, "error": error.strerror or error}, fix)
    return Verdict("OK", what, _("%(path)s is readable.") % {"path": root})


def check_cdr() -> Verdict:
    what = _("CDR source")
    since = timezone.now() - timedelta(hours=settings.CDR_WINDOW_HOURS)
    hours = settings.CDR_WINDOW_HOURS
    if settings.CDR_CSV:
        source = settings.CDR_CSV
        fix = _("point CDR_CSV at Asterisk's Master.csv (/var/log/asterisk/cdr-csv/Master.csv, or where it is mounted) and let SimpleCalls' user read it.")
        try:
            rows, errors = read_csv(source, since=since, tz=settings.CDR_TIMEZONE)
        except OSError as error:
            return Verdict("FAIL", what, _("%(path)s cannot be read (%(error)s).") % {"path": source, "error": error.strerror or error}, fix)
        except (LookupError, ValueError):
            return Verdict("FAIL", what, _("CDR_TIMEZONE %(zone)s is not a time zone.") % {"zone": settings.CDR_TIMEZONE}, _("set CDR_TIMEZONE to the PBX's time zone, e.g. Europe/Moscow."))
        if errors:
            return Verdict("WARN", what, _("%(path)s: %(count)s lines cannot be read, the first: %(error)s.") % {"path": source, "count": len(errors), "error": errors[0]}, _(
                "cdr_csv must write the columns of docs/pbx.md §7 (loguniqueid, loguserfield and newcdrcolumns in cdr.conf give the full set)."
            ))
    elif settings.CDR_DSN:
        source = _("table %(table)s at CDR_DSN") % {"table": settings.CDR_TABLE}
        try:
            rows = read_table(settings.CDR_DSN, table=settings.CDR_TABLE, since=since, tz=settings.CDR_TIMEZONE)
        except CdrError as error:
            return Verdict("FAIL", what, _("%(source)s cannot be read (%(error)s).") % {"source": source, "error": error}, _(
                "CDR_DSN must let a read-only user log in to the CDR database, and CDR_TABLE name cdr_pgsql's table there."
            ))
        except (LookupError, ValueError):
            return Verdict("FAIL", what, _("CDR_TIMEZONE %(zone)s is not a time zone.") % {"zone": settings.CDR_TIMEZONE}, _("set CDR_TIMEZONE to the PBX's time zone, e.g. Europe/Moscow."))
    else:
        return Verdict("WARN", what, _("neither CDR_CSV nor CDR_DSN is set: calls made while no listener ran are never filled in."), _(
            "set CDR_CSV to Asterisk's Master.csv, or CDR_DSN to its CDR database."
        ))
    return Verdict("OK", what, _("%(source)s: %(count)s rows in the last %(hours)s hours.") % {"source": source, "count": len(rows), "hours": hours})


def check_listeners(pbx: str, lease: LeaseState | None, beats: list[dict], error: str = "") -> Iterator[Verdict]:
    leader_what, standby_what = _("Listener, leading"), _("Listener, standby")
    start = _("start `python manage.py pbx_listen` (as a service: deploy/README.md); if it runs, its log says why it does not lead.")
    if error:
        yield Verdict("FAIL", leader_what, _("the database cannot be read (%(error)s).") % {"error": error}, _("check DATABASE_URL and that the database is up."))
        return
    if lease is None:
        yield Verdict("FAIL", leader_what, _("no listener has ever run for %(pbx)s.") % {"pbx": pbx}, start)
    elif not lease.held:
        yield Verdict("FAIL", leader_what, _("no listener leads: the lease for %(pbx)s was last renewed %(age)s s ago, by %(holder)s.") % {
            "pbx": pbx, "age": f"{lease.age:.0f}", "holder": _holder(lease.holder)}, start)
    else:
        detail = _("%(holder)s leads (lease renewed %(age)s s ago).") % {"holder": _holder(lease.holder), "age": f"{lease.age:.0f}"}
        leader = _leader_beat(lease, beats)
        if leader and leader.get("stepped") and time.time() - leader["stepped"] > STALE:
            yield Verdict("FAIL", leader_what, detail + " " + _("Its event loop has not turned for %(age)s s.") % {"age": f"{time.time() - leader['stepped']:.0f}"}, _(
                "restart that pbx_listen; its log says what it was doing."
            ))
        else:
            if leader and "batches" in leader:  # what it has done (a listener of an earlier version does not say)
                detail += " " + _("Since it started: AMI events — %(events)s, write transactions — %(batches)s.") % {
                    "events": leader["events"], "batches": leader["batches"]}
            yield Verdict("OK", leader_what, detail)
    standbys = [beat for beat in beats if lease is None or beat.get("id") != lease.holder]
    alive = [beat for beat in standbys if beat.get("connected") and beat.get("stepped") and time.time() - beat["stepped"] < STALE]
    if alive:
        names = ", ".join(_holder(beat["id"]) for beat in alive)
        yield Verdict("OK", standby_what, _("%(names)s ready to take over.") % {"names": names})
    elif standbys:
        names = ", ".join(_holder(beat["id"]) for beat in standbys)
        yield Verdict("WARN", standby_what, _("%(names)s runs but is not connected to the PBX.") % {"names": names}, _("its log says why (the AMI credentials, the network)."))
    elif not beats and not settings.REDIS_URL:
        yield Verdict("WARN", standby_what, _("not visible from here: without REDIS_URL each process keeps its heartbeat to itself."), _(
            "set REDIS_URL for every process (production), or look at the admin's page of the process running the listeners."
        ))
    else:
        yield Verdict("WARN", standby_what, _("no standby listener: while the leader is down, calls are written only later, from the CDR."), _(
            "run a second pbx_listen, on another machine if you can: it takes over within about LISTENER_LEASE_SECONDS + 1 s."
        ))


def check_originate(ami: AMIConnection, seen: EventsSeen, username: str) -> Verdict:
    what = _("Test originate")
    operator = Operator.objects.select_related("user").filter(user__username=username).first()
    if operator is None:
        return Verdict("FAIL", what, _("%(user)s is not an operator.") % {"user": username}, _("name a user listed under Operators in the admin, or give them an extension and a desk phone there."))
    context = settings.ORIGINATE_CONTEXT
    channel = f"Local/{operator.extension}@{context}"
    ring = settings.ORIGINATE_RING_SECONDS
    action_id = f"chk-{uuid.uuid4().hex}"
    seen.forget_classes()  # from here on, what the test call brings
    try:
        answer = ami.send_action({
            "Action": "Originate", "Channel": channel, "Application": "Playback", "Data": TEST_SOUND, "Async": "true",
            "Timeout": ring * 1000, "CallerID": f'"SimpleCalls" <{operator.extension}>', "ChannelId": action_id, "ActionID": action_id,
        })
    except AMIError as error:
        return Verdict("FAIL", what, _("the PBX stopped answering (%(error)s).") % {"error": _reason(error)}, _("run the check again; if it repeats, read the PBX's log."))
    if answer.get_header("Response") != "Success":
        return Verdict("FAIL", what, _("the PBX refused the Originate to %(channel)s: %(error)s.") % {"channel": channel, "error": answer.get_header("Message", "")}, _(
            "see the AMI permissions above, and ORIGINATE_CONTEXT."
        ))
    if not seen.wait(lambda: action_id in seen.responses, ring + 10):
        return Verdict("FAIL", what, _("no OriginateResponse came within %(seconds)s s.") % {"seconds": ring + 10}, _(
            "the AMI user needs read = call (and no eventfilter that drops OriginateResponse); click-to-call waits for the same event."
        ))
    response = seen.responses[action_id]
    reason = response.get("Reason", "")
    who = _("%(operator)s's phone (%(channel)s)") % {"operator": operator, "channel": channel}
    if response.get("Response") == "Success":
        seen.wait(lambda: set(NEEDED_READ) <= seen.classes, 2.0)
        detail = _("%(who)s answered.") % {"who": who}
        if "call" not in seen.classes:
            return Verdict("FAIL", what, detail + " " + _("But no event of class call came during the call."), _(
                "read = call,dialplan in manager.conf (and no eventfilter that drops the call events), then `manager reload` and restart pbx_listen."
            ))
        classes = seen.classes & set(NEEDED_READ)
        return Verdict("OK", what, detail + " " + _("Events of classes %(classes)s came during the call.") % {"classes": ", ".join(sorted(classes))} + recorded_note(classes))
    if reason in ("1", "3"):
        return Verdict("WARN", what, _("%(who)s was not answered within %(seconds)s s.") % {"who": who, "seconds": ring}, _(
            "pick up when it rings; if it never rang, the context %(context)s must dial extension %(extension)s's phone (%(phone)s)."
        ) % {"context": context, "extension": operator.extension, "phone": operator.channel})
    if reason == "5":
        return Verdict("WARN", what, _("%(who)s is busy.") % {"who": who}, _("hang up and run the test again."))
    return Verdict("FAIL", what, _("the PBX could not ring %(who)s (OriginateResponse Reason %(reason)s).") % {"who": who, "reason": reason or "?"}, _(
        "the context %(context)s (ORIGINATE_CONTEXT) must have extension %(extension)s dialling the phone %(phone)s, and the phone must be registered (pjsip show endpoints)."
    ) % {"context": context, "extension": operator.extension, "phone": operator.channel})


def _listeners(pbx: str) -> tuple[LeaseState | None, list[dict], str]:
    """The lease and the heartbeats of the PBX's listeners, and the database's error if it could not be read."""
    try:
        beats = listener_heartbeats(pbx)
    except Exception as error:
        log.warning("listener heartbeats not read: %s", error)
        beats = []
    try:
        return listener_lease(pbx), beats, ""
    except DatabaseError as error:
        return None, beats, type(error).__name__


def _leader_beat(lease: LeaseState | None, beats: list[dict]) -> dict | None:
    if lease is None or not lease.held:
        return None
    return next((beat for beat in beats if beat.get("id") == lease.holder), None)


def _holder(holder: str) -> str:
    """A lease holder or listener id (`host:pid:token`) as an administrator reads it."""
    host, _colon, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    return _("pbx_listen on %(host)s, pid %(pid)s") % {"host": host, "pid": pid} if pid else holder


def _reason(error: AMIError) -> str:
    """The error without the address its message starts with."""
    text = str(error)
    return text.partition(": ")[2] or text
