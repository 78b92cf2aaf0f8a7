import asyncio
import datetime
import warnings

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clients.models import Client
from history import recordings as recordings_module
from history.forms import year_before
from history.models import Call, Recording, RecordingListen
from history.recordings import FileRangeResponse, audio_type, byte_range, recordings_visible_to
from history.services import operators_call
from tests.helpers import make_call
from tests.test_bad_parameters import HOSTILE

pytestmark = pytest.mark.django_db

AUDIO = bytes(range(256)) * 4  # 1,024 bytes, each position recognisable


def grant(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="history", codename__in=codenames))


@pytest.fixture
def recordings_dir(settings, tmp_path):
    settings.RECORDINGS_DIR = tmp_path / "monitor"
    settings.RECORDINGS_DIR.mkdir()
    return settings.RECORDINGS_DIR


@pytest.fixture
def listener(operator_user, operator_client):
    """The operator, allowed to listen to recordings."""
    grant(operator_user, "listen_recording")
    return operator_client


@pytest.fixture
def other_operator(django_user_model):
    return django_user_model.objects.create_user("operator2")


@pytest.fixture
def supervisor(django_user_model, client):
    user = django_user_model.objects.create_user("supervisor", first_name="Ольга")
    grant(user, "listen_recording", "view_all_calls")
    client.force_login(user)
    return client


def make_recording(operator, recordings_dir, *, name=None, content=AUDIO, duration=10, **call_fields) -> Recording:
    call = make_call(operator, **call_fields)
    name = name or f"{call.linkedid}.wav"
    if content is not None:
        (recordings_dir / name).write_bytes(content)
    return Recording.objects.create(call=call, file=str(recordings_dir / name), duration=duration)


def report(browser, **params):
    return browser.get(reverse("history:recordings"), params)


def rows(response) -> list[int]:
    return [recording.pk for recording in response.context["page"].object_list]


def audio(client, recording, range_header=None):
    headers = {"Range": range_header} if range_header else {}
    return client.get(reverse("history:recording_audio", args=[recording.pk]), headers=headers)


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def days_ago(days: int) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days)


# -- the report --------------------------------------------------------------------------------

def test_the_report_shows_the_last_year_up_to_today_by_default(listener, operator_user, recordings_dir):
    recent = make_recording(operator_user, recordings_dir, started_at=days_ago(3))
    make_recording(operator_user, recordings_dir, started_at=days_ago(400))
    response = report(listener)
    today = timezone.localdate()
    assert response.context["form"]["to"].value() == today.strftime("%d.%m.%Y")
    assert response.context["form"].cleaned_data["from"] == year_before(today) + datetime.timedelta(days=1)
    assert rows(response) == [recent.pk]


@pytest.mark.parametrize("since", ["%Y-%m-%d", "%d.%m.%Y"])
def test_the_period_is_typed_as_iso_or_as_dd_mm_yyyy(listener, operator_user, recordings_dir, since):
    old = make_recording(operator_user, recordings_dir, started_at=days_ago(20))
    make_recording(operator_user, recordings_dir, started_at=days_ago(2))
    params = {"from": (timezone.localdate() - datetime.timedelta(days=25)).strftime(since),
              "to": (timezone.localdate() - datetime.timedelta(days=10)).strftime(since)}
    assert rows(report(listener, **params)) == [old.pk]


def test_the_period_is_whole_days_in_the_server_time_zone(listener, operator_user, recordings_dir):
    # 22:30 UTC on 1 March is 01:30 on 2 March in Moscow.
    late = make_recording(operator_user, recordings_dir, started_at=datetime.datetime(2026, 3, 1, 22, 30, tzinfo=datetime.UTC))
    response = report(listener, **{"from": "02.03.2026", "to": "02.03.2026"})
    assert rows(response) == [late.pk]
    assert "02.03.2026" in response.content.decode() and "01:30:00" in response.content.decode()
    assert rows(report(listener, **{"from": "2026-03-01", "to": "2026-03-01"})) == []


def test_a_bad_date_is_reported_and_kept(listener):
    response = report(listener, **{"from": "32.13.2026", "to": "2026-12-31"})
    assert response.status_code == 200
    assert response.context["form"].errors["from"] and response.context["page"] is None
    html = response.content.decode()
    assert 'value="32.13.2026"' in html and 'class="message error"' in html


def test_a_date_no_period_can_end_on_is_refused(listener):
    response = report(listener, **{"from": "01.01.2026", "to": "31.12.9999"})
    assert response.status_code == 200 and response.context["form"].errors["to"]


@pytest.mark.parametrize("parameters", HOSTILE, ids=lambda parameters: next(iter(parameters)))
def test_hostile_parameters_are_no_server_error(supervisor, operator_user, recordings_dir, parameters):
    recording = make_recording(operator_user, recordings_dir)
    for url in (reverse("history:recordings"), reverse("history:recording_audio", args=[recording.pk])):
        assert supervisor.get(url, parameters).status_code < 500


