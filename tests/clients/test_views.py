import pytest
from django.urls import reverse

from clients.models import AdSource, CardType, Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["clients:list", "clients:create"])
def test_client_pages_need_a_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_the_card_needs_a_login(client):
    savitskaya = Client.objects.create(last_name="Савицкая")
    assert client.get(reverse("clients:detail", args=[savitskaya.pk])).status_code == 302


def test_the_list_searches_and_pages_in_a_fixed_number_of_queries(operator_client, django_assert_num_queries):
    card = CardType.objects.create(name="Золотая")
    Client.objects.bulk_create(Client(last_name=f"Иванов{i:03d}", phone_mobile=f"+7916{i:07d}", card_type=card) for i in range(60))
    with django_assert_num_queries(5):  # session, user, count, operator (in the header), one page of 25
        response = operator_client.get(reverse("clients:list"), {"q": "иванов"})
    assert response.status_code == 200
    page = response.context["page"]
    assert page.paginator.count == 60 and len(page.object_list) == 25
    assert "Золотая" in response.content.decode()
    second = operator_client.get(reverse("clients:list"), {"q": "иванов", "page": 3})
    assert len(second.context["page"].object_list) == 10


def test_the_list_finds_a_client_by_phone_typed_any_way(operator_client):
    Client.objects.create(last_name="Савицкая", phone_home="+74957894561")
    response = operator_client.get(reverse("clients:list"), {"q": "8 495 789 45 61"})
    assert [c.last_name for c in response.context["page"]] == ["Савицкая"]


def test_the_card_shows_the_clients_details(operator_client):
    savitskaya = Client.objects.create(
        last_name="Савицкая", first_name="Наталья", phone_mobile="84957894561", blacklisted=True, call_back_on="2026-12-01"
    )
    page = operator_client.get(reverse("clients:detail", args=[savitskaya.pk])).content.decode()
    assert "Савицкая Наталья" in page and "+7 495 789-45-61" in page
    assert "01.12.2026" in page
    assert "Клиент в черном списке" in page


def test_creating_a_client_stores_phones_as_e164(operator_client):
    response = operator_client.post(reverse("clients:create"), {"last_name": "Новикова", "phone_mobile": "8 (916) 123-45-67", "phone_work": "4957894561"})
    client = Client.objects.get(last_name="Новикова")
    assert response.status_code == 302 and response.url == reverse("clients:detail", args=[client.pk])
    assert str(client.phone_mobile) == "+79161234567" and str(client.phone_work) == "+74957894561"


def test_a_bad_phone_gets_a_message_on_the_field_and_keeps_what_was_typed(operator_client):
    typed = {"last_name": "Новикова", "first_name": "Ирина", "phone_mobile": "12345", "city": "Казань", "comment": "важно"}
    response = operator_client.post(reverse("clients:create"), typed)
    assert response.status_code == 200
    assert not Client.objects.exists()
    form = response.context["form"]
    assert list(form.errors) == ["phone_mobile"]
    page = response.content.decode()
    for value in typed.values():
        assert value in page


def test_an_impossible_birthday_is_refused(operator_client):
    response = operator_client.post(reverse("clients:create"), {"last_name": "Н", "birth_day": "31", "birth_month": "2"})
    assert "birth_day" in response.context["form"].errors


def test_an_empty_form_says_what_is_needed(operator_client):
    response = operator_client.post(reverse("clients:create"), {})
    assert response.context["form"].non_field_errors()


def test_editing_keeps_an_inactive_dictionary_entry_already_on_the_client(operator_client):
    old = AdSource.objects.create(name="Радио", is_active=False)
    AdSource.objects.create(name="Сайт")
    savitskaya = Client.objects.create(last_name="Савицкая", ad_source=old)
    form = operator_client.get(reverse("clients:edit", args=[savitskaya.pk])).context["form"]
    assert {s.name for s in form.fields["ad_source"].queryset} == {"Радио", "Сайт"}
    new_form = operator_client.get(reverse("clients:create")).context["form"]
    assert {s.name for s in new_form.fields["ad_source"].queryset} == {"Сайт"}
    response = operator_client.post(reverse("clients:edit", args=[savitskaya.pk]), {"last_name": "Савицкая", "ad_source": old.pk})
    assert response.status_code == 302
    savitskaya.refresh_from_db()
    assert savitskaya.ad_source == old


def test_the_create_form_takes_a_phone_from_the_address(operator_client):
    form = operator_client.get(reverse("clients:create"), {"phone": "+74957894561"}).context["form"]
    assert form["phone_mobile"].value() == "+74957894561"
