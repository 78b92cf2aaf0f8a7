import datetime

import psycopg
import pytest
from django.db import OperationalError, connection, transaction

from clients.models import CardType, Client
from clients.phones import phone_normalize
from clients.services import client_find_by_phone, client_search, clients_by_phones, clients_with_phone, clients_with_phones
from tests.conftest import needs

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
    for plan in (clients_with_phone("+74950000042").explain(), clients_with_phones({"+74950000042", "+79160000042"}).explain()):
        if connection.vendor == "postgresql":
            assert "Seq Scan on clients_client" not in plan, plan
        else:
            assert "MULTI-INDEX OR" in plan, plan
        for column in ("mobile", "home", "work"):  # a whole number through its reversed digits' index
            assert f"client_{column}_rev_idx" in plan, plan


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


def test_search_folds_yo_into_ye_both_ways():
    artyom = Client.objects.create(last_name="Соколов", first_name="Артём")
    fyodorova = Client.objects.create(last_name="Федорова", first_name="Анна")
    assert list(client_search("Артем")) == [artyom]
    assert list(client_search("АРТЁМ")) == [artyom]
    assert list(client_search("Фёдорова")) == [fyodorova]
    assert list(client_search("соколов артем")) == [artyom]


def test_search_matches_the_beginnings_of_name_words_in_any_order():
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", middle_name="Геннадьевна")
    Client.objects.create(last_name="Иванова", first_name="Наталия")
    assert list(client_search("натал сав")) == [savitskaya]
    assert list(client_search("Савицкая Наталья Геннадьевна")) == [savitskaya]
    assert list(client_search("савицкая ген")) == [savitskaya]
    assert list(client_search("вицкая")) == [], "the middle of a word is not its beginning"


def test_search_finds_a_phone_by_its_last_digits():
    savitskaya = Client.objects.create(last_name="Савицкая", phone_work="+74957894561")
    ivanov = Client.objects.create(last_name="Иванов", phone_mobile="+79161234561")
    assert list(client_search("4561")) == [ivanov, savitskaya]
    assert list(client_search("89-45-61")) == [savitskaya]
    assert list(client_search("789 45 61")) == [savitskaya]
    assert list(client_search("8 (495) 789-45-61")) == [savitskaya]
    assert list(client_search("561")) == [], "three digits are not enough for a phone"


def test_search_finds_a_card_by_its_beginning_or_end():
    holder = Client.objects.create(last_name="Орлов", card_number="GOLD-0012-3456")
    Client.objects.create(last_name="Орлова", card_number="SILVER-77")
    assert list(client_search("gold-00")) == [holder]
    assert list(client_search("3456")) == [holder]
    assert list(client_search("12-3456")) == [holder]
    assert list(client_search("gold_0012")) == list(client_search("gold%")) == [], "wildcards are characters like any other"


@pytest.mark.parametrize("typed", ["а", "7", "12", "+7", " - "])
def test_too_short_input_finds_nobody_without_a_query(typed, django_assert_num_queries):
    Client.objects.create(last_name="Арбузов", phone_mobile="+79161234567", card_number="12")
    with django_assert_num_queries(0):
        assert list(client_search(typed)) == []


def test_search_keys_follow_every_write():
    client = Client.objects.create(last_name="Ёлкин", first_name="Пётр", phone_mobile="89161234567", card_number="AB-12")
    assert (client.search_name, client.search_first_name) == ("елкин петр", "петр")
    assert (client.phone_mobile_reversed, client.phone_home_reversed) == ("76543216197", None)
    assert (client.search_card, client.search_card_reversed) == ("ab-12", "21-ba")
    client.first_name, client.phone_mobile = "Семён", "+74957894561"
    client.save(update_fields=["first_name", "phone_mobile"])
    assert Client.objects.filter(search_first_name="семен", phone_mobile_reversed="16549875947").exists()


def explain_search(typed: str) -> str:
    return client_search(typed).explain()


