"""The client's service history in a real browser: from the card, filtered, printed, a call's details."""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from clients.models import Client
from history.models import CallReason, CallResult
from tests.browser.conftest import SCREENSHOTS, log_in
from tests.helpers import make_call

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fits(page) -> bool:
    """The call table fits the page's column at this width: nothing sticks out on the right."""
    return page.evaluate("document.querySelector('table.calls').getBoundingClientRect().right <= document.querySelector('main').getBoundingClientRect().right")


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_an_operator_reads_filters_prints_and_opens_a_clients_history(desk, operator_user):
    page = desk
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", middle_name="Геннадьевна", phone_mobile="+74957894561")
    now = timezone.now()
    make_call(
        operator_user, client=savitskaya, disposition="answered", caller_kind="regular", started_at=now - datetime.timedelta(days=10),
        duration=97, billsec=90, reason=CallReason.objects.create(name="Запись"), result=CallResult.objects.create(name="Встреча"),
        comment="визит подтверждён", registered_at=now - datetime.timedelta(days=10),
    )
    make_call(operator_user, client=savitskaya, disposition="answered", started_at=now - datetime.timedelta(days=400), comment="давний звонок",
              registered_at=now - datetime.timedelta(days=400))
    make_call(operator_user, client=savitskaya, disposition="no_answer", started_at=now - datetime.timedelta(days=3))

    log_in(page, "operator1", "secret-pass-1")
    page.goto(f"/clients/{savitskaya.pk}/")
    page.click("main .toolbar >> text=История")
    expect(page.locator("h1")).to_have_text("История обслуживания клиента: Савицкая Наталья Геннадьевна")
    rows = page.locator("table.calls tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("визит подтверждён")

    page.fill("input[name=since]", (timezone.localdate() - datetime.timedelta(days=500)).strftime("%d.%m.%Y"))
    page.click("form.filters >> text=Показать")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text("давний звонок")

    page.check("input[name=all]")
    page.click("form.filters >> text=Показать")
    expect(rows).to_have_count(3)
    missed = page.locator("table.calls tr.disposition-no_answer")
    expect(missed).to_be_visible()
    expect(missed.locator(".badge")).to_have_text("нет ответа")
    answered = page.locator("table.calls tr:has-text('визит подтверждён')")
    assert missed.evaluate("row => getComputedStyle(row).backgroundColor") != answered.evaluate("row => getComputedStyle(row).backgroundColor")
    expect(page.locator("p.count")).to_have_text("3 звонка")
    expect(page.locator("input[name=all]")).to_be_checked()
    assert fits(page)
    shoot(page, "client-history")

    page.emulate_media(media="print")
    expect(page.locator(".topbar")).to_be_hidden()
    expect(page.locator("#call-popups")).to_be_hidden()
    expect(page.locator("button.print")).to_be_hidden()
    expect(page.locator("table.calls")).to_be_visible()
    expect(missed).to_be_visible()
    shoot(page, "client-history-print")
    page.emulate_media(media="screen")
    expect(page.locator(".topbar")).to_be_visible()

    answered.locator("text=Детально").click()
    expect(page.locator("dd[data-field=comment]")).to_have_text("визит подтверждён")
    expect(page.locator("dd[data-field=reason]")).to_have_text("Запись")
    expect(page.locator("dd[data-field=result]")).to_have_text("Встреча")
    expect(page.locator("dd[data-field=duration]")).to_have_text("00:01:37")
    expect(page.locator("dd[data-field=caller_kind]")).to_have_text("Постоянный клиент")
    expect(page.locator("text=Нет доступа к записям")).to_be_visible()
    shoot(page, "call-detail")


def test_the_summary_tab_counts_the_clients_calls(desk, operator_user):
    page = desk
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", phone_mobile="+74957894561")
    booking = CallReason.objects.create(name="Запись")
    for days in (1, 2):
        make_call(operator_user, client=savitskaya, reason=booking, disposition="answered",
                  started_at=timezone.now() - datetime.timedelta(days=days), registered_at=timezone.now())
    make_call(operator_user, client=savitskaya, disposition="busy", started_at=timezone.now() - datetime.timedelta(days=3))

    log_in(page, "operator1", "secret-pass-1")
    page.goto(f"/clients/{savitskaya.pk}/history/?all=on")
    page.click("nav.tabs >> text=Сводные данные")
    expect(page.locator("[data-count=total]")).to_have_text("3")
    expect(page.locator("[data-count=missed]")).to_have_text("1")
    expect(page.locator("table[data-group=reason] tr:has-text('Запись') td")).to_have_text("2")
    expect(page.locator("input[name=all]")).to_be_checked()
    shoot(page, "client-history-summary")
    page.click("nav.tabs >> text=Звонки")
    expect(page.locator("table.calls tbody tr")).to_have_count(3)


def test_an_operator_finds_missed_calls_from_a_number_in_all_calls(desk, operator_user):
    page = desk
    now = timezone.now()
    make_call(operator_user, phone="+79031234567", disposition="busy", started_at=now - datetime.timedelta(hours=2))
    make_call(operator_user, phone="+79031234567", disposition="answered", duration=3725, started_at=now - datetime.timedelta(hours=1))
    make_call(operator_user, phone="+74957894561", disposition="no_answer", started_at=now - datetime.timedelta(minutes=30))

    log_in(page, "operator1", "secret-pass-1")
    page.click(".topbar nav >> text=История")
    rows = page.locator("table.calls tbody tr")
    expect(rows).to_have_count(3)
    page.fill("input[name=party]", "8 (903) 123-45-67")
    page.click("form.filters >> text=Показать")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("01:02:05")
    page.select_option("select[name=outcome]", "missed")
    page.click("form.filters >> text=Показать")
    expect(rows).to_have_count(1)
    expect(page.locator("table.calls tr.disposition-busy .badge")).to_have_text("занято")
    expect(page.locator("input[name=party]")).to_have_value("8 (903) 123-45-67")
    assert fits(page)
    shoot(page, "all-calls-filtered")
