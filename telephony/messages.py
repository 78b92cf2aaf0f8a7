"""The live messages for operators' pages, built from the database: what is said, and to whom.

`telephony/realtime.py` sends them; nothing here touches the channel layer.
"""

import datetime

from django.utils import timezone

from clients.models import Client
from clients.phones import phone_display, phone_normalize
from clients.services import client_find_by_phone, clients_by_phones
from history.models import Call
from history.services import calls_awaiting_registration, operators_to_handle
from telephony.dialing import CLICK_TO_CALL

# A call still open after this long lost its end with the PBX link; it is no longer "in progress".
IN_PROGRESS_AT_MOST = datetime.timedelta(hours=12)


def call_payload(call: Call) -> dict:
    return {
        "id": call.pk, "linkedid": call.linkedid, "direction": call.direction, "phone": call.phone, "phone_shown": phone_display(call.phone),
        "extension": call.extension, "disposition": call.disposition, "client_id": call.client_id,
        "started_at": call.started_at.isoformat() if call.started_at else None,
        "answered_at": call.answered_at.isoformat() if call.answered_at else None,
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "duration": call.duration, "registered": call.registered_at is not None,
        "started_shown": timezone.localtime(call.started_at).strftime("%d.%m.%Y %H:%M:%S") if call.started_at else "",
    }


def client_payload(client: Client) -> dict:
    return {
        "id": client.pk, "name": str(client), "card_number": client.card_number,
        "card_type": str(client.card_type) if client.card_type_id else "", "blacklisted": client.blacklisted,
        "call_back_on": client.call_back_on.isoformat() if client.call_back_on else None,
        "phones": client.phones,
    }


def call_message(kind: str, call: Call, clients: list[Client] | None = None) -> dict:
    """A live message about `call`; `clients` are the caller's matches, looked up when not given."""
    if clients is None:
        clients = [call.client] if call.client_id else client_find_by_phone(call.phone)
    return {"type": kind, "call": call_payload(call), "clients": [client_payload(client) for client in clients]}


def originate_status(status: str, call: Call, clients: list[Client] | None = None, reason: str = "") -> dict:
    """Where the operator's click-to-call stands (see telephony.events.outgoing_stage), or why the PBX was not asked."""
    message = call_message("originate.status", call, clients)
    message["status"], message["reason"] = status, reason
    return message


def one_call(calls, call_id: int) -> Call | None:
    """The call, or None: `get` reads it unordered, where `first` would sort by Call's ordering first."""
    try:
        return calls.get(pk=call_id)
    except Call.DoesNotExist:
        return None


def call_changed_messages(call_id: int, kinds: list[str]) -> list[tuple[int, dict]]:
    """For the call's operator: what happened to it (call.ringing, call.answered, call.ended)."""
    call = one_call(Call.objects.select_related("client__card_type"), call_id)
    if call is None or call.operator_id is None:
        return []
    return [(call.operator_id, call_message(kind, call)) for kind in kinds]


def call_closed_messages(call_id: int) -> list[tuple[int, dict]]:
    """Registered or dismissed: for every operator the call rang, so that each open page drops its form."""
    call = one_call(Call.objects.all(), call_id)
    if call is None:
        return []
    message = {"type": "call.registered", "call": call_payload(call), "clients": []}
    users = {call.operator_id, *call.rung.values_list("pk", flat=True)} - {None}
    return [(user_id, message) for user_id in users]


def catch_up_messages(user_id: int) -> list[dict]:
    """On every (re)connect: the operator's calls still in progress, then those awaiting registration."""
    since = timezone.now() - IN_PROGRESS_AT_MOST
    active = Call.objects.filter(
        operators_to_handle(user_id), ended_at__isnull=True, started_at__gte=since, disposition__in=["ringing", "answered"], dismissed_at__isnull=True,
    )
    active = list(active.select_related("client__card_type").order_by("started_at"))
    pending = list(calls_awaiting_registration(user_id))
    clients = callers([*active, *pending])
    messages = [call_message("call.answered" if call.answered_at else "call.ringing", call, clients[call.pk]) for call in active]
    messages += [
        originate_status("connected" if call.answered_at else "dialling", call, clients[call.pk])
        for call in active if call.linkedid.startswith(CLICK_TO_CALL) and call.operator_id == user_id
    ]
    messages.append({"type": "calls.pending", "calls": [call_message("call.ended", call, clients[call.pk]) for call in pending]})
    return messages


def callers(calls: list[Call]) -> dict[int, list[Client]]:
    """Each call's client, or the clients with its number when it has none: one query for all the calls."""
    numbers = {call.pk: phone_normalize(call.phone) for call in calls if not call.client_id}
    found = clients_by_phones({number for number in numbers.values() if number})
    return {call.pk: [call.client] if call.client_id else found.get(numbers[call.pk], []) for call in calls}
