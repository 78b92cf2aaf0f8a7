import pytest
from playwright.sync_api import expect

from clients.models import Client
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_finds_a_client_by_phone_and_opens_the_card(page, screenshot, operator_user):
    Client.objects.create(last_name="Савицкая", first_name="Наталья", middle_name="Геннадьевна", phone_mobile="+74957894561", blacklisted=True)
    Client.objects.create(last_name="Иванов", first_name="Иван", phone_mobile="+79161234567")
    log_in(page, "operator1", "secret-pass-1")
    expect(page.locator("h1")).to_have_text("Клиенты")
    screenshot("clients-list")
    page.fill("input[name=q]", "8 (495) 789-45-61")
    page.click("text=Найти")
    rows = page.locator("table.grid tbody tr")
    expect(rows).to_have_count(1)
    page.click("text=Савицкая Наталья Геннадьевна")
    expect(page.locator("main .message.error")).to_have_text("Клиент в черном списке")
    expect(page.locator("dd .phone").first).to_have_text("+7 495 789-45-61")
    screenshot("client-card")


def test_a_bad_phone_is_pointed_out_and_nothing_typed_is_lost(page, screenshot, operator_user):
    log_in(page, "operator1", "secret-pass-1")
    page.click("text=Новый клиент")
    page.fill("#id_last_name", "Новикова")
    page.fill("#id_first_name", "Ирина")
    page.fill("#id_phone_mobile", "12-34")
    page.fill("#id_city", "Казань")
    page.fill("#id_call_back_on", "05.12.2026")
    page.click("button:has-text('Сохранить')")
    expect(page.locator("#id_phone_mobile_error")).to_be_visible()
    expect(page.locator("#id_last_name")).to_have_value("Новикова")
    expect(page.locator("#id_city")).to_have_value("Казань")
    expect(page.locator("#id_phone_mobile")).to_have_value("12-34")
    expect(page.locator("#id_call_back_on")).to_have_value("05.12.2026")
    screenshot("client-form-error")
    assert not Client.objects.exists()
    page.fill("#id_phone_mobile", "8 916 123-45-67")
    page.click("button:has-text('Сохранить')")
    expect(page.locator("h1")).to_have_text("Новикова Ирина")
    client = Client.objects.get()
    assert client.phone_mobile == "+79161234567" and str(client.call_back_on) == "2026-12-05"


def test_the_interface_switches_to_english_and_back(page, operator_user):
    log_in(page, "operator1", "secret-pass-1")
    page.select_option("select[name=language]", "en")
    expect(page.locator("h1")).to_have_text("Clients")
    page.select_option("select[name=language]", "ru")
    expect(page.locator("h1")).to_have_text("Клиенты")


def test_a_wrong_password_is_refused_in_russian(page, operator_user):
    log_in(page, "operator1", "nope")
    expect(page.locator(".message.error")).to_contain_text("Неверное имя пользователя или пароль")
    expect(page.locator("input[name=username]")).to_have_value("operator1")
