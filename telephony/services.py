"""What an operator does with a call from its pop-up: register it, create or choose its caller, close it.

Views parse the request and render; the writes and the pushes that follow them happen here.
"""

import random
import re
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clients.models import Client
from clients.phones import phone_display
from history.models import Call
from history.services import call_dismiss, call_register, call_set_client, calls_attach_to_client, calls_dismiss_pending
from simplecalls.cache import cache
from telephony import messages, realtime
from telephony.ami import AMIConfig, AMIConnection, dial_number, shared_connection
from telephony.dialing import CLICK_TO_CALL, DialTarget, NotDiallable, dial_target
from telephony.models import Operator

DEMO_SCENARIOS = frozenset({"inbound_answered", "inbound_missed", "inbound_smart"})
# A caller-ID name is quoted in the Originate: what would end the quote or the name goes.
CALLER_NAME_UNSAFE = re.compile(r'["<>\\\x00-\x1f\x7f]+')


@transaction.atomic
def call_client_create(*, call: Call, client: Client) -> Client:
    """Save the new client, make them the call's caller and attach their number's earlier calls: all or nothing."""
    client.save()
    call_set_client(call, client)
    calls_attach_to_client(client)
    return client


def call_client_choose(*, call: Call, client: Client) -> None:
    """One of several clients with the number, or one found by a search, is the caller."""
    call_set_client(call, client)


def call_registration_save(*, call: Call, new_client: Client | None = None) -> Call:
    """Register `call` (its registration fields already set), creating `new_client` as its caller first.

    Every operator the call rang drops its form once the registration is committed.
    """
    with transaction.atomic():
        if new_client is not None:
            call_client_create(call=call, client=new_client)
        call_register(call)
        transaction.on_commit(lambda: realtime.call_closed(call.pk))
    return call


def call_close(*, call: Call) -> None:
    """Closed without registering: the call stops being pending, and every form on it closes."""
    call_dismiss(call)
    transaction.on_commit(lambda: realtime.call_closed(call.pk))


def calls_pending_clear(*, user) -> int:
    """«Clear» on the list of calls while you were away: each is closed without registering, on every page."""
    with transaction.atomic():
        ids = calls_dismiss_pending(user.pk)
        transaction.on_commit(lambda: [realtime.call_closed(pk) for pk in ids])
    return len(ids)


def demo_call_place(*, extension: str, scenario: str, known_caller: bool) -> None:
    """Ask the PBX simulator for a call to `extension`, from a client's number or a random one.

    `inbound_smart` calls from a client the operator at `extension` manages, through smart transfer.
    Demo mode only, the one place the web talks AMI; raises AMIError when the PBX cannot be told.
    """
    if scenario not in DEMO_SCENARIOS:
        raise ValueError(f"unknown demo scenario {scenario!r}")
    if scenario == "inbound_smart":
        number = demo_managed_client_phone(extension)
    elif known_caller:
        client = Client.objects.exclude(phone_mobile=None).order_by("?").first()
        number = client.phone_mobile if client else "+74957894561"
    else:
        number = f"+7903{random.randint(1_000_000, 9_999_999)}"
    ami = AMIConnection(AMIConfig.from_settings())
    try:
        ami.connect()
        ami.login()
        ami.send_action({"Action": "SimCall", "Scenario": scenario, "Caller": dial_number(number), "Extensions": extension, "Ring": 4, "Talk": 10})
    finally:
        ami.close()


def demo_managed_client_phone(extension: str) -> str:
    """The mobile of a client whose manager is the operator at `extension`; with none yet, a client without a manager becomes theirs (demo only)."""
    clients = Client.objects.exclude(phone_mobile=None)
    client = clients.filter(manager__operator__extension=extension).order_by("?").first()
    if client is None:
        client = clients.filter(manager=None).order_by("?").first()
        if client is None:
            return "+74957894561"
        Client.objects.filter(pk=client.pk).update(manager=Operator.objects.get(extension=extension).user)
    return client.phone_mobile


@dataclass(frozen=True)
class OriginateAnswer:
    """What `POST /telephony/originate/` answers: dialling, duplicate or refused, with a message."""

    status: str
    message: str
    call: int | None = None