@pytest.mark.parametrize("typed", ["ивано", "петр ивано", "4567", "card-0004"])
def test_every_search_is_answered_from_indexes_on_sqlite(typed):
    needs_vendor("sqlite")
    Client.objects.bulk_create(
        Client(last_name=f"Иванов{i}", first_name="Петр", phone_mobile=f"+7916{i:07d}", card_number=f"CARD-{i:04d}") for i in range(2000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE clients_client")
    plan = explain_search(typed)
    assert "SCAN clients_client" not in plan.replace("SCAN clients_client USING INDEX", ""), plan
    assert "MULTI-INDEX OR" in plan, plan


@pytest.mark.parametrize("typed", ["ивано", "петр ивано", "артем", "4567", "card-0004", "8 916 000-45-67"])
def test_every_search_is_answered_from_indexes_on_postgresql(typed):
    needs_vendor("postgresql")
    Client.objects.bulk_create((varied_client(i) for i in range(5000)), batch_size=1000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE clients_client")
    for query in (client_search(typed), client_search(typed).order_by()):  # the list's page, and a count
        plan = query.explain()
        assert "Seq Scan on clients_client" not in plan, plan
        assert "Index" in plan, plan


LETTERS = "абвгдежзийклмнопрстуфхцчшщэюя"


def varied_client(i: int) -> Client:
    """Client number i of a base whose names, phones and cards spread like real ones: no prefix matches many."""
    word = "".join(LETTERS[i // len(LETTERS) ** k % len(LETTERS)] for k in range(3))
    last, first = ("Иванов", "Петр") if i % 500 == 0 else (word.capitalize() + "ов", word[::-1].capitalize())
    return Client(last_name=last, first_name=first, phone_mobile=f"+7916{i * 7919 % 10**7:07d}",
                  phone_home=f"+7495{i:07d}" if i % 2 else None, card_number=f"CARD-{i:04d}")


def needs_vendor(vendor: str) -> None:
    """PostgreSQL is a service a run may lack (STRICT fails then); SQLite's plans are simply not PostgreSQL's business."""
    if vendor == "sqlite":
        if connection.vendor != "sqlite":
            pytest.skip(f"a sqlite test; the database is {connection.vendor}")
        return
    needs(connection.vendor == vendor, f"a {vendor} test; the database is {connection.vendor}")


def test_the_lookup_gives_what_the_orm_gives_card_type_included(django_assert_num_queries):
    gold = CardType.objects.create(name="Золотая")
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", phone_mobile="84957894561", card_type=gold,
                                       birth_day=8, call_back_on=datetime.date(2026, 6, 21), blacklisted=True)
    orlov = Client.objects.create(last_name="Орлов", phone_home="84993690439")
    orlova = Client.objects.create(last_name="Орлова", phone_work="84993690439", card_type=gold)
    with django_assert_num_queries(2):
        one = client_find_by_phone("8 (495) 789-45-61")
        batch = clients_by_phones({"+74957894561", "+74993690439"})
        assert [client.card_type for client in [*one, *batch["+74993690439"]]] == [gold, None, gold]
    assert state(one) == state([savitskaya]) == state(batch["+74957894561"]) == state(clients_with_phone("+74957894561"))
    assert state(batch["+74993690439"]) == state([orlov, orlova])
    assert one[0].card_type.name == "Золотая" and one[0].call_back_on == datetime.date(2026, 6, 21)


def state(clients) -> list[dict]:
    return [{name: value for name, value in vars(client).items() if name != "_state"} for client in clients]


def test_the_lookup_is_prepared_once_per_connection_on_postgresql():
    needs_vendor("postgresql")
    Client.objects.create(last_name="Савицкая", phone_mobile="84957894561")
    for _ in range(6):
        assert len(client_find_by_phone("84957894561")) == 1
        assert len(clients_by_phones({"+74957894561", "+79990000000"})["+74957894561"]) == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0] for row in cursor.fetchall()]
    assert sum('"clients_client"."phone_mobile_reversed" = $1' in sql for sql in statements) == 1, statements
    assert sum('"clients_client"."phone_mobile_reversed" = ANY($1::text[])' in sql for sql in statements) == 1, statements


@pytest.mark.django_db(transaction=True)
def test_the_lookup_outlives_a_rollback_and_a_dropped_connection():
    needs_vendor("postgresql")
    Client.objects.create(last_name="Савицкая", phone_mobile="84957894561")
    for _ in range(6):
        client_find_by_phone("84957894561")
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        client_find_by_phone("84957894561")
        1 / 0  # a rollback: psycopg deallocates its prepared statements
    assert len(client_find_by_phone("84957894561")) == 1
    params = connection.get_connection_params()
    with psycopg.connect(**{key: params[key] for key in ("dbname", "user", "password", "host", "port") if key in params},
                         autocommit=True) as killer:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            killer.execute("SELECT pg_terminate_backend(%s)", [cursor.fetchone()[0]])
    with pytest.raises(OperationalError):
        client_find_by_phone("84957894561")
    connection.close()  # as the listener and every request do with a broken connection
    for _ in range(6):
        assert len(client_find_by_phone("84957894561")) == 1
