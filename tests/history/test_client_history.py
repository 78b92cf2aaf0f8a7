"""«История обслуживания клиента»: /clients/<pk>/history/."""

import datetime
import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client as HttpClient
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from clients.models import Client
from history.forms import year_before
from history.models import CallReason, CallResult
from tests.helpers import make_call

pytestmark = pytest.mark.django_db


@pytest.fixture
def savitskaya():
    return Client.objects.create(last_name="Савицкая", first_name="Наталья", middle_name="Геннадьевна", phone_mobile="+74957894561")


def days_ago(days: int, **time) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days, **time)


def registered(operator, client, **fields):
    """A call the operator took and registered, `fields` overriding the defaults."""
    return make_call(operator, client=client, disposition="answered", registered_at=timezone.now(), **fields)


def shown(response) -> list[str]:
    return [call.linkedid for call in response.context["page"].object_list]


def history(http, client, **query):
    return http.get(reverse("clients:history", args=[client.pk]), query)


def test_by_default_it_shows_the_registered_calls_of_the_last_year(operator_client, operator_user, savitskaya):
    registered(operator_user, savitskaya, linkedid="recent", started_at=days_ago(10))
    make_call(operator_user, client=savitskaya, linkedid="unregistered", started_at=days_ago(5), disposition="no_answer")
    registered(operator_user, savitskaya, linkedid="old", started_at=days_ago(400))
    registered(operator_user, None, linkedid="someone-else", started_at=days_ago(1))

    response = history(operator_client, savitskaya)

    assert shown(response) == ["recent"]
    since = year_before(timezone.localdate()).strftime("%d.%m.%Y")
    assert f'value="{since}"' in response.content.decode(), "the form shows the date applied"
    assert "История обслуживания клиента: " in response.content.decode()


def test_a_year_before_the_29th_of_february_is_the_28th():
    assert year_before(datetime.date(2028, 2, 29)) == datetime.date(2027, 2, 28)
    assert year_before(datetime.date(2026, 12, 6)) == datetime.date(2025, 12, 6)


def test_show_all_calls_adds_the_unregistered_ones_each_marked_by_its_outcome(operator_client, operator_user, savitskaya):
    registered(operator_user, savitskaya, linkedid="registered", started_at=days_ago(4))
    make_call(operator_user, client=savitskaya, linkedid="missed", started_at=days_ago(3), disposition="no_answer")
    make_call(operator_user, client=savitskaya, linkedid="busy", started_at=days_ago(2), disposition="busy")
    make_call(operator_user, client=savitskaya, linkedid="failed", started_at=days_ago(1), disposition="failed")

    response = history(operator_client, savitskaya, all="on")

    assert shown(response) == ["failed", "busy", "missed", "registered"]
    html = response.content.decode()
    for disposition, word in (("no_answer", "нет ответа"), ("busy", "занято"), ("failed", "ошибка")):
        assert re.search(rf'<tr class="disposition-{disposition}".*?badge disposition disposition-{disposition}">{word}<', html, re.S)
    assert re.search(r'<input type="checkbox" name="all"[^>]* checked', html)


@pytest.mark.parametrize("typed", ["dd.mm.yyyy", "yyyy-mm-dd"])
def test_show_from_takes_a_date_in_either_form(operator_client, operator_user, savitskaya, typed):
    registered(operator_user, savitskaya, linkedid="400 days", started_at=days_ago(400))
    registered(operator_user, savitskaya, linkedid="600 days", started_at=days_ago(600))
    day = timezone.localdate() - datetime.timedelta(days=401)
    since = day.strftime("%d.%m.%Y" if typed == "dd.mm.yyyy" else "%Y-%m-%d")

    assert shown(history(operator_client, savitskaya, since=since)) == ["400 days"]


def test_show_from_counts_whole_days_in_the_server_time_zone(operator_client, operator_user, savitskaya, settings):
    day = timezone.localdate() - datetime.timedelta(days=3)
    midnight = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
    registered(operator_user, savitskaya, linkedid="at midnight", started_at=midnight)
    registered(operator_user, savitskaya, linkedid="a second before", started_at=midnight - datetime.timedelta(seconds=1))

    assert shown(history(operator_client, savitskaya, since=day.strftime("%d.%m.%Y"))) == ["at midnight"]


