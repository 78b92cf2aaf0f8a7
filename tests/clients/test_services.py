import pytest
from django.db import connection

from clients.models import Client
from clients.phones import phone_normalize
from clients.services import client_find_by_phone, client_search, clients_by_phones, clients_with_phone

pytestmark = pytest.mark.django_db

CALLER_ID_FORMS = ["84957894561", "74957894561", "+74957894561", "4957894561", "8 (495) 789-45-61", "+7 (495) 789-45-61", "+7 495 789 45 61"]


@pytest.mark.parametrize("raw", CALLER_ID_FORMS)
def test_every_caller_id_form_normalises_to_the_same_e164(raw):
    assert phone_normalize(raw) == "+74957894561"


@pytest.mark.parametrize("raw", ["", "<unknown>", "anonymous", "100", "abc"])
def test_what_cannot_be_a_phone_normalises_to_empty(raw):
    assert phone_normalize(raw) == ""


@pytest.mark.parametrize("field", ["phone_mobile", "phone_home", "phone_work"])
@pytest.mark.parametrize("raw", CALLER_ID_FORMS)
def test_every_caller_id_form_finds_the_client_by_any_of_their_phones(raw, field):
    wanted = Client.objects.create(last_name="Савицкая", **{field: "+7 (495) 789-45-61"})
    Client.objects.create(last_name="Другой", phone_mobile="+74957894562", phone_home="+74997894561")
    assert client_find_by_phone(raw) == [wanted]


def test_a_shared_number_returns_every_client_that_has_it():
    husband = Client.objects.create(last_name="Орлов", phone_home="84993690439")
    wife = Client.objects.create(last_name="Орлова", phone_work="+7 499 369-04-39")
    Client.objects.create(last_name="Чужой", phone_home="84993690438")
    assert sorted(client_find_by_phone("74993690439"), key=lambda c: c.pk) == [husband, wife]


def test_an_unknown_or_missing_caller_id_finds_nobody_without_a_query(django_assert_num_queries):
    Client.objects.create(last_name="Савицкая", phone_mobile="84957894561")
    with django_assert_num_queries(0):
        assert client_find_by_phone("<unknown>") == []
    assert client_find_by_phone("84950000000") == []


def test_the_lookup_is_one_query(django_assert_num_queries):
    Client.objects.create(last_name="Савицкая", phone_mobile="84957894561")
    with django_assert_num_queries(1):
        [found] = client_find_by_phone("4957894561")
        assert found.card_type is None  # loaded by the same query


def test_the_lookup_is_answered_from_the_phone_indexes():
    Client.objects.bulk_create(Client(last_name=f"К{i}", phone_mobile=f"+7916{i:07d}", phone_home=f"+7495{i:07d}") for i in range(3000))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE" if connection.vendor == "postgresql" else "ANALYZE clients_client")
    plan = clients_with_phone("+74950000042").explain()
    if connection.vendor == "postgresql":
        assert "Seq Scan on clients_client" not in plan, plan
        for field in ("phone_mobile", "phone_home", "phone_work"):
            assert f"client_{field}_idx" in plan, plan
    else:
        assert "MULTI-INDEX OR" in plan, plan
        for field in ("phone_mobile", "phone_home", "phone_work"):
            assert f"client_{field}_idx" in plan, plan


def test_search_finds_by_name_phone_or_card_number():
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", phone_mobile="84957894561", card_number="A-77")
    Client.objects.create(last_name="Иванов", first_name="Иван", phone_mobile="89161234567", card_number="B-1")
    assert list(client_search("савиц")) == [savitskaya]
    assert list(client_search("Наталья Савицкая")) == [savitskaya]
    assert list(client_search("8 (495) 789-45-61")) == [savitskaya]
    assert list(client_search("a-77")) == [savitskaya]
    assert client_search("").count() == 2


def test_a_batch_of_numbers_is_looked_up_at_once(django_assert_num_queries):
    savitskaya = Client.objects.create(last_name="Савицкая", phone_mobile="+74957894561")
    orlov = Client.objects.create(last_name="Орлов", phone_home="+74993690439")
    orlova = Client.objects.create(last_name="Орлова", phone_work="+74993690439")
    with django_assert_num_queries(1):
        found = clients_by_phones({"+74957894561", "+74993690439", "+79990000000"})
    assert found == {"+74957894561": [savitskaya], "+74993690439": [orlov, orlova], "+79990000000": []}
