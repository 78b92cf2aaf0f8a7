import io
import re
import stat
from collections import Counter

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from clients.demo import fake_clients
from clients.models import CardType, Client
from clients.services import client_find_by_phone
from telephony.models import Operator

pytestmark = pytest.mark.django_db
USERS = ("operator1", "operator2", "admin")


@pytest.fixture
def passwords_file(tmp_path):
    return tmp_path / "var" / "demo-passwords"


def load_demo(passwords_file) -> str:
    out = io.StringIO()
    call_command("load_demo", passwords=passwords_file, stdout=out)
    return out.getvalue()


def printed_logins(output: str) -> dict[str, str]:
    return dict(re.findall(r"^\s+(operator1|operator2|admin)\s+(\S+)", output, re.M))


def test_the_demo_has_clients_operators_and_working_printed_passwords(passwords_file):
    output = load_demo(passwords_file)
    assert 45 <= Client.objects.count() <= 60
    assert dict(Operator.objects.values_list("user__username", "extension")) == {"operator1": "100", "operator2": "101"}
    logins = printed_logins(output)
    assert set(logins) == set(USERS)
    for username, password in logins.items():
        assert authenticate(username=username, password=password) is not None
    assert get_user_model().objects.get(username="admin").is_superuser
    assert [c.last_name for c in client_find_by_phone("84957894561")] == ["Савицкая"]
    assert len(client_find_by_phone("74993690439")) == 2


def test_a_second_run_prints_the_same_passwords_and_they_still_work(passwords_file):
    first = printed_logins(load_demo(passwords_file))
    second = printed_logins(load_demo(passwords_file))
    assert second == first and len(set(first.values())) == 3
    for username, password in second.items():
        assert authenticate(username=username, password=password) is not None


def test_the_passwords_are_kept_in_a_file_only_its_owner_reads(passwords_file):
    logins = printed_logins(load_demo(passwords_file))
    assert stat.S_IMODE(passwords_file.stat().st_mode) == 0o600
    kept = passwords_file.read_text()
    assert all(f"{username} {password}" in kept for username, password in logins.items())


def test_each_installation_gets_passwords_of_its_own(passwords_file, tmp_path):
    first = printed_logins(load_demo(passwords_file))
    get_user_model().objects.filter(username__in=USERS).delete()
    other = printed_logins(load_demo(tmp_path / "elsewhere"))
    assert all(len(password) >= 12 for password in first.values())
    assert not set(first.values()) & set(other.values())


def test_without_the_file_the_existing_users_get_new_passwords_and_are_told_so(passwords_file):
    first = printed_logins(load_demo(passwords_file))
    passwords_file.unlink()
    output = load_demo(passwords_file)
    second = printed_logins(output)
    assert "new passwords" in output
    assert set(second) == set(USERS) and not set(first.values()) & set(second.values())
    for username, password in second.items():
        assert authenticate(username=username, password=password) is not None
    assert passwords_file.exists()


def test_a_password_changed_since_is_replaced_and_told_so(passwords_file):
    load_demo(passwords_file)
    operator = get_user_model().objects.get(username="operator2")
    operator.set_password("changed-by-someone")
    operator.save()
    output = load_demo(passwords_file)
    assert "operator2" in output.split("new passwords", 1)[1].splitlines()[0]
    assert authenticate(username="operator2", password=printed_logins(output)["operator2"]) is not None


def test_a_fresh_database_gets_the_passwords_already_in_the_file(passwords_file):
    first = printed_logins(load_demo(passwords_file))
    get_user_model().objects.filter(username__in=USERS).delete()
    assert printed_logins(load_demo(passwords_file)) == first


def test_loading_the_demo_twice_adds_nobody_and_keeps_what_was_edited(passwords_file):
    load_demo(passwords_file)
    Client.objects.filter(last_name="Савицкая").update(comment="перезвонить после 18:00")
    output = load_demo(passwords_file)
    assert Client.objects.count() == 50
    assert Client.objects.get(last_name="Савицкая").comment == "перезвонить после 18:00"
    assert "0 created, 50 already there" in output


def test_a_second_run_keeps_what_the_administrator_did_to_the_dictionaries(passwords_file):
    load_demo(passwords_file)
    CardType.objects.filter(name="Золотая").update(name="Золотая+", is_active=False)
    load_demo(passwords_file)
    assert not CardType.objects.filter(name="Золотая").exists()
    assert not CardType.objects.get(name="Золотая+").is_active


def test_the_demo_clients_have_distinct_russian_names_of_their_sex(passwords_file):
    load_demo(passwords_file)
    names = list(Client.objects.values_list("last_name", "first_name", "middle_name", "sex"))
    assert len({name[:3] for name in names}) == len(names) == 50
    assert len({(last, first) for last, first, _, _ in names}) >= 45
    for last, first, middle, sex in names:
        assert middle.endswith(("вич", "ич") if sex == "m" else ("вна", "чна")), (last, first, middle, sex)
        assert last.endswith(("а", "ая")) == (sex == "f"), (last, first, middle, sex)


def test_the_demo_clients_phones_are_their_own_but_for_the_familys_home_phone(passwords_file):
    load_demo(passwords_file)
    phones = Counter(
        str(phone) for row in Client.objects.values_list("phone_mobile", "phone_home", "phone_work") for phone in row if phone
    )
    assert {phone: count for phone, count in phones.items() if count > 1} == {"+74993690439": 2}


def test_the_made_up_clients_are_the_same_on_every_run():
    assert list(fake_clients(50, seed=2016)) == list(fake_clients(50, seed=2016))
    assert list(fake_clients(50, seed=2016)) != list(fake_clients(50, seed=7))