def test_a_period_that_ends_before_it_starts_is_refused(listener):
    response = report(listener, **{"from": "10.03.2026", "to": "01.03.2026"})
    assert response.context["form"].errors["to"] and response.context["page"] is None
    assert 'value="10.03.2026"' in response.content.decode()


def test_the_client_filter_shows_only_that_clients_recordings_and_says_whose(listener, operator_user, recordings_dir):
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", card_number="00001")
    theirs = make_recording(operator_user, recordings_dir, client=savitskaya)
    make_recording(operator_user, recordings_dir)
    response = report(listener, client=savitskaya.pk)
    assert rows(response) == [theirs.pk]
    html = response.content.decode()
    assert "<h1>Записи разговоров: <a" in html and "Савицкая Наталья" in html and "00001" in html
    assert f'name="client" value="{savitskaya.pk}"' in html  # «Сформировать» keeps the client


def test_an_unknown_client_is_a_message_not_an_error(listener):
    for wrong in ("999999", "abc"):
        response = report(listener, client=wrong)
        assert response.status_code == 200 and response.context["form"].errors["client"]


def test_the_footer_counts_the_whole_period_not_the_page(listener, operator_user, recordings_dir, monkeypatch):
    monkeypatch.setattr(recordings_module, "PAGE_SIZE", 2)
    for seconds in (3600, 1800, 59, 1):
        make_recording(operator_user, recordings_dir, duration=seconds)
    make_recording(operator_user, recordings_dir, duration=7200, started_at=days_ago(500))  # outside the period
    response = report(listener)
    assert len(rows(response)) == 2
    assert response.context["totals"] == {"count": 4, "seconds": 5460}
    html = response.content.decode()
    assert "Записей: 4" in html and "01:31:00" in html
    assert "?page=2" in html


def test_the_pages_keep_the_parameters(listener, operator_user, recordings_dir, monkeypatch):
    monkeypatch.setattr(recordings_module, "PAGE_SIZE", 1)
    client = Client.objects.create(last_name="Иванов")
    first = make_recording(operator_user, recordings_dir, client=client, started_at=days_ago(2))
    second = make_recording(operator_user, recordings_dir, client=client, started_at=days_ago(3))
    page_one = report(listener, **{"from": "2020-01-01", "client": client.pk})
    assert rows(page_one) == [first.pk]
    assert f"?from=2020-01-01&amp;client={client.pk}&amp;page=2" in page_one.content.decode()
    assert rows(report(listener, **{"from": "2020-01-01", "client": client.pk, "page": 2})) == [second.pk]


def test_one_query_fetches_a_pages_rows_however_many_there_are(listener, operator_user, recordings_dir):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            report(listener)
        return len(captured)

    make_recording(operator_user, recordings_dir, client=Client.objects.create(last_name="А"))
    one = queries()
    for name in "БВГД":
        make_recording(operator_user, recordings_dir, client=Client.objects.create(last_name=name))
    assert queries() == one


def test_an_operator_sees_only_recordings_of_their_own_calls(listener, operator_user, other_operator, recordings_dir):
    own = make_recording(operator_user, recordings_dir)
    rung = make_recording(other_operator, recordings_dir)  # rang both, the other one took it
    rung.call.rung.add(operator_user)
    make_recording(other_operator, recordings_dir)
    assert sorted(rows(report(listener))) == sorted([own.pk, rung.pk])


def test_the_recordings_rule_is_the_calls_rule(operator_user, other_operator, recordings_dir):
    made = [make_recording(operator_user, recordings_dir), make_recording(other_operator, recordings_dir),
            make_recording(other_operator, recordings_dir), make_recording(None, recordings_dir)]
    made[1].call.rung.add(operator_user, other_operator)
    made[3].call.rung.add(operator_user)
    for user in (operator_user, other_operator):
        calls = Call.objects.filter(operators_call(user.pk))
        assert set(recordings_visible_to(user)) == set(Recording.objects.filter(call__in=calls)), user


def test_a_supervisor_sees_every_operators_recordings(supervisor, operator_user, other_operator, recordings_dir):
    made = [make_recording(operator_user, recordings_dir), make_recording(other_operator, recordings_dir)]
    assert sorted(rows(report(supervisor))) == sorted(recording.pk for recording in made)


def test_the_player_is_only_for_users_allowed_to_listen(operator_client, operator_user, recordings_dir):
    recording = make_recording(operator_user, recordings_dir)
    html = report(operator_client).content.decode()
    assert "Нет доступа" in html and "<audio" not in html
    grant(operator_user, "listen_recording")
    html = report(operator_client).content.decode()
    audio_url = reverse("history:recording_audio", args=[recording.pk])
    assert f'<audio controls preload="none" src="{audio_url}"' in html and "Нет доступа" not in html


