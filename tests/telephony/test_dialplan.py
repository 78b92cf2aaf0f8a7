"""The dialplan's endpoints: smart transfer's route and the caller-ID name, as Asterisk's CURL() asks them."""

import ipaddress
import threading
import time

import pytest
from django.core.cache import cache
from django.db import connection, connections, transaction
from django.urls import reverse

from clients.models import Client
from telephony.models import Operator, RouteDecision, RouteFallback
from telephony.presence import presence_claim
from tests.conftest import needs

pytestmark = pytest.mark.django_db

TOKEN = "dialplan-secret-1"
CALLER = "84957894561"


@pytest.fixture(autouse=True)
def dialplan_settings(settings):
    settings.DIALPLAN_TOKEN, settings.DIALPLAN_ALLOWED_IPS, settings.DIALPLAN_BUDGET_MS = TOKEN, [], 300
    settings.CALLERID_MAX_LENGTH = 20
    cache.clear()  # nobody's page is open
    return settings


@pytest.fixture
def manager(django_user_model):
    user = django_user_model.objects.create_user("manager1", first_name="Борис")
    Operator.objects.create(user=user, extension="101", channel="PJSIP/101")
    return user


@pytest.fixture
def savitskaya(manager):
    return Client.objects.create(last_name="Савицкая", first_name="Наталья", middle_name="Геннадьевна", phone_mobile="+74957894561", manager=manager)


@pytest.fixture
def chain():
    RouteFallback.objects.create(position=2, extension="602", description="reception")
    RouteFallback.objects.create(position=0, extension="699", is_active=False)
    RouteFallback.objects.create(position=1, extension="600", description="the managers' group")


def route(client, number=CALLER, **params):
    params.setdefault("token", TOKEN)
    response = client.get(reverse("telephony:dialplan_route"), {"number": number, "did": "74951234500", **params})
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    return response


def answer(client, number=CALLER, **params) -> str:
    response = route(client, number, **params)
    assert response.status_code == 200
    return response.content.decode()


def callerid(client, number=CALLER, **params) -> str:
    params.setdefault("token", TOKEN)
    response = client.get(reverse("telephony:dialplan_callerid"), {"number": number, **params})
    assert response.status_code == 200 and response["Content-Type"] == "text/plain; charset=utf-8"
    return response.content.decode()


def test_a_known_caller_goes_to_their_manager_whose_page_is_open(client, savitskaya, manager, chain):
    presence_claim(manager.pk, "page-1")
    assert answer(client, call="1733000000.17") == "101"
    decision = RouteDecision.objects.get()
    assert (decision.linkedid, decision.number, decision.did, decision.client, decision.extension) == (
        "1733000000.17", "+74957894561", "74951234500", savitskaya, "101")
    assert decision.reason == RouteDecision.Reason.MANAGER and decision.elapsed_ms >= 0


def test_a_manager_marked_available_is_rung_without_a_page_open(client, savitskaya, manager, chain):
    Operator.objects.filter(user=manager).update(available=True)
    assert answer(client, "+7 (495) 789-45-61") == "101"


def test_an_away_manager_passes_the_call_to_the_first_active_fallback_step(client, savitskaya, chain):
    assert answer(client) == "600"
    decision = RouteDecision.objects.get()
    assert (decision.reason, decision.step, decision.client) == (RouteDecision.Reason.MANAGER_AWAY, 1, savitskaya)
    assert decision.why == "менеджер недоступен: запасной шаг 1"


def test_a_disabled_manager_counts_as_away_even_when_marked_available_with_a_page_open(client, savitskaya, manager, chain):
    Operator.objects.filter(user=manager).update(available=True)
    presence_claim(manager.pk, "page-1")
    manager.is_active = False
    manager.save()
    assert answer(client) == "600"


def test_a_manager_without_an_extension_counts_as_away(client, savitskaya, manager, chain):
    Operator.objects.filter(user=manager).delete()
    assert answer(client) == "600"


def test_each_further_attempt_takes_the_next_step_until_the_chain_runs_out(client, savitskaya, manager, chain):
    presence_claim(manager.pk, "page-1")
    assert [answer(client, attempt=attempt) for attempt in ("0", "1", "2", "3", "junk")] == ["101", "600", "602", "", "101"]
    reasons = list(RouteDecision.objects.order_by("pk").values_list("reason", "step"))
    assert reasons[1:4] == [("next_step", 1), ("next_step", 2), ("chain_end", None)]


