"""«Пропущенные»: missed calls to call back, /history/missed/."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from clients.models import Client
from history.models import Call
from history.services import MISSED_DAYS, call_register, missed_calls_for, missed_numbers, missed_numbers_detail
from tests.helpers import make_call

pytestmark = pytest.mark.django_db

NUMBER = "+79031234567"


def ago(**delta) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(**delta)


def missed(rang, *, started_at=None, **fields) -> Call:
    """An incoming call from NUMBER that rang these operators and that nobody answered."""
    started_at = started_at or ago(hours=1)
    fields = {"phone": NUMBER, "disposition": "no_answer", "started_at": started_at, "ended_at": started_at + datetime.timedelta(seconds=30)} | fields
    call = make_call(None, **fields)
    call.rung.add(*rang)
    return call


def outgoing(operator, *, started_at, answered: bool, phone=NUMBER) -> Call:
    return make_call(
        operator, direction="out", phone=phone, started_at=started_at, ended_at=started_at + datetime.timedelta(minutes=1),
        disposition="answered" if answered else "no_answer", answered_at=started_at + datetime.timedelta(seconds=5) if answered else None,
    )


def numbers_for(user) -> list:
    return missed_numbers_detail(user, missed_numbers(missed_calls_for(user)))


def phones_for(user) -> list[str]:
    return [number.call.phone for number in numbers_for(user)]


def test_a_missed_call_with_no_client_manager_is_for_every_operator_it_rang(operators, django_user_model):
    first, second = operators
    missed([first, second])
    bystander = django_user_model.objects.create_user("operator3")
    assert phones_for(first) == phones_for(second) == [NUMBER]
    assert phones_for(bystander) == []
    [number] = numbers_for(first)
    assert number.assignees == [first, second]


def test_a_missed_call_that_one_operator_was_given_is_theirs(operators):
    first, second = operators
    make_call(first, phone=NUMBER, disposition="no_answer", ended_at=timezone.now())  # a single extension: operator set, nobody rung
    assert (phones_for(first), phones_for(second)) == ([NUMBER], [])


def test_a_missed_call_of_a_client_with_a_manager_is_the_managers_alone(operators, django_user_model):
    first, second = operators
    manager = django_user_model.objects.create_user("manager", first_name="Мария")
    savitskaya = Client.objects.create(last_name="Савицкая", phone_mobile=NUMBER, manager=manager)
    missed([first, second], client=savitskaya)
    assert phones_for(manager) == [NUMBER]
    assert phones_for(first) == phones_for(second) == []
    assert numbers_for(manager)[0].assignees == [manager]


def test_a_supervisor_sees_every_missed_call_and_whom_it_is_for(operators, django_user_model):
    first, second = operators
    missed([first])
    missed([second], phone="+74957894561")
    supervisor = django_user_model.objects.create_user("supervisor")
    supervisor.user_permissions.add(Permission.objects.get(codename="view_all_calls"))
    supervisor = django_user_model.objects.get(pk=supervisor.pk)  # permissions are cached per instance
    assert {number.call.phone: number.assignees for number in numbers_for(supervisor)} == {NUMBER: [first], "+74957894561": [second]}


def test_repeated_misses_from_one_number_are_one_row_with_their_count(operators):
    first, _ = operators
    missed([first], started_at=ago(hours=3))
    latest = missed([first], started_at=ago(hours=1))
    missed([first], started_at=ago(hours=2))
    missed([first], phone="+74957894561", started_at=ago(hours=5))
    numbers = numbers_for(first)
    assert [(number.call.phone, number.count) for number in numbers] == [(NUMBER, 3), ("+74957894561", 1)]
    assert numbers[0].call == latest


def test_an_answered_call_back_clears_every_earlier_miss_from_the_number(operators):
    first, second = operators
    missed([first], started_at=ago(hours=3))
    missed([first], started_at=ago(hours=2))
    outgoing(second, started_at=ago(hours=1), answered=True)  # anybody's call-back counts
    assert phones_for(first) == []


def test_a_call_back_nobody_answered_clears_nothing(operators):
    first, _ = operators
    missed([first], started_at=ago(hours=2))
    outgoing(first, started_at=ago(hours=1), answered=False)
    assert phones_for(first) == [NUMBER]


def test_an_outgoing_call_before_the_miss_does_not_clear_it(operators):
    first, _ = operators
    outgoing(first, started_at=ago(hours=3), answered=True)
    missed([first], started_at=ago(hours=2))
    assert phones_for(first) == [NUMBER]


def test_a_call_back_to_another_number_does_not_clear_it(operators):
    first, _ = operators
    missed([first], started_at=ago(hours=2))
    outgoing(first, started_at=ago(hours=1), answered=True, phone="+79031234568")
    assert phones_for(first) == [NUMBER]


def test_a_later_answered_call_from_the_number_clears_it(operators):
    first, second = operators
    missed([first], started_at=ago(hours=2))
    make_call(second, phone=NUMBER, started_at=ago(hours=1), answered_at=ago(hours=1), ended_at=ago(minutes=55), disposition="answered")
    assert phones_for(first) == []


def test_registering_a_missed_call_clears_that_call(operators):
    first, _ = operators
    earlier = missed([first], started_at=ago(hours=2))
    later = missed([first], started_at=ago(hours=1))
    call_register(later)
    [number] = numbers_for(first)
    assert (number.call, number.count) == (earlier, 1)
    call_register(earlier)
    assert phones_for(first) == []


def test_only_finished_unanswered_incoming_calls_of_the_last_days_are_missed(operators):
    first, _ = operators
    make_call(first, phone="+79030000001", answered_at=ago(hours=1), ended_at=timezone.now(), disposition="answered")
    make_call(first, phone="+79030000002")  # still ringing
    outgoing(first, phone="+79030000003", started_at=ago(hours=1), answered=False)
    missed([first], phone="+79030000004", started_at=ago(days=MISSED_DAYS + 1))
    missed([first], phone="")  # a hidden number cannot be called back
    assert phones_for(first) == []


def test_the_page_lists_the_numbers_with_a_call_back_button(operator_client, operator_user):
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", phone_mobile=NUMBER)
    at = timezone.make_aware(datetime.datetime.combine(timezone.localdate(), datetime.time(9, 5, 7)))
    missed([operator_user], started_at=at - datetime.timedelta(days=1), client=savitskaya)
    missed([operator_user], started_at=at, client=savitskaya)
    page = operator_client.get(reverse("history:missed")).content.decode()
    assert at.strftime("%d.%m.%Y") in page and "09:05:07" in page
    assert f'data-dial="{NUMBER}"' in page and "+7 903 123-45-67" in page
    assert f'href="{reverse("clients:detail", args=[savitskaya.pk])}"' in page and "Савицкая Наталья" in page
    assert 'class="missed-count">2<' in page
    assert "Анна" in page, "whom it is for"
    assert "Пропущенные" in page


def test_the_page_takes_a_fixed_number_of_queries(operator_client, operator_user, django_assert_max_num_queries):
    for i in range(30):
        missed([operator_user], phone=f"+7903000{i:04d}", client=Client.objects.create(last_name=f"Клиент{i}", phone_mobile=f"+7903000{i:04d}"))
    # session, user, permissions (2), the numbers, their calls, who they rang, the operator
    with django_assert_max_num_queries(8):
        response = operator_client.get(reverse("history:missed"))
    assert len(response.context["numbers"]) == 30


def test_the_page_shows_nobody_elses_missed_calls(operator_client, django_user_model):
    missed([django_user_model.objects.create_user("operator2")])
    page = operator_client.get(reverse("history:missed")).content.decode()
    assert NUMBER not in page


def test_the_page_needs_a_login():
    assert HttpClient().get(reverse("history:missed")).status_code == 302