def test_a_bad_date_is_reported_kept_and_the_default_applies(operator_client, operator_user, savitskaya):
    registered(operator_user, savitskaya, linkedid="recent", started_at=days_ago(10))

    response = history(operator_client, savitskaya, since="31.02.2026", all="on")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="message error"' in html and "Введите правильную дату" in html
    assert 'value="31.02.2026"' in html
    assert shown(response) == ["recent"]


def test_the_newest_call_comes_first_and_the_time_is_the_servers(operator_client, operator_user, savitskaya):
    moment = timezone.make_aware(datetime.datetime(2026, 3, 2, 10, 25, 9), datetime.timezone.utc)  # 13:25:09 in Moscow
    registered(operator_user, savitskaya, linkedid="first", started_at=moment)
    registered(operator_user, savitskaya, linkedid="second", started_at=moment + datetime.timedelta(minutes=25))
    registered(operator_user, savitskaya, linkedid="third", started_at=moment + datetime.timedelta(hours=3))

    response = history(operator_client, savitskaya, since="01.03.2026")

    assert shown(response) == ["third", "second", "first"]
    assert "<td>02.03.2026</td><td>13:25:09</td>" in response.content.decode()


def test_pages_keep_the_filters_and_the_total_is_shown(operator_client, operator_user, savitskaya):
    for n in range(51):
        make_call(operator_user, client=savitskaya, linkedid=f"c{n}", started_at=days_ago(0, minutes=n + 1), disposition="no_answer")

    response = history(operator_client, savitskaya, since="01.01.2020", all="on")

    html = response.content.decode()
    assert "51 звонок" in html
    next_link = re.search(r'<nav class="pagination">.*?href="\?([^"]+)"', html, re.S)
    query = next_link.group(1).replace("&amp;", "&")
    assert "since=01.01.2020" in query and "all=on" in query and "page=2" in query
    second = operator_client.get(reverse("clients:history", args=[savitskaya.pk]) + "?" + query)
    assert shown(second) == ["c50"]


def test_an_operator_sees_only_their_own_calls_with_the_client(operator_client, operator_user, savitskaya, django_user_model):
    other = django_user_model.objects.create_user("operator2")
    registered(operator_user, savitskaya, linkedid="mine", started_at=days_ago(2))
    registered(other, savitskaya, linkedid="theirs", started_at=days_ago(1))
    rang_me = registered(other, savitskaya, linkedid="rang me too", started_at=days_ago(3))
    rang_me.rung.add(operator_user, other)

    assert shown(history(operator_client, savitskaya)) == ["mine", "rang me too"]


def test_a_supervisor_sees_every_operators_calls_with_the_client(client, operator_user, savitskaya, django_user_model):
    supervisor = django_user_model.objects.create_user("supervisor")
    supervisor.user_permissions.add(Permission.objects.get(codename="view_all_calls"))
    registered(operator_user, savitskaya, linkedid="operator1's", started_at=days_ago(2))
    client.force_login(supervisor)

    assert shown(history(client, savitskaya)) == ["operator1's"]


def test_the_history_needs_a_login_and_an_existing_client(operator_client, savitskaya):
    url = reverse("clients:history", args=[savitskaya.pk])
    anonymous = HttpClient().get(url)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert operator_client.get(reverse("clients:history", args=[savitskaya.pk + 1])).status_code == 404


def test_each_row_opens_the_calls_details(operator_client, operator_user, savitskaya):
    call = registered(operator_user, savitskaya, started_at=days_ago(1))

    html = history(operator_client, savitskaya).content.decode()

    assert f'href="{reverse("history:call_detail", args=[call.pk])}">Детально</a>' in html


def test_the_summary_counts_the_period_by_reason_result_operator_type_and_outcome(operator_client, operator_user, savitskaya):
    booking, question = CallReason.objects.create(name="Запись"), CallReason.objects.create(name="Вопрос")
    meeting = CallResult.objects.create(name="Встреча")
    registered(operator_user, savitskaya, started_at=days_ago(1), reason=booking, result=meeting)
    registered(operator_user, savitskaya, started_at=days_ago(2), reason=booking, result=meeting, direction="out")
    registered(operator_user, savitskaya, started_at=days_ago(3), reason=question)
    make_call(operator_user, client=savitskaya, started_at=days_ago(4), disposition="busy")
    registered(operator_user, savitskaya, started_at=days_ago(500), reason=question)  # before the period

    response = history(operator_client, savitskaya, tab="summary", all="on")

    summary = response.context["summary"]
    assert summary["totals"] == {"total": 4, "incoming": 3, "outgoing": 1, "answered": 3, "missed": 1, "no_answer": 0, "busy": 1, "failed": 0}
    assert summary["reasons"] == [{"name": "Запись", "count": 2}, {"name": "", "count": 1}, {"name": "Вопрос", "count": 1}]
    assert summary["results"] == [{"name": "", "count": 2}, {"name": "Встреча", "count": 2}]
    assert summary["operators"] == [{"name": "Анна", "count": 4}]
    html = response.content.decode()
    assert "Не указано" in html and 'data-count="missed">1<' in html
    assert 'class="active" aria-current="page">Сводные данные' in html
    assert 'name="tab" value="summary"' in html, "filtering stays on the summary"
    assert "page" not in response.context