def test_an_away_manager_with_no_chain_leaves_the_call_to_the_normal_route(client, savitskaya):
    assert answer(client) == ""
    assert RouteDecision.objects.get().reason == RouteDecision.Reason.CHAIN_END


def test_an_unknown_number_gets_an_empty_answer_and_is_written_down(client, savitskaya, chain):
    assert answer(client, "84991112233") == ""
    assert answer(client, "anonymous") == ""
    assert list(RouteDecision.objects.order_by("pk").values_list("number", "reason", "client")) == [
        ("+74991112233", "unknown", None), ("anonymous", "unknown", None)]


def test_a_client_without_a_manager_takes_the_normal_route(client, chain):
    Client.objects.create(last_name="Орлов", phone_mobile="+74957894561")
    assert answer(client) == ""
    assert RouteDecision.objects.get().reason == RouteDecision.Reason.NO_MANAGER


def test_a_number_shared_by_clients_of_one_manager_goes_to_that_manager_and_of_two_to_nobody(client, savitskaya, manager, django_user_model, chain):
    presence_claim(manager.pk, "page-1")
    Client.objects.create(last_name="Савицкий", phone_home="+74957894561", manager=manager)
    assert answer(client) == "101"
    assert RouteDecision.objects.get().client is None, "no one client to name"
    other = django_user_model.objects.create_user("manager2")
    Client.objects.create(last_name="Савицкая", first_name="Анна", phone_work="+74957894561", manager=other)
    assert answer(client) == ""
    assert RouteDecision.objects.latest("pk").reason == RouteDecision.Reason.SEVERAL


@pytest.mark.parametrize("how", [{}, {"token": ""}, {"token": "wrong"}, {"token": TOKEN + "x"}])
def test_the_route_refuses_a_missing_or_wrong_token_with_an_empty_body(client, savitskaya, how):
    params = {"number": CALLER, **how}
    response = client.get(reverse("telephony:dialplan_route"), params)
    assert response.status_code == 403 and response.content == b""
    response = client.get(reverse("telephony:dialplan_callerid"), params)
    assert response.status_code == 403 and response.content == b""
    assert not RouteDecision.objects.exists()


def test_the_token_may_come_as_a_header(client, savitskaya, manager):
    presence_claim(manager.pk, "page-1")
    url = reverse("telephony:dialplan_route")
    assert client.get(url, {"number": CALLER}, headers={"X-Dialplan-Token": TOKEN}).content == b"101"
    assert client.get(url, {"number": CALLER}, headers={"X-Dialplan-Token": "wrong"}).status_code == 403
    assert client.get(reverse("telephony:dialplan_callerid"), {"number": CALLER}, headers={"X-Dialplan-Token": TOKEN}).content.decode() == "Савицкая Н.Г."


def test_no_token_configured_refuses_everyone(client, savitskaya, dialplan_settings):
    dialplan_settings.DIALPLAN_TOKEN = ""
    assert route(client, token="").status_code == 403
    assert client.get(reverse("telephony:dialplan_route"), {"number": CALLER}, headers={"X-Dialplan-Token": ""}).status_code == 403


def test_only_allowed_addresses_are_answered(client, savitskaya, manager, dialplan_settings):
    presence_claim(manager.pk, "page-1")
    dialplan_settings.DIALPLAN_ALLOWED_IPS = [ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("::1")]
    assert route(client).status_code == 403  # the test client comes from 127.0.0.1
    assert route(client, REMOTE_ADDR="10.20.30.40").status_code == 403, "a parameter is no address"
    assert client.get(reverse("telephony:dialplan_route"), {"number": CALLER, "token": TOKEN}, REMOTE_ADDR="10.20.30.40").content == b"101"
    dialplan_settings.DIALPLAN_ALLOWED_IPS = [ipaddress.ip_network("127.0.0.0/8")]
    assert answer(client) == "101"


def test_only_get_is_answered(client, savitskaya):
    response = client.post(reverse("telephony:dialplan_route") + f"?token={TOKEN}", {"number": CALLER})
    assert response.status_code == 405 and response.content == b""


