"""Smart transfer in the admin: the fallback chain, operators' availability, trying a number, the decisions."""

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from clients.models import Client
from telephony.models import Operator, RouteDecision, RouteFallback
from telephony.presence import presence_claim

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def nobody_present():
    cache.clear()


@pytest.fixture
def managed(operator_user):
    return Client.objects.create(last_name="Савицкая", first_name="Наталья", phone_mobile="+74957894561", manager=operator_user)


def test_the_chain_is_edited_in_order_and_links_to_trying_a_number(admin_client):
    response = admin_client.post(reverse("admin:telephony_routefallback_add"), {"position": "1", "extension": "600", "is_active": "on", "description": "группа менеджеров"})
    assert response.status_code == 302
    assert admin_client.post(reverse("admin:telephony_routefallback_add"), {"position": "2", "extension": "6 0;0", "is_active": "on"}).status_code == 200
    assert list(RouteFallback.objects.values_list("extension", flat=True)) == ["600"]
    page = admin_client.get(reverse("admin:telephony_routefallback_changelist")).content.decode()
    assert "Добавить запасной шаг" in page and reverse("admin:telephony_routefallback_try") in page and "Проверить номер" in page


def test_trying_a_number_shows_the_decision_and_its_time_and_writes_nothing(admin_client, managed, operator_user):
    RouteFallback.objects.create(position=1, extension="600")
    url = reverse("admin:telephony_routefallback_try")
    page = admin_client.get(url, {"number": "8 (495) 789-45-61", "did": "", "attempt": "0"}).content.decode()
    assert 'data-field="extension">600<' in page and "менеджер недоступен: запасной шаг 1" in page and "Савицкая Наталья" in page
    assert 'data-field="elapsed_ms">' in page
    presence_claim(operator_user.pk, "page-1")
    page = admin_client.get(url, {"number": "84957894561"}).content.decode()
    assert 'data-field="extension">100<' in page and "менеджер доступен" in page
    page = admin_client.get(url, {"number": "84991112233"}).content.decode()
    assert "пусто: обычный маршрут диалплана" in page and "неизвестный номер" in page
    assert not RouteDecision.objects.exists()


def test_trying_a_number_needs_the_admin(operator_client):
    assert operator_client.get(reverse("admin:telephony_routefallback_try"), {"number": "84957894561"}).status_code == 302


def test_operators_are_marked_available_in_the_list_which_shows_an_open_page(admin_client, operator_user):
    operator = Operator.objects.get(user=operator_user)
    changelist = reverse("admin:telephony_operator_changelist")
    page = admin_client.get(changelist).content.decode()
    assert "Отмечен как доступный" in page and "Страница оператора открыта" in page
    response = admin_client.post(changelist, {
        "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-id": str(operator.pk), "form-0-available": "on", "_save": "1",
    })
    assert response.status_code == 302
    operator.refresh_from_db()
    assert operator.available


def test_decisions_are_listed_read_only(admin_client, managed):
    RouteDecision.objects.create(linkedid="1733.1", number="+74957894561", client=managed, extension="600", reason="manager_away", step=1, elapsed_ms=1.5, created_at=timezone.now())
    page = admin_client.get(reverse("admin:telephony_routedecision_changelist")).content.decode()
    assert "менеджер недоступен: запасной шаг 1" in page and "1733.1" in page
    assert admin_client.get(reverse("admin:telephony_routedecision_add")).status_code == 403
