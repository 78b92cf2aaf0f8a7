"""The call panel: the pop-up's content, its registration form and the actions on it; click-to-call."""

import dataclasses

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from clients.services import client_find_by_phone
from history.models import Call
from history.services import call_visible_to, client_recent_calls
from telephony import services
from telephony.ami import AMIError
from telephony.forms import CallerForm, ChosenClientForm, OriginateForm, RegistrationForm


def visible_call(request, pk, related=("operator", "client__card_type")) -> Call:
    """The call, if it is this operator's (staff may open any); 404 otherwise.

    The operator who took the call, nearly every request here, is told by the row itself: the rule's other cases
    (rung by a ring group, staff, supervisors) cost a query for the permissions and one for the call.
    """
    calls = Call.objects.select_related(*related) if related else Call.objects.all()
    try:
        call = calls.get(pk=pk)
    except Call.DoesNotExist:
        raise Http404 from None
    if call.operator_id != request.user.pk and not call_visible_to(request.user).filter(pk=pk).exists():
        raise Http404
    return call


def done() -> HttpResponse:
    response = HttpResponse(status=204)
    response["X-Call-Done"] = "1"
    return response


def panel(request, call: Call, *, registration=None, caller=None, search: str = "", status: int = 200):
    clients = [call.client] if call.client_id else client_find_by_phone(call.phone)
    client = clients[0] if len(clients) == 1 else None
    if client is None and caller is None:
        caller = CallerForm(prefix="caller", initial={"phone_mobile": call.phone})
    if client is not None and not call.caller_kind and registration is None:
        registration = RegistrationForm(instance=call, initial={"caller_kind": Call.CallerKind.REGULAR})
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
        services.call_client_create(call=call, client=caller.save(commit=False))
        return panel(request, call, registration=RegistrationForm(initial=request.POST.dict(), instance=call))
    creating = caller is not None and caller.has_details()
    valid = registration.is_valid()
    if creating:
        valid = caller.is_valid() and valid
    if not valid:
        return panel(request, call, registration=registration, caller=caller, status=400)
    services.call_registration_save(call=registration.save(commit=False), new_client=caller.save(commit=False) if creating else None)
    return done()


@login_required
@require_POST
def call_choose_client(request, pk):
    """One of several clients with the number, or one found by the search, is the caller."""
    call = visible_call(request, pk)
    chosen = ChosenClientForm(request.POST)
    if not chosen.is_valid():
        raise Http404
    services.call_client_choose(call=call, client=chosen.cleaned_data["client"])
    return panel(request, call, registration=RegistrationForm(initial=request.POST.dict(), instance=call))


@login_required
@require_POST
def call_close(request, pk):
    """The operator closed the form without registering: the call stops being pending."""
    services.call_close(call=visible_call(request, pk, related=()))
    return done()


@login_required
@require_POST
def pending_clear(request):
    """Close every call waiting in «Calls while you were away» at once."""
    services.calls_pending_clear(user=request.user)
    return HttpResponse(status=204)


@login_required
@require_POST
def demo_call(request):
    """Demo mode only: ask the PBX simulator for a call to this operator."""
    operator = getattr(request.user, "operator", None)
    scenario = request.POST.get("scenario", "inbound_answered")
    if not settings.DEMO or operator is None or scenario not in services.DEMO_SCENARIOS:
        raise Http404
    try:
        services.demo_call_place(extension=operator.extension, scenario=scenario, known_caller=request.POST.get("caller") == "known")
    except AMIError as error:
        return HttpResponse(str(error), status=502, content_type="text/plain; charset=utf-8")
    return HttpResponse(status=204)


@login_required
@require_POST
def originate(request):
    """Click-to-call: JSON {"status": "dialling" | "duplicate" | "refused", "message", "call"}."""
    form = OriginateForm(request.POST)
    if not form.is_valid():
        message = " ".join(error for errors in form.errors.values() for error in errors)
        return JsonResponse({"status": "refused", "message": message, "call": None}, status=400)
    answer = services.call_originate_request(user=request.user, phone=form.cleaned_data["phone"], client_id=form.cleaned_data["client"])
    return JsonResponse(dataclasses.asdict(answer))
