"""Missed calls to call back: one row per number, for whoever is to call it back."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from history.services import missed_calls_for, missed_numbers, missed_numbers_detail

PAGE_SIZE = 50


@login_required
def missed_list(request):
    calls = missed_calls_for(request.user)
    # One read of the grouping, paged here: a count and a page would run the whole query twice.
    page = Paginator(list(missed_numbers(calls)), PAGE_SIZE).get_page(request.GET.get("page"))
    numbers = missed_numbers_detail(request.user, page.object_list)
    return render(request, "history/missed_list.html", {"page": page, "numbers": numbers})
