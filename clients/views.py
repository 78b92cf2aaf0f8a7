from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from clients.forms import ClientForm
from clients.models import Client
from clients.services import client_duplicates, client_save, client_search

PAGE_SIZE = 25


@login_required
def client_list(request):
    query = request.GET.get("q", "")
    page = Paginator(client_search(query), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "clients/client_list.html", {"page": page, "query": query})


@login_required
def client_detail(request, pk):
    client = get_object_or_404(Client.objects.select_related("card_type", "ad_source", "manager"), pk=pk)
    return render(request, "clients/client_detail.html", {"client": client, "calls": client.calls.select_related("operator", "reason", "result")[:20]})


@login_required
def client_create(request):
    data = request.POST if request.method == "POST" else None
    form = ClientForm(data, initial={"phone_mobile": request.GET.get("phone", "")})
    duplicates = []
    if form.is_valid():
        client = form.save(commit=False)
        duplicates = client_duplicates(client)
        # «Create anyway» confirms the clients it was shown; one that appeared since is shown again.
        confirmed = set(request.POST.get("confirm_duplicates", "").split(","))
        if not {str(duplicate.client.pk) for duplicate in duplicates} - confirmed:
            client_save(client)
            messages.success(request, _("Client %(name)s created.") % {"name": client})
            return redirect("clients:detail", pk=client.pk)
    confirm = ",".join(str(duplicate.client.pk) for duplicate in duplicates)
    return render(request, "clients/client_form.html", {"form": form, "duplicates": duplicates, "confirm_duplicates": confirm})


@login_required
def client_edit(request, pk):
    client = get_object_or_404(Client, pk=pk)
    phones_before = client.phones
    form = ClientForm(request.POST if request.method == "POST" else None, instance=client)
    if form.is_valid():
        client_save(form.save(commit=False), phones_before=phones_before)
        messages.success(request, _("Changes saved."))
        return redirect("clients:detail", pk=client.pk)
    return render(request, "clients/client_form.html", {"form": form, "client": client})
