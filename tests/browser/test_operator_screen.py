"""The operator's live screen against the real stack: web server, listener and simulator, over TCP."""

import datetime
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from clients.models import Client
from clients.services import client_find_by_phone
from history.models import Call, CallReason, CallResult, ContactReason
from telephony.models import Operator
from tests.browser.conftest import SCREENSHOTS, log_in
from tests.helpers import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def anna(django_user_model):
    user = django_user_model.objects.create_user("operator1", password="secret-pass-1", first_name="Анна", last_name="Администраторова")
    Operator.objects.create(user=user, extension="100", channel="PJSIP/100")
    return user


def shoot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def open_screen(page):
    log_in(page, "operator1", "secret-pass-1")
    expect(page.locator("#call-popups")).to_have_attribute("data-link", "up")


def test_a_known_callers_card_pops_up_and_follows_the_call(stack, stack_page, anna):
    Client.objects.create(last_name="Савицкая", first_name="Наталья", middle_name="Геннадьевна", phone_mobile="+74957894561", card_number="D-100", blacklisted=True)
    open_screen(stack_page)
    stack.ring("84957894561", ring=1.5, talk=2)
    panel = stack_page.locator(".popup-panel")
    expect(panel.locator("h2")).to_have_text("Савицкая Наталья Геннадьевна")
    expect(panel.locator(".client-card .message.error")).to_have_text("Клиент в черном списке")
    expect(panel.locator(".call-status")).to_have_text("звонит")
    shoot(stack_page, "popup-known-caller")
    expect(panel.locator(".call-status")).to_have_text("отвечен", timeout=5000)
    expect(panel.locator(".call-status")).to_contain_text("звонок завершён", timeout=8000)
    shoot(stack_page, "popup-call-ended")


def test_an_unknown_callers_form_creates_a_client_found_by_that_number_afterwards(stack, stack_page, anna):
    open_screen(stack_page)
    stack.ring("89031112233", talk=10)
    panel = stack_page.locator(".popup-panel")
    expect(panel.locator("#id_caller-phone_mobile")).to_have_value("+79031112233")
    panel.locator("#id_caller-last_name").fill("Новикова")
    panel.locator("#id_caller-first_name").fill("Ирина")
    panel.locator("#id_comment").fill("хочет записаться на стрижку")
    shoot(stack_page, "popup-unknown-caller")
    panel.locator("button[value=create_client]").click()
    expect(panel.locator("h2")).to_have_text("Новикова Ирина")
    expect(panel.locator("#id_comment")).to_have_value("хочет записаться на стрижку")
    [client] = client_find_by_phone("8 (903) 111-22-33")
    assert client.full_name == "Новикова Ирина"
    assert Call.objects.get().client == client


def test_a_second_call_during_an_open_form_waits_with_the_manuals_warning(stack, stack_page, anna):
    Client.objects.create(last_name="Савицкая", first_name="Наталья", phone_mobile="+74957894561")
    open_screen(stack_page)
    stack.ring("84957894561", talk=20)
    panel = stack_page.locator(".popup-panel")
    expect(panel.locator("h2")).to_have_text("Савицкая Наталья")
    stack.ring("89161234567", talk=20)
    warning = stack_page.locator(".popup-warning")
    expect(warning).to_contain_text('Сначала необходимо закрыть уже открытую форму "Звонки"!')
    expect(warning).to_contain_text("В очереди звонков: 1")
    shoot(stack_page, "popup-second-call-warning")
    panel.locator("button[data-close]").click()
    expect(panel.locator("#id_caller-phone_mobile")).to_have_value("+79161234567")
    expect(warning).to_be_hidden()


def test_a_call_that_ended_while_the_page_was_closed_waits_as_pending(stack, stack_page, anna):
    linkedid = stack.ring("84991234567", scenario="inbound_missed", ring=0.5)
    wait_for(lambda: Call.objects.filter(linkedid=linkedid, ended_at__isnull=False).exists(), timeout=15)
    open_screen(stack_page)
    pending = stack_page.locator(".pending")
    expect(pending).to_contain_text("Звонки, пока вас не было")
    expect(pending.locator("li")).to_have_count(1)
    expect(pending.locator("li")).to_contain_text("+7 499 123-45-67")
    expect(pending.locator("li button.dial")).to_have_attribute("data-dial", "+74991234567")
    shoot(stack_page, "pending-calls")
    pending.locator("li button:not(.dial)").click()
    expect(stack_page.locator(".popup-panel #id_caller-phone_mobile")).to_have_value("+74991234567")
    expect(pending).to_be_hidden()


