import pytest
from django.urls import reverse

from clients.models import AdSource, CardType, Client
from tests.helpers import make_call

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
    with django_assert_num_queries(4):  # session, user with their operator (the header shows the extension), count, one page of 25
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


def unattached_call(phone: str, **fields):
    return make_call(None, phone=phone, **fields)


def test_creating_a_client_attaches_their_numbers_earlier_calls(operator_client):
    other = Client.objects.create(last_name="Орлов")
    before = unattached_call("+79161234567")
    work = unattached_call("+74957894561")
    chosen = unattached_call("+79161234567", client=other)  # somebody chose its caller: left alone
    stranger = unattached_call("+79160000000")
    operator_client.post(reverse("clients:create"), {"last_name": "Новикова", "phone_mobile": "8 (916) 123-45-67", "phone_work": "4957894561"})
    client = Client.objects.get(last_name="Новикова")
    for call, owner in ((before, client), (work, client), (chosen, other), (stranger, None)):
        call.refresh_from_db()
        assert call.client == owner


def test_editing_a_client_attaches_the_calls_of_the_number_added(operator_client):
    savitskaya = Client.objects.create(last_name="Савицкая", phone_mobile="+74957894561")
    call = unattached_call("+79161234567")
    typed = {"last_name": "Савицкая", "phone_mobile": "+74957894561", "phone_home": "89161234567"}
    response = operator_client.post(reverse("clients:edit", args=[savitskaya.pk]), typed)
    assert response.status_code == 302
    call.refresh_from_db()
    assert call.client == savitskaya


def test_a_number_two_clients_share_attaches_its_calls_to_neither(operator_client):
    orlov = Client.objects.create(last_name="Орлов", phone_home="+74993690439")
    call = unattached_call("+74993690439")
    operator_client.post(reverse("clients:create"), {"last_name": "Орлова", "phone_mobile": "+74993690439", "confirm_duplicates": str(orlov.pk)})
    assert Client.objects.filter(last_name="Орлова").exists()
    call.refresh_from_db()
    assert call.client is None


def test_a_number_left_to_one_client_attaches_its_calls_to_them(operator_client):
    orlov = Client.objects.create(last_name="Орлов", phone_home="+74993690439")
    orlova = Client.objects.create(last_name="Орлова", phone_mobile="+74993690439")
    call = unattached_call("+74993690439")
    operator_client.post(reverse("clients:edit", args=[orlova.pk]), {"last_name": "Орлова", "phone_mobile": "+79161234567"})
    call.refresh_from_db()
    assert call.client == orlov


def test_creating_a_client_with_anothers_phone_warns_and_keeps_what_was_typed(operator_client):
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", phone_work="+74957894561")
    typed = {"last_name": "Новикова", "first_name": "Ирина", "phone_mobile": "8 (495) 789-45-61", "city": "Казань", "comment": "важно"}
    response = operator_client.post(reverse("clients:create"), typed)
    assert response.status_code == 200 and not Client.objects.filter(last_name="Новикова").exists()
    page = response.content.decode()
    assert "Этот телефон или номер карты уже есть у другого клиента" in page
    assert f'href="{reverse("clients:detail", args=[savitskaya.pk])}"' in page and "Савицкая Наталья" in page
    assert "+7 495 789-45-61" in page
    assert f'name="confirm_duplicates" value="{savitskaya.pk}"' in page and "Всё равно создать" in page
    form = response.context["form"]
    assert {name: form[name].value() for name in typed} == typed
    response = operator_client.post(reverse("clients:create"), typed | {"confirm_duplicates": str(savitskaya.pk)})
    assert response.status_code == 302
    assert Client.objects.get(last_name="Новикова").phone_mobile == "+74957894561"


def test_a_card_number_already_given_warns_whatever_its_case(operator_client):
    holder = Client.objects.create(last_name="Орлов", card_number="GOLD-77")
    response = operator_client.post(reverse("clients:create"), {"last_name": "Орлова", "card_number": "gold-77"})
    assert [duplicate.client for duplicate in response.context["duplicates"]] == [holder]
    assert not Client.objects.filter(last_name="Орлова").exists()


def test_a_confirmation_covers_only_the_clients_it_was_shown(operator_client):
    first = Client.objects.create(last_name="Орлов", phone_home="+74993690439")
    second = Client.objects.create(last_name="Орлова", phone_mobile="+79161234567")
    typed = {"last_name": "Орлов-младший", "phone_mobile": "+74993690439", "phone_home": "+79161234567"}
    response = operator_client.post(reverse("clients:create"), typed | {"confirm_duplicates": str(first.pk)})
    assert {duplicate.client for duplicate in response.context["duplicates"]} == {first, second}
    assert not Client.objects.filter(last_name="Орлов-младший").exists()
    operator_client.post(reverse("clients:create"), typed | {"confirm_duplicates": f"{first.pk},{second.pk}"})
    assert Client.objects.filter(last_name="Орлов-младший").exists()


def test_a_new_client_with_nothing_in_common_is_created_at_once(operator_client):
    Client.objects.create(last_name="Савицкая", phone_mobile="+74957894561", card_number="A-1")
    response = operator_client.post(reverse("clients:create"), {"last_name": "Савицкая", "phone_mobile": "+74957894562", "card_number": "A-2"})
    assert response.status_code == 302


def test_editing_a_client_does_not_warn_about_their_own_details(operator_client):
    savitskaya = Client.objects.create(last_name="Савицкая", phone_mobile="+74957894561", card_number="A-1")
    typed = {"last_name": "Савицкая", "phone_mobile": "+74957894561", "card_number": "A-1"}
    response = operator_client.post(reverse("clients:edit", args=[savitskaya.pk]), typed)
    assert response.status_code == 302


@pytest.mark.parametrize("typed", ["8 (903) 123-45-67", "+7 (903) 123-45-67"])
def test_a_phone_typed_with_brackets_and_dashes_fits_the_input_and_is_saved(operator_client, typed):
    page = operator_client.get(reverse("clients:create")).content.decode()
    maxlength = int(page.split('name="phone_mobile"')[1].split('maxlength="')[1].split('"')[0])
    assert maxlength >= len(typed)
    response = operator_client.post(reverse("clients:create"), {"last_name": "Новикова", "phone_mobile": typed, "phone_home": typed})
    assert response.status_code == 302
    assert Client.objects.get().phone_mobile == "+79031234567"


def test_the_lists_pages_keep_the_search(operator_client):
    Client.objects.bulk_create([Client(last_name=f"Иванов{number:02d}") for number in range(30)])
    page = operator_client.get(reverse("clients:list"), {"q": "Иванов"}).content.decode()
    assert 'href="?q=%D0%98%D0%B2%D0%B0%D0%BD%D0%BE%D0%B2&amp;page=2"' in page
