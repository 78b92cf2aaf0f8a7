import datetime
import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client as HttpClient
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from clients.models import Client
from history.models import CallReason, CallResult, ContactReason, Recording
from tests.helpers import make_call

pytestmark = pytest.mark.django_db


def test_an_operator_sees_only_their_own_calls(operator_client, operator_user, django_user_model):
    other = django_user_model.objects.create_user("operator2")
    make_call(operator_user, linkedid="1.1")
    make_call(other, linkedid="1.2")
    calls = operator_client.get(reverse("history:list")).context["page"].object_list
    assert [c.linkedid for c in calls] == ["1.1"]


def test_show_from_filters_by_date_typed_as_dd_mm_yyyy(operator_client, operator_user):
    make_call(operator_user, linkedid="1.1", started_at=timezone.now() - datetime.timedelta(days=10))
    make_call(operator_user, linkedid="1.2")
    since = (timezone.localdate() - datetime.timedelta(days=1)).strftime("%d.%m.%Y")
    response = operator_client.get(reverse("history:list"), {"since": since})
    assert [c.linkedid for c in response.context["page"].object_list] == ["1.2"]
    assert since in response.content.decode()


def test_a_bad_date_is_reported_and_kept(operator_client):
    response = operator_client.get(reverse("history:list"), {"since": "32.13.2026"})
    assert response.context["form"].errors["since"]
    assert "32.13.2026" in response.content.decode()


def test_history_needs_a_login(client):
    assert client.get(reverse("history:list")).status_code == 302


# The all-calls list (/history/): filters, summary, who sees what; the call's details.

def days_ago(days: int, **time) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days, **time)


def listed(response) -> list[str]:
    return [call.linkedid for call in response.context["page"].object_list]


def calls(http, **query):
    return http.get(reverse("history:list"), query)


def with_permission(user, codename: str):
    user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


@pytest.fixture
def supervisor(django_user_model):
    """A browser of its own, logged in as a user who may see every operator's calls."""
    user = with_permission(django_user_model.objects.create_user("supervisor", first_name="Ольга"), "view_all_calls")
    http = HttpClient()
    http.force_login(user)
    return http


def test_by_default_the_list_shows_the_last_30_days_newest_first(operator_client, operator_user):
    make_call(operator_user, linkedid="29 days", started_at=days_ago(29))
    make_call(operator_user, linkedid="today", started_at=days_ago(0, minutes=5))
    make_call(operator_user, linkedid="31 days", started_at=days_ago(31))

    response = calls(operator_client)

    assert listed(response) == ["today", "29 days"]
    since = (timezone.localdate() - datetime.timedelta(days=30)).strftime("%d.%m.%Y")
    html = response.content.decode()
    assert f'value="{since}"' in html and f'value="{timezone.localdate():%d.%m.%Y}"' in html
    assert "2 звонка" in html


@pytest.mark.parametrize("form", ["%d.%m.%Y", "%Y-%m-%d"])
def test_the_period_takes_dates_in_either_form_and_includes_both_ends(operator_client, operator_user, form):
    first = timezone.localdate() - datetime.timedelta(days=60)
    last = first + datetime.timedelta(days=2)
    starts = {"day before": first - datetime.timedelta(days=1), "first day": first, "last day": last, "day after": last + datetime.timedelta(days=1)}
    for linkedid, day in starts.items():
        make_call(operator_user, linkedid=linkedid, started_at=timezone.make_aware(datetime.datetime.combine(day, datetime.time(23, 59, 59))))

    response = calls(operator_client, since=first.strftime(form), until=last.strftime(form))

    assert listed(response) == ["last day", "first day"]


def test_a_period_that_ends_before_it_starts_is_pointed_out(operator_client, operator_user):
    make_call(operator_user, linkedid="today")

    response = calls(operator_client, since="10.05.2026", until="01.05.2026")

    assert response.status_code == 200
    assert "Конец периода раньше его начала." in response.content.decode()
    assert 'value="01.05.2026"' in response.content.decode()


def test_an_operator_filters_by_call_type(operator_client, operator_user):
    make_call(operator_user, linkedid="in", direction="in")
    make_call(operator_user, linkedid="out", direction="out")

    assert listed(calls(operator_client, direction="out")) == ["out"]
    assert listed(calls(operator_client, direction="in")) == ["in"]