def test_the_caller_id_name_is_the_last_name_and_initials(client, savitskaya):
    assert callerid(client) == "Савицкая Н.Г."
    assert callerid(client, "+74957894561", ascii="1") == "Savitskaia N.G."


def test_the_caller_id_name_is_cut_and_loses_what_could_break_a_dialplan_or_a_sip_header(client, dialplan_settings):
    Client.objects.create(last_name='Д"Артаньян;|\\,<Гасконский>\x07\u202e', first_name="шарль", phone_mobile="+74957894561")
    assert callerid(client) == "ДАртаньянГасконский", "«ДАртаньянГасконский Ш.» cut to 20, no space left at the end"
    assert callerid(client, ascii="1") == "DArtanianGaskonskii"
    dialplan_settings.CALLERID_MAX_LENGTH = 8
    assert callerid(client) == "ДАртанья"


def test_no_caller_id_name_for_an_unknown_number_or_several_clients(client, savitskaya):
    assert callerid(client, "84991112233") == ""
    assert callerid(client, "anonymous") == ""
    Client.objects.create(last_name="Савицкий", phone_home="+74957894561")
    assert callerid(client) == ""


@pytest.mark.django_db(transaction=True)
def test_a_locked_client_table_gives_empty_answers_within_the_budget(client, savitskaya, manager, chain, dialplan_settings):
    needs(connection.vendor == "postgresql", "the statement and lock timeouts are PostgreSQL's")
    Operator.objects.filter(user=manager).update(available=True)
    assert answer(client) == "101"
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        with transaction.atomic(), connections["default"].cursor() as cursor:  # this thread's own connection
            cursor.execute("LOCK TABLE clients_client IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(30)
        connections["default"].close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        assert answer(client, call="locked.1") == ""
        assert callerid(client) == ""
        assert time.monotonic() - started < 2 * (0.3 + 1), "each answer within the budget and a margin"
    finally:
        release.set()
        holder.join(10)
    decision = RouteDecision.objects.get(linkedid="locked.1")
    assert decision.reason == RouteDecision.Reason.SLOW and decision.extension == ""
    assert 250 <= decision.elapsed_ms < 1300
    assert answer(client) == "101", "the next call is routed again"


def test_the_calls_details_show_what_smart_transfer_decided(client, savitskaya, manager, chain):
    from tests.helpers import make_call

    call = make_call(manager, linkedid="1733000000.42", client=savitskaya)
    other = make_call(manager, linkedid="1733000000.43")
    answer(client, call=call.linkedid)
    presence_claim(manager.pk, "page-1")
    answer(client, call=call.linkedid, attempt="1")
    client.force_login(manager)
    page = client.get(reverse("history:call_detail", args=[call.pk])).content.decode()
    assert "Умный перевод" in page
    rows = page.split('data-route-decision="')[1:]
    assert len(rows) == 2
    assert 'data-field="extension">600<' in rows[0] and "менеджер недоступен: запасной шаг 1" in rows[0] and "Савицкая Наталья Геннадьевна" in rows[0]
    assert 'data-field="extension">600<' in rows[1] and "следующая попытка: запасной шаг 1" in rows[1]
    assert "Умный перевод" not in client.get(reverse("history:call_detail", args=[other.pk])).content.decode()


def test_the_allowed_addresses_are_read_as_networks_and_a_bad_one_names_its_variable():
    from django.core.exceptions import ImproperlyConfigured

    from simplecalls.env import networks_from_env

    assert networks_from_env({}, "DIALPLAN_ALLOWED_IPS") == []
    assert networks_from_env({"DIALPLAN_ALLOWED_IPS": " 10.0.0.5, 192.168.1.0/24,::1"}, "DIALPLAN_ALLOWED_IPS") == [
        ipaddress.ip_network("10.0.0.5/32"), ipaddress.ip_network("192.168.1.0/24"), ipaddress.ip_network("::1/128")]
    with pytest.raises(ImproperlyConfigured, match="DIALPLAN_ALLOWED_IPS"):
        networks_from_env({"DIALPLAN_ALLOWED_IPS": "10.0.0.300"}, "DIALPLAN_ALLOWED_IPS")
