"""«Пропущенные» in a real Chromium at 1366×768, in Russian: the numbers to call back, each with its «Позвонить» button."""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from clients.models import Client
from tests.browser.conftest import SCREENSHOTS, log_in
from tests.helpers import make_call

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def missed_call(operator, phone: str, started_at: datetime.datetime, client=None):
    ended_at = started_at + datetime.timedelta(seconds=20)
    call = make_call(None, phone=phone, client=client, disposition="no_answer", started_at=started_at, ended_at=ended_at)
    call.rung.add(operator)


def test_an_operator_opens_the_missed_calls_and_sees_the_call_back_button(desk, operator_user):
    page = desk
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", phone_mobile="+79031234567")
    now = timezone.now()
    missed_call(operator_user, "+79031234567", now - datetime.timedelta(hours=2), savitskaya)
    missed_call(operator_user, "+79031234567", now - datetime.timedelta(hours=1), savitskaya)
    missed_call(operator_user, "+74957894561", now - datetime.timedelta(hours=3))
    log_in(page, "operator1", "secret-pass-1")
    page.get_by_role("link", name="Пропущенные").click()
    expect(page.locator("h1")).to_have_text("Пропущенные звонки")
    rows = page.locator("table.missed tbody tr")
    expect(rows).to_have_count(2)
    first = rows.first
    expect(first).to_contain_text("+7 903 123-45-67")
    expect(first).to_contain_text("Савицкая Наталья")
    expect(first.locator("td.missed-count")).to_have_text("2")
    expect(first).to_contain_text(timezone.localtime(now - datetime.timedelta(hours=1)).strftime("%d.%m.%Y"))
    button = first.get_by_role("button", name="Позвонить по номеру +7 903 123-45-67")
    expect(button).to_be_visible()
    expect(button).to_have_attribute("data-dial", "+79031234567")
    box = button.bounding_box()
    assert box["x"] + box["width"] <= 1366, "the button fits the screen without scrolling sideways"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "missed-calls.png"), full_page=True)


@pytest.mark.parametrize("typed", ["8 (903) 123-45-67", "+7 (903) 123-45-67"])
def test_a_phone_typed_key_by_key_with_brackets_is_saved_whole(desk, operator_user, typed):
    page = desk
    log_in(page, "operator1", "secret-pass-1")
    page.goto("/clients/new/")
    page.fill("#id_last_name", "Новикова")
    page.locator("#id_phone_mobile").press_sequentially(typed)  # as a person types: the input's maxlength applies
    expect(page.locator("#id_phone_mobile")).to_have_value(typed)
    page.click("button:has-text('Сохранить')")
    expect(page.locator("h1")).to_have_text("Новикова")
    assert Client.objects.get().phone_mobile == "+79031234567"