def test_missed_means_no_answer_busy_or_failed_and_each_is_marked(operator_client, operator_user):
    make_call(operator_user, linkedid="answered", disposition="answered", duration=3725, started_at=days_ago(0, minutes=5))
    make_call(operator_user, linkedid="no answer", disposition="no_answer", started_at=days_ago(0, minutes=4))
    make_call(operator_user, linkedid="busy", disposition="busy", started_at=days_ago(0, minutes=3))
    make_call(operator_user, linkedid="failed", disposition="failed", started_at=days_ago(0, minutes=2))
    make_call(operator_user, linkedid="ringing", disposition="ringing", started_at=days_ago(0, minutes=1))

    assert listed(calls(operator_client, outcome="answered")) == ["answered"]
    assert listed(calls(operator_client, outcome="missed")) == ["failed", "busy", "no answer"]
    html = calls(operator_client).content.decode()
    assert "<td class=\"number\">01:02:05</td>" in html
    assert re.search(r'<tr class="disposition-busy".*?<span class="badge disposition disposition-busy">занято</span>', html, re.S)
    assert re.search(r'<tr class="disposition-no_answer".*?<span class="badge disposition disposition-no_answer">нет ответа</span>', html, re.S)


def test_a_phone_in_any_form_finds_its_calls(operator_client, operator_user):
    make_call(operator_user, linkedid="hers", phone="+79031234567")
    make_call(operator_user, linkedid="other", phone="+74957894561")

    assert listed(calls(operator_client, party="8 (903) 123-45-67")) == ["hers"]
    assert listed(calls(operator_client, party="+7 903 123 45 67")) == ["hers"]


def test_a_name_finds_the_clients_calls(operator_client, operator_user):
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", phone_mobile="+74957894561")
    ivanov = Client.objects.create(last_name="Иванов", first_name="Иван", phone_mobile="+79161234567")
    make_call(operator_user, linkedid="hers", client=savitskaya)
    make_call(operator_user, linkedid="his", client=ivanov)
    make_call(operator_user, linkedid="nobody's", client=None)

    response = calls(operator_client, party="савицкая наталья")

    assert listed(response) == ["hers"]
    assert 'value="савицкая наталья"' in response.content.decode()


def test_an_operator_neither_sees_nor_may_choose_other_operators(operator_client, operator_user, django_user_model):
    other = django_user_model.objects.create_user("operator2")
    make_call(operator_user, linkedid="mine")
    make_call(other, linkedid="theirs")

    response = calls(operator_client, operator=other.pk)

    assert listed(response) == ["mine"]
    assert 'name="operator"' not in response.content.decode()


def test_a_supervisor_sees_everyones_calls_and_filters_by_operator(supervisor, operator_user, django_user_model):
    other = django_user_model.objects.create_user("operator2", first_name="Борис")
    make_call(operator_user, linkedid="operator1's", started_at=days_ago(0, minutes=2))
    make_call(other, linkedid="operator2's", started_at=days_ago(0, minutes=1))

    assert listed(calls(supervisor)) == ["operator2's", "operator1's"]
    response = calls(supervisor, operator=other.pk)
    assert listed(response) == ["operator2's"]
    assert re.search(rf'<option value="{other.pk}" selected>Борис</option>', response.content.decode())


def test_staff_see_everyones_calls(client, operator_user, django_user_model):
    make_call(operator_user, linkedid="operator1's")
    client.force_login(django_user_model.objects.create_user("admin", is_staff=True))

    assert listed(calls(client)) == ["operator1's"]


def test_pages_of_the_list_keep_the_filters(operator_client, operator_user):
    for n in range(52):
        make_call(operator_user, linkedid=f"c{n}", direction="out", started_at=days_ago(0, minutes=n + 1))

    html = calls(operator_client, direction="out", party="8 495 789-45-61").content.decode()

    assert "52 звонка" in html
    query = re.search(r'<nav class="pagination">.*?href="\?([^"]+)"', html, re.S).group(1).replace("&amp;", "&")
    second = operator_client.get(reverse("history:list") + "?" + query)
    assert listed(second) == ["c50", "c51"]
    assert second.context["form"].cleaned_data["direction"] == "out"


def test_the_list_takes_a_fixed_number_of_queries(operator_client, operator_user, django_assert_max_num_queries):
    savitskaya = Client.objects.create(last_name="Савицкая", phone_mobile="+74957894561")
    reason, result = CallReason.objects.create(name="Запись"), CallResult.objects.create(name="Встреча")
    for n in range(30):
        make_call(operator_user, client=savitskaya, reason=reason, result=result, started_at=days_ago(0, minutes=n + 1))
    # session, user, permissions (2), operator, count, page: none per call
    with django_assert_max_num_queries(7):
        assert len(listed(calls(operator_client))) == 30


def test_the_summary_counts_the_period_by_reason_result_and_operator(supervisor, operator_user, django_user_model):
    other = django_user_model.objects.create_user("operator2", first_name="Борис", last_name="Петров")
    booking = CallReason.objects.create(name="Запись")
    meeting = CallResult.objects.create(name="Встреча")
    make_call(operator_user, reason=booking, result=meeting, disposition="answered")
    make_call(operator_user, reason=booking, disposition="no_answer")
    make_call(other, direction="out", disposition="busy")
    make_call(None, disposition="failed", extension="")
    make_call(other, reason=booking, started_at=days_ago(45))  # before the period

    summary = calls(supervisor, tab="summary").context["summary"]

    assert summary["totals"] == {"total": 4, "incoming": 3, "outgoing": 1, "answered": 1, "missed": 3, "no_answer": 1, "busy": 1, "failed": 1}
    assert summary["reasons"] == [{"name": "", "count": 2}, {"name": "Запись", "count": 2}]
    assert summary["results"] == [{"name": "", "count": 3}, {"name": "Встреча", "count": 1}]
    assert summary["operators"] == [{"name": "Анна", "count": 2}, {"name": "", "count": 1}, {"name": "Борис Петров", "count": 1}]


