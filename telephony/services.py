"""What an operator does with a call from its pop-up: register it, create or choose its caller, close it.

Views parse the request and render; the writes and the pushes that follow them happen here.
"""

import random

from django.db import transaction

from clients.models import Client
from history.models import Call
from history.services import call_dismiss, call_register, call_set_client, calls_attach_to_client
from telephony import realtime
from telephony.ami import AMIConfig, AMIConnection, dial_number

DEMO_SCENARIOS = frozenset({"inbound_answered", "inbound_missed"})


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


def demo_call_place(*, extension: str, scenario: str, known_caller: bool) -> None:
    """Ask the PBX simulator for a call to `extension`, from a client's number or a random one.

    Demo mode only, the one place the web talks AMI; raises AMIError when the PBX cannot be told.
    """
    if scenario not in DEMO_SCENARIOS:
        raise ValueError(f"unknown demo scenario {scenario!r}")
    if known_caller:
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
