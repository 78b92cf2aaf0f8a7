import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.helpers import make_call

pytestmark = pytest.mark.django_db


def test_an_operator_sees_only_their_own_calls(operator_client, operator_user, django_user_model):
    other = django_user_model.objects.create_user("operator2")
    make_call(operator_user, linkedid="1.1")
    make_call(other, linkedid="1.2")
    calls = operator_client.get(reverse("history:list")).context["page"].object_list
    assert [c.linkedid for c in calls] == ["1.1"]


def test_show_from_filters_by_date_typed_as_dd_mm_yyyy(operator_client, operator_user):
    make_call(operator_user, linkedid="1.1", started_at=timezone.now() - datetime.timedelta(days=10))
    make_call(operator_user, linkedid="1.2")
    since = (timezone.localdate() - datetime.timedelta(days=1)).strftime("%d.%m.%Y")
    response = operator_client.get(reverse("history:list"), {"since": since})
    assert [c.linkedid for c in response.context["page"].object_list] == ["1.2"]
    assert since in response.content.decode()


def test_a_bad_date_is_reported_and_kept(operator_client):
    response = operator_client.get(reverse("history:list"), {"since": "32.13.2026"})
    assert response.context["form"].errors["since"]
    assert "32.13.2026" in response.content.decode()


def test_history_needs_a_login(client):
    assert client.get(reverse("history:list")).status_code == 302