def test_the_summary_follows_the_filters(operator_client, operator_user):
    make_call(operator_user, direction="in")
    make_call(operator_user, direction="out")

    assert calls(operator_client, tab="summary", direction="out").context["summary"]["totals"]["total"] == 1


def test_each_call_in_the_list_opens_its_details(operator_client, operator_user):
    call = make_call(operator_user)
    assert f'href="{reverse("history:call_detail", args=[call.pk])}">Детально</a>' in calls(operator_client).content.decode()


def detail(http, call):
    return http.get(reverse("history:call_detail", args=[call.pk]))


def test_the_details_show_every_field_of_the_call(operator_client, operator_user, django_user_model):
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", phone_mobile="+74957894561")
    started = timezone.make_aware(datetime.datetime(2026, 6, 21, 10, 25, 9))
    call = make_call(
        operator_user, client=savitskaya, disposition="answered", caller_kind="regular", source="cdr", linkedid="1750490709.42",
        started_at=started, answered_at=started + datetime.timedelta(seconds=7), ended_at=started + datetime.timedelta(seconds=97),
        duration=97, billsec=90, reason=CallReason.objects.create(name="Запись"), result=CallResult.objects.create(name="Встреча"),
        contact_reason=ContactReason.objects.create(name="Консультация"), comment="визит подтверждён",
        reminder_on=datetime.date(2026, 6, 28), registered_at=started + datetime.timedelta(minutes=2),
    )
    call.rung.add(operator_user, django_user_model.objects.create_user("operator2", first_name="Борис"))

    html = detail(operator_client, call).content.decode()

    def field(name):
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", re.search(rf'data-field="{name}"[^>]*>(.*?)</dd>', html, re.S).group(1))).strip()

    assert field("direction") == "Входящий" and field("disposition") == "отвечен"
    assert (field("started_at"), field("answered_at"), field("ended_at")) == ("21.06.2026 10:25:09", "21.06.2026 10:25:16", "21.06.2026 10:26:46")
    assert (field("duration"), field("billsec")) == ("00:01:37", "00:01:30")
    assert field("phone").startswith("+7 495 789-45-61") and field("extension") == "100"
    assert field("operator") == "Анна" and field("rung") == "Анна, Борис"
    assert field("client") == "Савицкая Наталья · История"
    assert (field("caller_kind"), field("contact_reason"), field("reason"), field("result")) == ("Постоянный клиент", "Консультация", "Запись", "Встреча")
    assert field("comment") == "визит подтверждён" and field("reminder_on") == "28.06.2026"
    assert field("registered_at") == "21.06.2026 10:27:09" and field("source") == "CDR" and field("linkedid") == "1750490709.42"


def test_only_those_who_may_see_a_call_open_its_details(operator_client, operator_user, django_user_model, supervisor):
    theirs = make_call(django_user_model.objects.create_user("operator2"))
    rang = make_call(None)
    rang.rung.add(operator_user)

    assert detail(operator_client, theirs).status_code == 404
    assert detail(operator_client, rang).status_code == 200
    assert detail(supervisor, theirs).status_code == 200
    anonymous = detail(HttpClient(), theirs)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert operator_client.get(reverse("history:call_detail", args=[theirs.pk + 100])).status_code == 404


def test_recordings_play_only_for_those_allowed_to_listen(client, operator_user, settings, tmp_path):
    settings.RECORDINGS_DIR = tmp_path
    call = make_call(operator_user)
    recording = Recording.objects.create(call=call, file="2026/06/21/in-100-1750490709.42.wav", duration=90)
    client.force_login(operator_user)

    html = detail(client, call).content.decode()
    assert "Нет доступа к записям" in html and "<audio" not in html and recording.file not in html

    with_permission(operator_user, "listen_recording")
    html = detail(client, call).content.decode()
    assert "Нет доступа к записям" not in html and f'data-recording="{recording.pk}"' in html and "00:01:30" in html
    assert recording.file not in html, "never a file path in the page"
    assert "запись недоступна" in html and "<audio" not in html, "the file is not there (yet)"

    (tmp_path / recording.file).parent.mkdir(parents=True)
    (tmp_path / recording.file).write_bytes(b"RIFF")
    html = detail(client, call).content.decode()
    assert f'src="{reverse("history:recording_audio", args=[recording.pk])}"' in html and "<audio controls" in html