def call_originate_request(*, user, phone: str, client_id: int | None = None) -> OriginateAnswer:
    """Log an outgoing call at once and have a worker ask the PBX to ring the operator, then the number.

    Refused without an operator's extension or a diallable number; a second request for the same
    operator and number within ORIGINATE_WINDOW_SECONDS is a duplicate, across processes and tabs.
    """
    operator = getattr(user, "operator", None)
    if operator is None:
        return OriginateAnswer("refused", _("No extension is set up for you: ask an administrator."))
    try:
        target = dial_target(phone, region=settings.PHONE_REGION, rules=settings.DIAL_RULES)
    except NotDiallable as error:
        return OriginateAnswer("refused", str(error))
    once = f"originate:{user.pk}:{target.number}"
    if not cache.add(once, True, settings.ORIGINATE_WINDOW_SECONDS):
        return OriginateAnswer("duplicate", _("Already dialling %(phone)s.") % {"phone": phone_display(target.number)})
    if originates_this_minute(user.pk) > settings.ORIGINATE_PER_MINUTE:
        cache.delete(once)
        return OriginateAnswer("refused", _("Too many calls in a minute: wait a little and try again."))
    client = Client.objects.filter(pk=client_id).first() if client_id else None
    call = Call.objects.create(
        linkedid=f"{CLICK_TO_CALL}{uuid.uuid4().hex}", direction=Call.Direction.OUT, phone=target.number, extension=operator.extension,
        operator=user, client=client, started_at=timezone.now(),
    )
    from telephony.tasks import originate_call  # the task module calls back into this one

    action = originate_action(call, target)
    transaction.on_commit(lambda: originate_call.delay(call.pk, action))
    return OriginateAnswer("dialling", _("Your phone will ring: pick it up to call %(phone)s.") % {"phone": phone_display(target.number)}, call.pk)


def originates_this_minute(user_id: int) -> int:
    """Count this operator's click-to-calls in the minute since the first of them, this one included."""
    key = f"originate-rate:{user_id}"
    cache.add(key, 0, 60)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, 60)
        return 1


def originate_action(call: Call, target: DialTarget) -> dict:
    """The AMI Originate that rings the operator's phone, then dials the number on the trunk.

    Our call's linkedid is the originated channel's Uniqueid (ChannelId) and the ActionID, so the
    listener fills in the very row the request logged. An extension goes in SIMPLECALLS_DTMF, for
    the dialplan's Dial(…,D(${SIMPLECALLS_DTMF})) to send once the client answers (docs/pbx.md §4).
    Built where the call is logged, so that the worker sending it needs no database.
    """
    context = settings.ORIGINATE_CONTEXT
    caller_name = CALLER_NAME_UNSAFE.sub(" ", str(call.client) if call.client_id else "").strip()
    variables = [f"SIMPLECALLS_CALL={call.pk}"]
    # Only 0-9 reach the header: \d and str.isdigit would pass other scripts' digits too.
    if digits := re.sub(r"[^0-9]", "", target.extension):
        pauses = "w" * round(settings.ORIGINATE_DTMF_PAUSE / 0.5)  # each `w` is half a second of D()'s waiting
        variables.append(f"SIMPLECALLS_DTMF={pauses}{digits}")
    return {
        "Action": "Originate", "Channel": f"Local/{dial_number(call.extension)}@{context}", "Context": context,
        "Exten": dial_number(target.dial), "Priority": "1", "Async": "true", "Timeout": settings.ORIGINATE_RING_SECONDS * 1000,
        "CallerID": f'"{caller_name}" <{dial_number(call.phone)}>', "ChannelId": call.linkedid, "ActionID": call.linkedid,
        "Variable": variables,
    }


def call_originate(*, call_id: int, action: dict) -> None:
    """Send the click-to-call's Originate (`originate_action`). Raises AMIError when the PBX cannot be reached."""
    with shared_connection(AMIConfig.from_settings()) as ami:
        response = ami.send_action(action)
    if response.get_header("Response") != "Success":
        call_originate_failed(call_id=call_id, status="refused", reason=response.get_header("Message", ""))


def call_originate_failed(*, call_id: int, status: str, reason: str) -> None:
    """The PBX could not be reached ("unreachable") or refused the Originate ("refused"): the call ends as failed, and its operator is told."""
    Call.objects.filter(pk=call_id, ended_at__isnull=True).update(disposition=Call.Disposition.FAILED, ended_at=timezone.now())
    call = Call.objects.select_related("client__card_type").get(pk=call_id)
    realtime.send_many([(call.operator_id, messages.originate_status(status, call, reason=reason))])