def test_registration_shows_in_the_clients_data_and_clears_the_other_tab(stack, browser, stack_page, anna):
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", phone_mobile="+74957894561")
    reason, result = CallReason.objects.create(name="Запись на приём"), CallResult.objects.create(name="Записана")
    ContactReason.objects.create(name="Повторный визит")
    other_tab = stack_page.context.new_page()
    open_screen(stack_page)
    other_tab.goto("/history/")
    expect(other_tab.locator("#call-popups")).to_have_attribute("data-link", "up")
    stack.ring("84957894561", talk=5)
    panel, other_panel = stack_page.locator(".popup-panel"), other_tab.locator(".popup-panel")
    expect(panel.locator("h2")).to_have_text("Савицкая Наталья")
    expect(other_panel.locator("h2")).to_have_text("Савицкая Наталья")
    panel.locator("input[name=caller_kind][value=regular]").check()
    panel.locator("#id_reason").select_option(str(reason.pk))
    panel.locator("#id_result").select_option(str(result.pk))
    panel.locator("#id_comment").fill("подтвердила визит")
    reminder = timezone.localdate() + datetime.timedelta(days=3)
    panel.locator("#id_reminder_on").fill(reminder.strftime("%d.%m.%Y"))
    shoot(stack_page, "popup-registration")
    panel.locator("button[value=register]").click()
    expect(panel).to_be_hidden()
    expect(other_panel).to_be_hidden()
    stack_page.goto(f"/clients/{savitskaya.pk}/")
    row = stack_page.locator("table.grid tbody tr").first
    expect(row).to_contain_text("подтвердила визит")
    expect(row).to_contain_text("Запись на приём")
    expect(row).to_contain_text("Постоянный клиент")
    expect(stack_page.locator("main")).to_contain_text(reminder.strftime("%d.%m.%Y"))
    shoot(stack_page, "client-card-after-registration")


def test_the_page_reconnects_by_itself_after_a_server_restart(stack, stack_page, anna):
    Client.objects.create(last_name="Савицкая", first_name="Наталья", phone_mobile="+74957894561")
    open_screen(stack_page)
    stack.stop()
    expect(stack_page.locator("#call-popups")).to_have_attribute("data-link", "down")
    stack.start()
    expect(stack_page.locator("#call-popups")).to_have_attribute("data-link", "up", timeout=20_000)
    stack.ring("84957894561")
    expect(stack_page.locator(".popup-panel h2")).to_have_text("Савицкая Наталья")


def test_a_ring_group_call_pops_up_for_both_operators_and_the_other_hears_who_took_it(stack, browser, stack_page, anna, django_user_model):
    boris = django_user_model.objects.create_user("operator2", password="secret-pass-2", first_name="Борис", last_name="Петров")
    Operator.objects.create(user=boris, extension="101", channel="PJSIP/101")
    open_screen(stack_page)
    context = browser.new_context(base_url=stack.url, viewport={"width": 1280, "height": 1000})
    other = context.new_page()
    log_in(other, "operator2", "secret-pass-2")
    expect(other.locator("#call-popups")).to_have_attribute("data-link", "up")

    stack.ring("84957894561", extensions="101,100", ring=3, talk=4)  # both ring; 101 answers
    for page in (stack_page, other):
        expect(page.locator(".popup-panel .call-status")).to_have_text("звонит")
    expect(other.locator(".popup-panel .call-status")).to_have_text("отвечен", timeout=8000)
    expect(stack_page.locator(".popup-panel .call-taken")).to_have_text("Звонок принял(а) Борис Петров")
    shoot(stack_page, "popup-taken-by-a-colleague")
    expect(stack_page.locator(".popup-panel")).to_be_hidden(timeout=8000)
    expect(other.locator(".popup-panel .call-status")).to_contain_text("звонок завершён", timeout=10000)
    context.close()


def test_a_click_on_a_clients_phone_calls_them_and_the_call_is_registered_as_outgoing(stack, stack_page, anna):
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", phone_mobile="+74957894561")
    reason, result = CallReason.objects.create(name="Напоминание о визите"), CallResult.objects.create(name="Подтвердила")
    stack.outcome(ring=1, talk=3)
    open_screen(stack_page)
    stack_page.goto(f"/clients/{savitskaya.pk}/")
    expect(stack_page.locator("#call-popups")).to_have_attribute("data-link", "up")

    stack_page.locator("button.dial[data-dial='+74957894561']").click()

    bar = stack_page.locator("#call-popups .dialling")
    expect(bar).to_have_attribute("data-stage", "operator_ringing")
    expect(bar.locator(".dialling-status")).to_have_text("Звонит ваш телефон: снимите трубку")
    expect(bar).to_have_attribute("data-stage", "connected", timeout=8000)
    expect(bar.locator(".dialling-status")).to_have_text("Соединено")
    expect(bar.locator(".dialling-phone")).to_have_text("Савицкая Наталья · +7 495 789-45-61")
    expect(bar.locator(".dialling-timer")).to_have_text(re.compile(r"^00:00:0\d$"))
    shoot(stack_page, "click-to-call-connected")
    panel = stack_page.locator(".popup-panel")
    expect(panel.locator(".call-head strong")).to_have_text("Исходящий звонок")
    expect(panel.locator("h2")).to_have_text("Савицкая Наталья")
    expect(bar).to_have_attribute("data-stage", "ended", timeout=8000)
    expect(bar.locator(".dialling-status")).to_have_text("Разговор завершён")
    panel.locator("#id_reason").select_option(str(reason.pk))
    panel.locator("#id_result").select_option(str(result.pk))
    panel.locator("button[value=register]").click()
    expect(panel).to_be_hidden()

    call = Call.objects.get()
    assert (call.direction, call.disposition, call.client, call.operator, call.reason, call.registered_at is not None) == (
        "out", "answered", savitskaya, anna, reason, True,
    )
    stack_page.goto(f"/clients/{savitskaya.pk}/")
    expect(stack_page.locator("table.grid tbody tr").first).to_contain_text("Исходящий")
