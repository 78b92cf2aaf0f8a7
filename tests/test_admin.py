import pytest
from django.core.management import call_command
from django.urls import reverse

from clients.models import AdSource, CardType
from history.models import CallReason, CallResult, ContactReason

pytestmark = pytest.mark.django_db
DICTIONARIES = [CallReason, CallResult, ContactReason, AdSource, CardType]


@pytest.mark.parametrize("model", DICTIONARIES)
def test_an_administrator_adds_reorders_and_deactivates_entries(admin_client, model):
    base = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    response = admin_client.post(reverse(f"{base}_add"), {"name": "Пробная запись", "is_active": "on", "position": "5"})
    assert response.status_code == 302
    entry = model.objects.get(name="Пробная запись")
    response = admin_client.post(reverse(f"{base}_change", args=[entry.pk]), {"name": "Пробная запись", "position": "7"})
    assert response.status_code == 302
    entry.refresh_from_db()
    assert (entry.is_active, entry.position) == (False, 7)
    assert "Пробная запись" in admin_client.get(reverse(f"{base}_changelist")).content.decode()


@pytest.mark.parametrize("model", DICTIONARIES)
def test_the_seed_fixture_fills_every_dictionary_in_order(model):
    call_command("loaddata", "dictionaries", verbosity=0)
    positions = list(model.objects.values_list("position", flat=True))
    assert len(positions) >= 4 and positions == sorted(positions)


def test_an_operator_cannot_open_the_admin(operator_client):
    response = operator_client.get(reverse("admin:index"))
    assert response.status_code == 302


def test_the_operator_admin_lists_extensions(admin_client, operator_user):
    page = admin_client.get(reverse("admin:telephony_operator_changelist")).content.decode()
    assert "PJSIP/100" in page
