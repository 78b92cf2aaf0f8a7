from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from history.forms import CallFilterForm
from history.services import call_visible_to, reminders_for

PAGE_SIZE = 50


@login_required
def call_list(request):
    form = CallFilterForm(request.GET or None)
    calls = call_visible_to(request.user)
    if form.is_valid() and form.cleaned_data["since"]:
        calls = calls.filter(started_at__date__gte=form.cleaned_data["since"])
    page = Paginator(calls, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "history/call_list.html", {"form": form, "page": page})


@login_required
def reminder_list(request):
    return render(request, "history/reminder_list.html", {"calls": reminders_for(request.user)})
