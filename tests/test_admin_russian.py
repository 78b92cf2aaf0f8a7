"""The admin's Russian: a verb takes the model's name in the accusative («Добавить причину звонка»)."""

import html
import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse
from django.utils import timezone

from clients.models import AdSource, CardType, Client
from history.models import Call, CallReason, CallResult, ContactReason
from simplecalls.admin import RussianNamesMixin
from telephony.models import Operator

pytestmark = pytest.mark.django_db

ACCUSATIVE = {
    Client: "клиента",
    AdSource: "рекламу",
    CardType: "вид карты",
    CallReason: "причину звонка",
    CallResult: "результат звонка",
    ContactReason: "причину обращения",
    Call: "звонок",
    Operator: "оператора",
    User: "пользователя",
    Group: "группу",
}
MAKERS = {
    Client: lambda: Client.objects.create(last_name="Савицкая"),
    AdSource: lambda: AdSource.objects.create(name="Радио"),
    CardType: lambda: CardType.objects.create(name="Золотая"),
    CallReason: lambda: CallReason.objects.create(name="Запись"),
    CallResult: lambda: CallResult.objects.create(name="Записан"),
    ContactReason: lambda: ContactReason.objects.create(name="Консультация"),
    Call: lambda: Call.objects.create(linkedid="t-1", direction="in", phone="+74957894561", started_at=timezone.now()),
    Operator: lambda: Operator.objects.create(user=User.objects.create_user("operator9"), extension="109", channel="PJSIP/109"),
    User: lambda: User.objects.create_user("operator9"),
    Group: lambda: Group.objects.create(name="Старшие операторы"),
}


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def texts(page: str) -> dict[str, str]:
    """The page's <title>, <h1>, add button and breadcrumbs, as plain text."""
    def one(pattern):
        found = re.search(pattern, page, re.S)
        return " ".join(html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).split()) if found else ""
    return {
        "title": one(r"<title>(.*?)</title>"), "h1": one(r"<h1[^>]*>(.*?)</h1>"),
        "add": one(r'<ul class="object-tools">.*?<a [^>]*class="addlink"[^>]*>(.*?)</a>'), "breadcrumbs": one(r'<div class="breadcrumbs">(.*?)</div>'),
    }


@pytest.mark.parametrize("model", ACCUSATIVE)
def test_the_changelist_asks_to_select_and_add_in_the_accusative(admin_client, model):
    shown = texts(admin_client.get(url(model, "changelist")).content.decode())
    name = ACCUSATIVE[model]
    assert shown["h1"] == f"Выберите {name} для изменения"
    assert shown["title"].startswith(f"Выберите {name} для изменения |")
    assert shown["add"] == f"Добавить {name}"


@pytest.mark.parametrize("model", ACCUSATIVE)
def test_the_add_and_change_pages_are_titled_in_the_accusative(admin_client, model):
    name = ACCUSATIVE[model]
    shown = texts(admin_client.get(url(model, "add")).content.decode())
    assert shown["h1"] == f"Добавить {name}"
    assert shown["title"].startswith(f"Добавить {name} |")
    assert shown["breadcrumbs"].endswith(f"› Добавить {name}")
    entry = MAKERS[model]()
    shown = texts(admin_client.get(url(model, "change", entry.pk)).content.decode())
    assert shown["h1"] == f"Изменить {name}"
    assert shown["title"].startswith(f"{entry} | Изменить {name} |")


@pytest.mark.parametrize("model", ACCUSATIVE)
def test_the_delete_page_asks_in_the_accusative(admin_client, model):
    entry = MAKERS[model]()
    page = html.unescape(admin_client.get(url(model, "delete", entry.pk)).content.decode())
    assert f"Вы уверены, что хотите удалить {ACCUSATIVE[model]} \"{entry}\"?" in page


def test_a_popup_to_pick_a_client_asks_for_the_client(admin_client):
    shown = texts(admin_client.get(url(Client, "changelist"), {"_popup": "1", "_to_field": "id"}).content.decode())
    assert shown["h1"] == "Выберите клиента"


def test_a_user_who_may_only_view_is_asked_to_select_for_viewing(client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_callreason"))
    client.force_login(viewer)
    shown = texts(client.get(url(CallReason, "changelist")).content.decode())
    assert shown["h1"] == "Выберите причину звонка для просмотра" and shown["add"] == ""


def test_every_model_in_the_admin_has_its_accusative_name():
    assert set(ACCUSATIVE) <= set(admin.site._registry)
    for model, model_admin in admin.site._registry.items():
        assert isinstance(model_admin, RussianNamesMixin), model
        assert model_admin.name_accusative, model


def test_the_admin_index_lists_the_models_in_russian(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    for name in ["Клиенты", "Реклама", "Виды карт", "Причины звонков", "Результаты звонков", "Причины обращения", "Звонки", "Операторы"]:
        assert f">{name}</a>" in page, name
