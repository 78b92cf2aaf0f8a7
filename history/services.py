import datetime

from django.db.models import QuerySet
from django.utils import timezone

from clients.models import Client
from history.models import Call, Recording


def call_visible_to(user) -> QuerySet[Call]:
    """Operators see their own calls; staff see every call."""
    calls = Call.objects.select_related("operator", "client", "reason", "result")
    return calls if user.is_staff else calls.filter(operator=user)


# What the PBX tells about a call; registration fields (reason, result, comment…) are the operator's.
PBX_FIELDS = ["direction", "disposition", "phone", "extension", "operator", "started_at", "answered_at", "ended_at", "duration", "billsec"]


def calls_save_from_pbx(calls: list[Call]) -> list[Call]:
    """Insert or update calls by linkedid in one statement; their ids are set on return.

    A client given here is kept only by a new row: an existing call's client is the operator's to change.
    """
    return Call.objects.bulk_create(calls, update_conflicts=True, unique_fields=["linkedid"], update_fields=PBX_FIELDS)


def calls_link_clients(links: dict[int, int]) -> None:
    """Attach the clients found by number (call id → client id), where nobody has chosen one yet."""
    if not links:
        return
    for call_id in Call.objects.filter(pk__in=links, client__isnull=True).values_list("pk", flat=True):
        Call.objects.filter(pk=call_id, client__isnull=True).update(client_id=links[call_id])


def recording_add(call_id: int, file: str, duration: int) -> None:
    Recording.objects.get_or_create(call_id=call_id, file=file, defaults={"duration": duration})


PENDING_DAYS = 7


def calls_awaiting_registration(user_id: int) -> QuerySet[Call]:
    """The operator's finished calls of the last week that nobody registered or dismissed yet."""
    since = timezone.now() - datetime.timedelta(days=PENDING_DAYS)
    return (
        Call.objects.filter(operator_id=user_id, ended_at__isnull=False, registered_at__isnull=True, dismissed_at__isnull=True, started_at__gte=since)
        .select_related("client__card_type")
        .order_by("started_at")[:50]
    )


def call_register(call: Call) -> Call:
    """Mark a call registered (its form fields already set on `call`); a reminder also sets the client's call-back date."""
    call.registered_at = timezone.now()
    call.dismissed_at = None
    call.save()
    if call.reminder_on and call.client_id:
        Client.objects.filter(pk=call.client_id).update(call_back_on=call.reminder_on)
    return call


def call_dismiss(call: Call) -> None:
    Call.objects.filter(pk=call.pk, registered_at__isnull=True).update(dismissed_at=timezone.now())


def call_set_client(call: Call, client: Client) -> None:
    call.client = client
    Call.objects.filter(pk=call.pk).update(client=client)


def calls_attach_to_client(client: Client) -> int:
    """Late binding: earlier calls from the new client's numbers join their history."""
    if not client.phones:
        return 0
    return Call.objects.filter(phone__in=client.phones, client__isnull=True).update(client=client)


def client_recent_calls(client_id: int, *, exclude: int | None = None, limit: int = 5) -> list[Call]:
    calls = Call.objects.filter(client_id=client_id).exclude(pk=exclude).select_related("reason", "result", "operator")
    return list(calls.order_by("-started_at")[:limit])


def reminders_for(user) -> QuerySet[Call]:
    """The operator's personal reminders from today on."""
    return Call.objects.filter(operator=user, reminder_on__gte=timezone.localdate()).select_related("client").order_by("reminder_on")