def test_a_missing_file_shows_recording_unavailable_instead_of_a_player(listener, operator_user, recordings_dir):
    make_recording(operator_user, recordings_dir, content=None)
    html = report(listener).content.decode()
    assert "запись недоступна" in html and "<audio" not in html


# -- the audio ---------------------------------------------------------------------------------

def test_the_audio_needs_a_login(client, operator_user, recordings_dir):
    recording = make_recording(operator_user, recordings_dir)
    response = audio(client, recording)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_audio_needs_the_listen_permission(operator_client, operator_user, recordings_dir):
    recording = make_recording(operator_user, recordings_dir)
    assert audio(operator_client, recording).status_code == 403
    assert not RecordingListen.objects.exists()


def test_another_operators_recording_is_not_found(listener, other_operator, recordings_dir):
    recording = make_recording(other_operator, recordings_dir)
    assert audio(listener, recording).status_code == 404
    assert not RecordingListen.objects.exists()


def test_the_whole_file_comes_with_accept_ranges_and_its_length(listener, operator_user, recordings_dir):
    response = audio(listener, make_recording(operator_user, recordings_dir))
    assert response.status_code == 200
    assert response["Accept-Ranges"] == "bytes" and response["Content-Length"] == "1024"
    assert response["Content-Type"] == "audio/wav"
    assert body(response) == AUDIO


@pytest.mark.parametrize(("asked", "first", "last"), [("bytes=0-99", 0, 99), ("bytes=100-", 100, 1023), ("bytes=-50", 974, 1023),
                                                      ("bytes=1000-5000", 1000, 1023), ("bytes=-5000", 0, 1023)])
def test_a_range_gets_exactly_its_bytes(listener, operator_user, recordings_dir, asked, first, last):
    response = audio(listener, make_recording(operator_user, recordings_dir), asked)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/1024"
    assert response["Content-Length"] == str(last - first + 1)
    assert body(response) == AUDIO[first:last + 1]


@pytest.mark.parametrize("asked", ["bytes=1024-", "bytes=2000-3000", "bytes=-0"])
def test_a_range_past_the_end_is_unsatisfiable(listener, operator_user, recordings_dir, asked):
    response = audio(listener, make_recording(operator_user, recordings_dir), asked)
    assert response.status_code == 416 and response["Content-Range"] == "bytes */1024"
    assert not RecordingListen.objects.exists()


@pytest.mark.parametrize("asked", ["bytes=0-9,20-29", "items=0-9", "bytes=abc", "bytes=9-0"])
def test_several_ranges_or_a_header_that_is_no_byte_range_get_the_whole_file(listener, operator_user, recordings_dir, asked):
    response = audio(listener, make_recording(operator_user, recordings_dir), asked)
    assert response.status_code == 200 and body(response) == AUDIO


@pytest.mark.parametrize("stored", ["/etc/passwd", "../outside.wav", "sub/../../outside.wav", "link.wav"])
def test_a_file_outside_the_recordings_directory_is_never_served(listener, operator_user, recordings_dir, stored):
    (recordings_dir.parent / "outside.wav").write_bytes(b"secret")
    (recordings_dir / "link.wav").symlink_to(recordings_dir.parent / "outside.wav")
    recording = Recording.objects.create(call=make_call(operator_user), file=stored)
    response = audio(listener, recording)
    assert response.status_code == 404 and b"secret" not in response.content and b"root:" not in response.content
    assert "запись недоступна" in report(listener).content.decode()


def test_a_relative_file_name_is_found_in_the_recordings_directory(listener, operator_user, recordings_dir):
    (recordings_dir / "2026" / "03").mkdir(parents=True)
    (recordings_dir / "2026" / "03" / "a.wav").write_bytes(AUDIO)
    recording = Recording.objects.create(call=make_call(operator_user), file="2026/03/a.wav")
    assert body(audio(listener, recording)) == AUDIO


def test_a_missing_file_is_not_found(listener, operator_user, recordings_dir):
    recording = make_recording(operator_user, recordings_dir, content=None)
    assert audio(listener, recording).status_code == 404
    assert not RecordingListen.objects.exists()


def test_a_playback_is_audited_once_not_per_range_request(listener, operator_user, recordings_dir):
    recording = make_recording(operator_user, recordings_dir)
    audio(listener, recording, "bytes=0-")
    audio(listener, recording, "bytes=100-")  # the same playback, further on
    audio(listener, recording, "bytes=-50")
    assert RecordingListen.objects.count() == 1
    audio(listener, recording)  # a second playback
    listens = list(RecordingListen.objects.all())
    assert len(listens) == 2
    assert {(listen.recording_id, listen.user_id, listen.file, listen.address) for listen in listens} == {
        (recording.pk, operator_user.pk, recording.file, "127.0.0.1")}


