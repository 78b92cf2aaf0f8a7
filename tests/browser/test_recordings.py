import wave

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from playwright.sync_api import expect

from clients.models import Client
from history.models import Recording, RecordingListen
from tests.browser.conftest import SCREENSHOTS, log_in
from tests.helpers import make_call

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def write_wav(path, seconds: float) -> None:
    """A real recording as MixMonitor writes one: 8 kHz mono 16-bit PCM (here a rising buzz)."""
    frames = int(8000 * seconds)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"".join((i * 64 % 65536 - 32768).to_bytes(2, "little", signed=True) for i in range(frames)))


def test_a_supervisor_plays_a_recording_from_the_report(desk, settings, tmp_path, operator_user, django_user_model):
    page = desk
    settings.RECORDINGS_DIR = tmp_path / "monitor"
    settings.RECORDINGS_DIR.mkdir()
    write_wav(settings.RECORDINGS_DIR / "1733400000.1.wav", 3)
    client = Client.objects.create(last_name="Савицкая", first_name="Наталья", middle_name="Геннадьевна", card_number="00001")
    call = make_call(operator_user, client=client, started_at=timezone.now(), billsec=10)
    recording = Recording.objects.create(call=call, file=str(settings.RECORDINGS_DIR / "1733400000.1.wav"), duration=10)
    Recording.objects.create(call=make_call(operator_user), file=str(settings.RECORDINGS_DIR / "gone.wav"), duration=20)
    supervisor = django_user_model.objects.create_user("supervisor", password="secret-pass-2", first_name="Ольга")
    supervisor.user_permissions.add(*Permission.objects.filter(codename__in=["listen_recording", "view_all_calls"]))

    ranges = []
    page.on("response", lambda response: "/audio/" in response.url and ranges.append((response.status, response.request.headers.get("range"))))
    log_in(page, "supervisor", "secret-pass-2")
    page.click("nav >> text=Записи разговоров")
    expect(page.locator("h1")).to_have_text("Записи разговоров")
    expect(page.locator("tfoot")).to_contain_text("Записей: 2")
    expect(page.locator("tfoot")).to_contain_text("00:00:30")
    row = page.locator(f"tr[data-recording='{recording.pk}']")
    expect(row).to_contain_text("Савицкая Наталья Геннадьевна")
    expect(page.locator("tbody")).to_contain_text("запись недоступна")
    player = row.locator("audio")
    expect(player).to_have_attribute("preload", "none")
    assert not ranges  # nothing is fetched before play

    box = player.bounding_box()
    page.mouse.click(box["x"] + 16, box["y"] + box["height"] / 2)  # the player's own play button
    page.wait_for_function("audio => audio.currentTime > 0.5", arg=player.element_handle())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "recordings-report.png"), full_page=True)
    assert ranges and all(status == 206 for status, _ in ranges), ranges
    assert ranges[0][1] == "bytes=0-"
    assert RecordingListen.objects.filter(recording=recording, user=supervisor).count() == 1
