"""The only code that calls the channel layer: each operator's page listens on its own group."""

import asyncio
import datetime
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from clients.models import Client
from clients.phones import phone_normalize
from clients.services import client_find_by_phone, clients_by_phones
from history.models import Call
from history.services import calls_awaiting_registration, operators_to_handle

log = logging.getLogger(__name__)

SEND_TIMEOUT = 2.0  # a Redis that does not answer must not hold the sender for longer

# In the embedded mode the in-memory layer only reaches consumers through the server's own loop.
_server_loop: asyncio.AbstractEventLoop | None = None


def attach_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    global _server_loop
    _server_loop = loop


def operator_group(user_id: int) -> str:
    return f"operator.{user_id}"


def call_payload(call: Call) -> dict:
    return {
        "id": call.pk, "linkedid": call.linkedid, "direction": call.direction, "phone": call.phone,
        "extension": call.extension, "disposition": call.disposition, "client_id": call.client_id,
        "started_at": call.started_at.isoformat() if call.started_at else None,
        "answered_at": call.answered_at.isoformat() if call.answered_at else None,
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "duration": call.duration, "registered": call.registered_at is not None,
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


async def publish(messages: list[tuple[int, dict]]) -> None:
    """Send each message to its operator's group, all at once; a failure is logged, never raised."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return
    sends = asyncio.gather(*(layer.group_send(operator_group(user_id), message) for user_id, message in messages))
    try:
        await asyncio.wait_for(sends, SEND_TIMEOUT)
    except Exception as error:  # the page catches up on its next connect
        log.warning("could not push %d live messages: %s", len(messages), repr(error)[:200])


async def warm_up() -> None:
    """Set the channel layer up and connect it before the first call needs it: that first use costs ~100 ms."""
    layer = get_channel_layer()
    if layer is not None:
        try:
            await asyncio.wait_for(layer.group_send("warm-up", {"type": "warm.up"}), SEND_TIMEOUT)
        except Exception as error:
            log.warning("the channel layer is not reachable yet: %s", repr(error)[:200])


def server_loop() -> asyncio.AbstractEventLoop | None:
    """The web server's own loop, in the embedded mode: the only way into its in-memory layer."""
    return _server_loop if _server_loop is not None and _server_loop.is_running() else None


def send_many(messages: list[tuple[int, dict]]) -> None:
    """`publish` from synchronous code; a failure is logged, never raised."""
    loop = server_loop()
    if loop is not None:
        asyncio.run_coroutine_threadsafe(publish(messages), loop)
    else:
        async_to_sync(publish)(messages)


def call_changed(call_id: int, kinds: list[str]) -> None:
    """Tell the call's operator what happened to it: call.ringing, call.answered, call.ended."""
    call = Call.objects.select_related("client__card_type").filter(pk=call_id).first()
    if call is not None and call.operator_id is not None:
        send_many([(call.operator_id, call_message(kind, call)) for kind in kinds])


def catch_up_messages(user_id: int) -> list[dict]:
    """On every (re)connect: the operator's calls still in progress, then those awaiting registration."""
    messages = []
    # A call still open after 12 hours lost its end with the PBX link; it is no longer "in progress".
    since = timezone.now() - datetime.timedelta(hours=12)
    active = Call.objects.filter(operators_to_handle(user_id), ended_at__isnull=True, started_at__gte=since, disposition__in=["ringing", "answered"])
    active = list(active.select_related("client__card_type").order_by("started_at"))
    pending = list(calls_awaiting_registration(user_id))
    clients = callers([*active, *pending])
    for call in active:
        messages.append(call_message("call.answered" if call.answered_at else "call.ringing", call, clients[call.pk]))
    messages.append({"type": "calls.pending", "calls": [call_message("call.ended", call, clients[call.pk]) for call in pending]})
    return messages


def callers(calls: list[Call]) -> dict[int, list[Client]]:
    """Each call's client, or the clients with its number when it has none: one query for all the calls."""
    numbers = {call.pk: phone_normalize(call.phone) for call in calls if not call.client_id}
    found = clients_by_phones({number for number in numbers.values() if number})
    return {call.pk: [call.client] if call.client_id else found.get(numbers[call.pk], []) for call in calls}


def call_closed(call_id: int) -> None:
    """Registered or dismissed: every open page of every operator the call rang drops its form."""
    call = Call.objects.filter(pk=call_id).first()
    if call is None:
        return
    message = {"type": "call.registered", "call": call_payload(call), "clients": []}
    users = {call.operator_id, *call.rung.values_list("pk", flat=True)} - {None}
    send_many([(user_id, message) for user_id in users])
