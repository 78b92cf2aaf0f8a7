"""The call panel: the pop-up's content, its registration form and the actions on it."""

import random

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from clients.models import Client
from clients.services import client_find_by_phone
from history.models import Call
from history.services import call_dismiss, call_register, call_set_client, call_visible_to, calls_attach_to_client, client_recent_calls
from telephony import realtime
from telephony.ami import AMIConfig, AMIConnection, AMIError, dial_number
from telephony.forms import CallerForm, ChosenClientForm, RegistrationForm


def visible_call(request, pk) -> Call:
    """The call, if it is this operator's (staff may open any); 404 otherwise."""
    calls = call_visible_to(request.user).select_related("client__card_type", "contact_reason")
    return get_object_or_404(calls, pk=pk)


def done() -> HttpResponse:
    response = HttpResponse(status=204)
    response["X-Call-Done"] = "1"
    return response


def panel(request, call: Call, *, registration=None, caller=None, search: str = "", status: int = 200):
    clients = [call.client] if call.client_id else client_find_by_phone(call.phone)
    client = clients[0] if len(clients) == 1 else None
    if client is None and caller is None:
        caller = CallerForm(prefix="caller", initial={"phone_mobile": call.phone})
    context = {
        "call": call,
        "clients": clients,
        "client": client,
        "recent_calls": client_recent_calls(client.pk, exclude=call.pk) if client else [],
        "registration": registration or RegistrationForm(instance=call),
        "caller": caller if client is None else None,
        "search": search,
        "found": client_find_by_phone(search) if search else [],
    }
    return render(request, "telephony/call_panel.html", context, status=status)


@login_required
def call_panel(request, pk):
    return panel(request, visible_call(request, pk), search=request.GET.get("search", "").strip())


@login_required
@require_POST
def call_save(request, pk):
    """Register the call; with a new caller's details typed in, create the client too."""
    call = visible_call(request, pk)
    registration = RegistrationForm(request.POST, instance=call)
    caller = CallerForm(request.POST, prefix="caller") if call.client_id is None else None
    if request.POST.get("action") == "create_client":
        if not caller or not caller.is_valid():
            return panel(request, call, registration=RegistrationForm(initial=request.POST.dict(), instance=call), caller=caller, status=400)
        create_client(call, caller)
        return panel(request, call, registration=RegistrationForm(initial=request.POST.dict(), instance=call))
    creating = caller is not None and caller.has_details()
    valid = registration.is_valid()
    if creating:
        valid = caller.is_valid() and valid
    if not valid:
        return panel(request, call, registration=registration, caller=caller, status=400)
    with transaction.atomic():
        if creating:
            create_client(call, caller)
        call_register(registration.save(commit=False))
        transaction.on_commit(lambda: realtime.call_closed(call.pk))
    return done()


@transaction.atomic
def create_client(call: Call, caller: CallerForm) -> Client:
    """The new client, the call and the number's earlier calls, all or nothing."""
    client = caller.save()
    call_set_client(call, client)
    calls_attach_to_client(client)
    return client


@login_required
@require_POST
def call_choose_client(request, pk):
    """One of several clients with the number, or one found by the search, is the caller."""
    call = visible_call(request, pk)
    chosen = ChosenClientForm(request.POST)
    if not chosen.is_valid():
        raise Http404
    call_set_client(call, chosen.cleaned_data["client"])
    return panel(request, call, registration=RegistrationForm(initial=request.POST.dict(), instance=call))


@login_required
@require_POST
def call_close(request, pk):
    """The operator closed the form without registering: the call stops being pending."""
    call = visible_call(request, pk)
    call_dismiss(call)
    transaction.on_commit(lambda: realtime.call_closed(call.pk))
    return done()


DEMO_SCENARIOS = {"inbound_answered", "inbound_missed"}


@login_required
@require_POST
def demo_call(request):
    """Demo mode only: ask the PBX simulator for a call to this operator (the one place the web talks AMI)."""
    operator = getattr(request.user, "operator", None)
    scenario = request.POST.get("scenario", "inbound_answered")
    if not settings.DEMO or operator is None or scenario not in DEMO_SCENARIOS:
        raise Http404
    if request.POST.get("caller") == "known":
        client = Client.objects.exclude(phone_mobile=None).order_by("?").first()
        number = client.phone_mobile if client else "+74957894561"
    else:
        number = f"+7903{random.randint(1_000_000, 9_999_999)}"
    ami = AMIConnection(AMIConfig.from_settings())
    try:
        ami.connect()
        ami.login()
        ami.send_action({"Action": "SimCall", "Scenario": scenario, "Caller": dial_number(number), "Extensions": operator.extension, "Ring": 4, "Talk": 10})
    except AMIError as error:
        return HttpResponse(str(error), status=502, content_type="text/plain; charset=utf-8")
    finally:
        ami.close()
    return HttpResponse(status=204)
