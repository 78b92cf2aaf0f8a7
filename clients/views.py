from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from clients.forms import ClientForm
from clients.models import Client
from clients.services import client_search

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
    if form.is_valid():
        client = form.save()
        messages.success(request, _("Client %(name)s created.") % {"name": client})
        return redirect("clients:detail", pk=client.pk)
    return render(request, "clients/client_form.html", {"form": form})


@login_required
def client_edit(request, pk):
    client = get_object_or_404(Client, pk=pk)
    form = ClientForm(request.POST if request.method == "POST" else None, instance=client)
    if form.is_valid():
        form.save()
        messages.success(request, _("Changes saved."))
        return redirect("clients:detail", pk=client.pk)
    return render(request, "clients/client_form.html", {"form": form, "client": client})