def test_the_summary_without_all_calls_counts_only_registered_ones(operator_client, operator_user, savitskaya):
    registered(operator_user, savitskaya, started_at=days_ago(1))
    make_call(operator_user, client=savitskaya, started_at=days_ago(2), disposition="no_answer")

    assert history(operator_client, savitskaya, tab="summary").context["summary"]["totals"]["total"] == 1


def test_recordings_are_linked_only_for_those_allowed_to_listen(client, operator_user, savitskaya):
    client.force_login(operator_user)
    assert f"?client={savitskaya.pk}" not in history(client, savitskaya).content.decode()
    operator_user.user_permissions.add(Permission.objects.get(codename="listen_recording"))
    html = history(client, savitskaya).content.decode()
    try:
        recordings = reverse("history:recordings")
    except NoReverseMatch:  # the recordings report is not there yet: then no link at all
        assert f"?client={savitskaya.pk}" not in html
    else:
        since = year_before(timezone.localdate()).isoformat()
        assert f'href="{recordings}?client={savitskaya.pk}&amp;from={since}">Записи разговоров</a>' in html


def test_the_client_card_leads_to_the_history(operator_client, savitskaya):
    html = operator_client.get(reverse("clients:detail", args=[savitskaya.pk])).content.decode()
    assert f'href="{reverse("clients:history", args=[savitskaya.pk])}">История</a>' in html


def test_the_pop_up_leads_to_the_history(operator_client, operator_user, savitskaya):
    call = make_call(operator_user, client=savitskaya, phone=savitskaya.phone_mobile)
    html = operator_client.get(reverse("telephony:call_panel", args=[call.pk])).content.decode()
    assert f'href="{reverse("clients:history", args=[savitskaya.pk])}" target="_blank">История</a>' in html


def test_the_history_of_a_client_with_many_calls_takes_a_fixed_number_of_queries(operator_client, operator_user, savitskaya, django_assert_max_num_queries):
    reason, result = CallReason.objects.create(name="Запись"), CallResult.objects.create(name="Встреча")
    for n in range(30):
        registered(operator_user, savitskaya, started_at=days_ago(0, minutes=n + 1), reason=reason, result=result)
    # session, user, permissions (2), client, operator, count, page: none per call
    with django_assert_max_num_queries(8):
        assert len(shown(history(operator_client, savitskaya))) == 30


HOSTILE = [
    {"since": "2025-13-45"}, {"since": "\x00"}, {"since": "9" * 50}, {"until": "32.13.2026"}, {"all": "\x00"},
    {"tab": "x" * 5000}, {"page": "-1"}, {"page": "abc"}, {"page": "99999999999999999999"},
    {"operator": "abc"}, {"operator": "99999999999999999999"}, {"direction": "sideways"}, {"outcome": "\x00"},
    {"party": "\x00"}, {"party": "8495\x00"}, {"party": "x" * 5000}, {"party": "+" + "9" * 40},
]


@pytest.mark.parametrize("parameters", HOSTILE, ids=lambda parameters: next(iter(parameters)))
def test_no_history_page_answers_a_hostile_parameter_with_a_server_error(client, django_user_model, savitskaya, parameters):
    boss = django_user_model.objects.create_superuser("boss", password="boss-pass-1")
    call = registered(boss, savitskaya)
    client.force_login(boss)
    for url in (reverse("history:list"), reverse("clients:history", args=[savitskaya.pk]), reverse("history:call_detail", args=[call.pk])):
        for tab in ({}, {"tab": "summary"}):
            response = client.get(url, tab | parameters)
            assert response.status_code < 500, (url, parameters, response.status_code)
