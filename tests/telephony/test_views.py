import datetime
import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from clients.models import CardType, Client
from history.models import CallReason, CallResult, ContactReason
from telephony.models import Operator
from tests.helpers import make_call

pytestmark = pytest.mark.django_db


@pytest.fixture
def dictionaries():
    return {
        "reason": CallReason.objects.create(name="Запись на приём"),
        "result": CallResult.objects.create(name="Записан(а)"),
        "contact_reason": ContactReason.objects.create(name="Первичное обращение"),
    }


def test_a_known_callers_panel_shows_the_card_and_last_calls(operator_client, operator_user, dictionaries):
    gold = CardType.objects.create(name="Золотая")
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", phone_mobile="+74957894561", card_number="A-1", card_type=gold, blacklisted=True, call_back_on=datetime.date(2026, 12, 3))
    for day in range(7):
        make_call(operator_user, client=savitskaya, reason=dictionaries["reason"], comment=f"визит {day}")
    call = make_call(operator_user)
    page = operator_client.get(reverse("telephony:call_panel", args=[call.pk])).content.decode()
    assert "Савицкая Наталья" in page and "A-1" in page and "Золотая" in page
    assert "Клиент в черном списке" in page and "03.12.2026" in page
    assert page.count("визит") == 5, "the last five calls"
    assert 'name="caller-last_name"' not in page


def test_several_matches_are_offered_to_choose_from(operator_client, operator_user):
    Client.objects.create(last_name="Орлов", phone_home="+74957894561")
    orlova = Client.objects.create(last_name="Орлова", phone_home="+74957894561")
    call = make_call(operator_user)
    page = operator_client.get(reverse("telephony:call_panel", args=[call.pk])).content.decode()
    assert "Орлов" in page and "Орлова" in page
    operator_client.post(reverse("telephony:call_choose_client", args=[call.pk]), {"client": orlova.pk})
    call.refresh_from_db()
    assert call.client == orlova


def test_an_unknown_caller_gets_the_registration_form_with_the_phone_filled(operator_client, operator_user):
    call = make_call(operator_user, phone="+79031112233")
    page = operator_client.get(reverse("telephony:call_panel", args=[call.pk])).content.decode()
    assert 'name="caller-last_name"' in page and 'value="+79031112233"' in page
    assert "администратор" in page.lower(), "empty dictionaries say an administrator must fill them"


def test_create_client_links_the_call_and_the_earlier_calls_from_that_number(operator_client, operator_user):
    earlier = make_call(operator_user, phone="+79031112233")
    call = make_call(operator_user, phone="+79031112233")
    response = operator_client.post(reverse("telephony:call_save", args=[call.pk]), {
        "action": "create_client", "caller-last_name": "Новикова", "caller-first_name": "Ирина", "caller-phone_mobile": "+79031112233", "comment": "хочет на стрижку",
    })
    assert response.status_code == 200
    client = Client.objects.get(last_name="Новикова")
    call.refresh_from_db()
    earlier.refresh_from_db()
    assert call.client == client and earlier.client == client
    page = response.content.decode()
    assert "Новикова Ирина" in page and "хочет на стрижку" in page, "the typed comment is kept"
    assert call.registered_at is None


def test_registering_saves_the_form_and_sets_the_clients_call_back_date(operator_client, operator_user, dictionaries):
    client = Client.objects.create(last_name="Савицкая", phone_mobile="+74957894561")
    call = make_call(operator_user, client=client)
    reminder = (timezone.localdate() + datetime.timedelta(days=2)).strftime("%d.%m.%Y")
    response = operator_client.post(reverse("telephony:call_save", args=[call.pk]), {
        "action": "register", "caller_kind": "regular", "reason": dictionaries["reason"].pk, "result": dictionaries["result"].pk,
        "contact_reason": dictionaries["contact_reason"].pk, "comment": "подтвердила визит", "reminder_on": reminder,
    })
    assert response.status_code == 204 and response["X-Call-Done"] == "1"
    call.refresh_from_db()
    client.refresh_from_db()
    assert call.registered_at and call.caller_kind == "regular" and call.reason == dictionaries["reason"]
    assert client.call_back_on == call.reminder_on
    assert "подтвердила визит" in operator_client.get(reverse("history:reminders")).content.decode()


def test_registering_an_unknown_caller_with_a_name_creates_the_client(operator_client, operator_user):
    call = make_call(operator_user, phone="+79031112233")
    response = operator_client.post(reverse("telephony:call_save", args=[call.pk]), {"action": "register", "caller_kind": "new", "caller-last_name": "Петрова", "caller-phone_mobile": "+79031112233"})
    assert response.status_code == 204
    call.refresh_from_db()
    assert call.client.last_name == "Петрова" and call.registered_at


def test_bad_input_gets_a_message_and_keeps_what_was_typed(operator_client, operator_user):
    call = make_call(operator_user, phone="+79031112233")
    response = operator_client.post(reverse("telephony:call_save", args=[call.pk]), {
        "action": "register", "caller-last_name": "Петрова", "caller-phone_home": "12", "comment": "важный комментарий", "reminder_on": "01.01.2001",
    })
    assert response.status_code == 400
    page = response.content.decode()
    assert "Петрова" in page and "важный комментарий" in page and 'value="12"' in page
    assert "в прошлом" in page
    call.refresh_from_db()
    assert call.registered_at is None and not Client.objects.exists()


