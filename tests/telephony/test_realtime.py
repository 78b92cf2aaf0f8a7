import datetime

import pytest
from django.utils import timezone

from clients.models import CardType, Client
from history.models import Call
from telephony.realtime import catch_up_messages

pytestmark = pytest.mark.django_db


def calls_for(operator, *, pending: int) -> None:
    """A call in progress from a regular client, one ringing from a number two clients share, and `pending` missed calls from known numbers."""
    now = timezone.now()
    gold = CardType.objects.create(name="Золотая")
    regular = Client.objects.create(last_name="Савицкая", phone_mobile="+74957894561", card_type=gold)
    Client.objects.create(last_name="Орлов", phone_home="+74993690439")
    Client.objects.create(last_name="Орлова", phone_home="+74993690439")
    earlier = now - datetime.timedelta(seconds=30)
    Call.objects.create(linkedid="active.1", direction="in", phone="+74957894561", operator=operator, client=regular, started_at=earlier, answered_at=now, disposition="answered")
    Call.objects.create(linkedid="active.2", direction="in", phone="+74993690439", operator=operator, started_at=now)
    for number in range(pending):
        phone = f"+7916{number:07d}"
        Client.objects.create(last_name=f"Клиент{number:02d}", phone_mobile=phone, card_type=gold)
        started = now - datetime.timedelta(minutes=number + 1)
        Call.objects.create(linkedid=f"missed.{number}", direction="in", phone=phone, operator=operator, started_at=started, ended_at=started, disposition="no_answer")


@pytest.mark.parametrize("pending", [1, 30])
def test_the_catch_up_takes_three_queries_however_many_calls_are_pending(operator_user, django_assert_num_queries, pending):
    calls_for(operator_user, pending=pending)
    with django_assert_num_queries(3):  # calls in progress, calls awaiting registration, the callers by number
        messages = catch_up_messages(operator_user.pk)
    answered, ringing, waiting = messages
    assert (answered["type"], [client["name"] for client in answered["clients"]]) == ("call.answered", ["Савицкая"])
    assert (ringing["type"], [client["name"] for client in ringing["clients"]]) == ("call.ringing", ["Орлов", "Орлова"])
    assert waiting["type"] == "calls.pending"
    callers = {call["call"]["phone"]: [(client["name"], client["card_type"]) for client in call["clients"]] for call in waiting["calls"]}
    assert callers == {f"+7916{number:07d}": [(f"Клиент{number:02d}", "Золотая")] for number in range(pending)}


def test_a_call_closed_during_the_call_does_not_pop_up_again_on_the_next_page(operator_user):
    now = timezone.now()
    Call.objects.create(linkedid="closed.1", direction="in", phone="+74957894561", operator=operator_user, started_at=now, dismissed_at=now)
    Call.objects.create(linkedid="open.1", direction="in", phone="+74957894562", operator=operator_user, started_at=now)

    messages = catch_up_messages(operator_user.pk)

    assert [message["call"]["linkedid"] for message in messages if message["type"].startswith("call.")] == ["open.1"]


def test_times_are_shown_in_the_servers_time_zone_whatever_the_browsers(operator_user, settings):
    settings.TIME_ZONE = "Europe/Moscow"
    started = datetime.datetime(2026, 12, 5, 21, 3, 4, tzinfo=datetime.timezone.utc)
    Call.objects.create(linkedid="missed.tz", direction="in", phone="+74957894561", operator=operator_user, started_at=started, ended_at=started, disposition="no_answer")

    [pending] = catch_up_messages(operator_user.pk)

    call = pending["calls"][0]["call"]
    assert (call["started_shown"], call["phone_shown"]) == ("06.12.2026 00:03:04", "+7 495 789-45-61")
