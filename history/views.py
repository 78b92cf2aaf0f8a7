from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from clients.models import Client
from history.browse import calls_filter, calls_summary, client_calls
from history.forms import CallFilterForm, ClientHistoryForm
from history.services import call_visible_to, reminders_for, sees_all_calls

PAGE_SIZE = 50


def calls_or_summary(request, calls, context: dict) -> dict:
    """The «Звонки» tab gets a page of the calls, «Сводные данные» (`?tab=summary`) their counts."""
    if request.GET.get("tab") == "summary":
        return context | {"tab": "summary", "summary": calls_summary(calls)}
    return context | {"tab": "calls", "page": Paginator(calls, PAGE_SIZE).get_page(request.GET.get("page"))}


@login_required
def call_list(request):
    """Every call the user may see, filtered by period, operator, call type, outcome and phone or client."""
    form = CallFilterForm(request.GET, choose_operator=sees_all_calls(request.user))
    filters = form.filters()
    calls = calls_filter(call_visible_to(request.user), **filters)
    return render(request, "history/call_list.html", calls_or_summary(request, calls, {"form": form, "filters": filters}))


@login_required
def client_history(request, pk):
    """«История обслуживания клиента»: the client's calls the user may see, from a date, registered ones unless asked for all."""
    client = get_object_or_404(Client, pk=pk)
    form = ClientHistoryForm(request.GET)
    filters = form.filters()
    calls = client_calls(call_visible_to(request.user), client.pk, **filters)
    context = {"form": form, "filters": filters, "client": client}
    return render(request, "history/client_history.html", calls_or_summary(request, calls, context))


@login_required
def call_detail(request, pk):
    """«Детально»: every field of a call the user may see, and its recordings for those allowed to listen; 404 otherwise."""
    calls = call_visible_to(request.user).select_related("contact_reason").prefetch_related("rung", "recordings")
    return render(request, "history/call_detail.html", {"call": get_object_or_404(calls, pk=pk)})


@login_required
def reminder_list(request):
    return render(request, "history/reminder_list.html", {"calls": reminders_for(request.user)})