def test_an_inactive_dictionary_entry_is_not_offered(operator_client, operator_user, dictionaries):
    CallReason.objects.create(name="Старая причина", is_active=False)
    call = make_call(operator_user)
    page = operator_client.get(reverse("telephony:call_panel", args=[call.pk])).content.decode()
    assert "Запись на приём" in page and "Старая причина" not in page


def test_closing_without_registering_takes_the_call_off_the_pending_list(operator_client, operator_user):
    call = make_call(operator_user, ended_at=timezone.now())
    response = operator_client.post(reverse("telephony:call_close", args=[call.pk]))
    assert response.status_code == 204
    call.refresh_from_db()
    assert call.dismissed_at and call.registered_at is None


def test_an_operator_cannot_open_another_operators_call(operator_client, django_user_model):
    boris = django_user_model.objects.create_user("boris")
    Operator.objects.create(user=boris, extension="101", channel="PJSIP/101")
    call = make_call(boris, extension="100")  # even on this operator's extension
    assert operator_client.get(reverse("telephony:call_panel", args=[call.pk])).status_code == 404
    assert operator_client.post(reverse("telephony:call_save", args=[call.pk]), {"action": "register"}).status_code == 404


def test_closing_the_form_takes_a_fixed_number_of_queries(operator_client, operator_user, django_assert_num_queries,
                                                          django_capture_on_commit_callbacks):
    call = make_call(operator_user, ended_at=timezone.now())
    # Session, the user, the call, marking it closed; then, to tell every page it rang, the call and who it rang.
    with django_assert_num_queries(6), django_capture_on_commit_callbacks(execute=True):
        assert operator_client.post(reverse("telephony:call_close", args=[call.pk])).status_code == 204


def test_a_call_that_rang_the_operator_or_any_call_for_a_supervisor_opens(client, operator_client, operator_user, django_user_model):
    boris = django_user_model.objects.create_user("boris")
    call = make_call(boris, extension="101")
    call.rung.add(operator_user)  # a ring group: the operator's phone rang too
    assert operator_client.get(reverse("telephony:call_panel", args=[call.pk])).status_code == 200
    supervisor = django_user_model.objects.create_user("supervisor")
    supervisor.user_permissions.add(Permission.objects.get(codename="view_all_calls"))
    client.force_login(supervisor)
    assert client.get(reverse("telephony:call_panel", args=[make_call(boris).pk])).status_code == 200
    assert client.get(reverse("telephony:call_panel", args=[999_999])).status_code == 404


def test_the_panel_needs_a_login(client, operator_user):
    call = make_call(operator_user)
    assert client.get(reverse("telephony:call_panel", args=[call.pk])).status_code == 302


def test_a_known_caller_is_a_regular_client_unless_the_operator_chose_otherwise(operator_client, operator_user):
    savitskaya = Client.objects.create(last_name="Савицкая", phone_mobile="+74957894561")
    known, chosen = make_call(operator_user, client=savitskaya), make_call(operator_user, client=savitskaya, caller_kind="other")
    unknown = make_call(operator_user, phone="+79031112233")

    assert radio_checked(operator_client, known) == "regular"
    assert radio_checked(operator_client, chosen) == "other"
    assert radio_checked(operator_client, unknown) is None


def radio_checked(http, call):
    page = http.get(reverse("telephony:call_panel", args=[call.pk])).content.decode()
    found = [tag for tag in re.findall(r"<input[^>]*name=\"caller_kind\"[^>]*>", page) if "checked" in tag]
    return re.search(r'value="(\w+)"', found[0])[1] if found else None


def test_the_pending_list_is_cleared_in_one_action_for_this_operator_only(operator_client, operator_user, django_user_model):
    ended = timezone.now()
    mine = [make_call(operator_user, ended_at=ended, disposition="no_answer") for _ in range(3)]
    colleague = django_user_model.objects.create_user("colleague")
    theirs = make_call(colleague, ended_at=ended, disposition="no_answer")
    registered = make_call(operator_user, ended_at=ended, registered_at=ended)

    response = operator_client.post(reverse("telephony:pending_clear"))

    assert response.status_code == 204
    for call in mine:
        call.refresh_from_db()
        assert call.dismissed_at is not None
    theirs.refresh_from_db()
    registered.refresh_from_db()
    assert theirs.dismissed_at is None and registered.dismissed_at is None
    assert operator_client.get(reverse("telephony:pending_clear")).status_code == 405


def test_the_favicon_is_there(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("/static/favicon.svg")


def test_the_pop_ups_form_reads_each_dictionary_once_and_keeps_a_retired_entry_on_the_record(
    operator_client, operator_user, dictionaries, django_assert_max_num_queries,
):
    retired = CallReason.objects.create(name="Старая причина", is_active=False)
    call = make_call(operator_user, phone="+79990001122", reason=retired)  # an unknown caller: the new client's form too
    CardType.objects.create(name="Золотая")
    url = reverse("telephony:call_panel", args=[call.pk])
    operator_client.get(url)
    # Session, the user with their operator, the call, the clients with its number, each form's dictionaries.
    with django_assert_max_num_queries(6):
        page = operator_client.get(url).content.decode()
    assert "Старая причина" in page and "Запись на приём" in page and "Золотая" in page
    assert page.count("Первичное обращение") == 1