def test_an_audit_row_outlives_its_recording(listener, operator_user, recordings_dir):
    recording = make_recording(operator_user, recordings_dir)
    audio(listener, recording)
    recording.delete()
    listen = RecordingListen.objects.get()
    assert listen.recording is None and listen.file.endswith(".wav")


def test_behind_nginx_the_view_checks_audits_and_hands_the_file_over(listener, operator_user, recordings_dir, settings):
    settings.RECORDINGS_ACCEL_PREFIX = "/protected-recordings/"
    (recordings_dir / "2026").mkdir()
    recording = make_recording(operator_user, recordings_dir, name="2026/запись 1.wav")
    response = audio(listener, recording)
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == "/protected-recordings/2026/%D0%B7%D0%B0%D0%BF%D0%B8%D1%81%D1%8C%201.wav"
    assert response["Content-Type"] == "audio/wav"
    assert RecordingListen.objects.count() == 1
    settings.RECORDINGS_ACCEL_PREFIX = ""
    assert body(audio(listener, recording)) == AUDIO  # streamed by Django again


def test_the_checks_come_before_nginx(operator_client, operator_user, other_operator, recordings_dir, settings):
    settings.RECORDINGS_ACCEL_PREFIX = "/protected-recordings/"
    assert audio(operator_client, make_recording(operator_user, recordings_dir)).status_code == 403
    grant(operator_user, "listen_recording")
    assert audio(operator_client, make_recording(other_operator, recordings_dir)).status_code == 404
    assert audio(operator_client, make_recording(operator_user, recordings_dir, content=None)).status_code == 404


def test_under_asgi_the_range_is_streamed_without_reading_the_file_whole(listener, operator_user, recordings_dir):
    recording = make_recording(operator_user, recordings_dir, content=AUDIO * 200)  # 204,800 bytes
    path = reverse("history:recording_audio", args=[recording.pk])
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
        "headers": [(b"host", b"testserver"), (b"range", b"bytes=100-"),
                    (b"cookie", f"sessionid={listener.cookies['sessionid'].value}".encode())],
    }
    sent, requests = [], [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive():
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client stays connected

    async def send(message):
        sent.append(message)

    # As Django's own test clients do: the test's transaction must outlive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            async_to_sync(ASGIHandler())(scope, receive, send)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    assert sent[0]["status"] == 206 and (b"Content-Range", b"bytes 100-204799/204800") in sent[0]["headers"]
    assert b"".join(message.get("body", b"") for message in sent[1:]) == (AUDIO * 200)[100:]
    assert not [warning for warning in caught if "synchronous iterators" in str(warning.message)]


def test_under_asgi_the_file_is_read_a_block_at_a_time(tmp_path):
    path = tmp_path / "long.wav"
    path.write_bytes(b"x" * 200_000)
    response = FileRangeResponse(path.open("rb"), 1000, 150_000)

    async def blocks():
        return [block async for block in response]

    read = asyncio.run(blocks())
    response.close()
    assert [len(block) for block in read] == [65536, 65536, 18928]
    assert response.file.closed


def test_byte_ranges_and_audio_types():
    assert byte_range(None, 10) is None and byte_range("bytes=2-4", 10) == (2, 4)
    with pytest.raises(ValueError):
        byte_range("bytes=0-", 0)
    assert [audio_type(recordings_module.Path(name)) for name in ("a.wav", "a.WAV", "a.mp3", "a.ogg", "a.bin")] == [
        "audio/wav", "audio/wav", "audio/mpeg", "audio/ogg", "application/octet-stream"]


# -- the audit in the admin --------------------------------------------------------------------

def test_staff_list_the_listens_in_the_admin_and_cannot_add_or_change_them(client, django_user_model, listener, operator_user, recordings_dir):
    recording = make_recording(operator_user, recordings_dir)
    audio(listener, recording)
    staff = django_user_model.objects.create_user("auditor", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_recordinglisten"))
    client.force_login(staff)
    listing = client.get(reverse("admin:history_recordinglisten_changelist"))
    assert listing.status_code == 200 and recording.file in listing.content.decode() and "operator1" in listing.content.decode()
    assert client.get(reverse("admin:history_recordinglisten_add")).status_code == 403
    listen = RecordingListen.objects.get()
    assert client.post(reverse("admin:history_recordinglisten_change", args=[listen.pk]), {"file": "x"}).status_code == 403
    assert RecordingListen.objects.get().file == recording.file


def test_the_call_admin_shows_its_recordings(admin_client, operator_user, recordings_dir):
    recording = make_recording(operator_user, recordings_dir)
    page = admin_client.get(reverse("admin:history_call_change", args=[recording.call_id]))
    assert recording.file in page.content.decode()

