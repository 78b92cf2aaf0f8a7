"""Smart transfer on `make run`'s stack: the simulator's dialplan asks the web server, the manager's page pops the card."""

import urllib.request

import pytest
from playwright.sync_api import expect

from clients.models import Client
from history.models import Call
from telephony.models import Operator, RouteDecision
from tests.browser.conftest import SCREENSHOTS, Stack, browser_page, log_in
from tests.helpers import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOKEN = "browser-dialplan-token"


@pytest.fixture
def smart_stack(transactional_db, tmp_path):
    """The stack with a known DIALPLAN_TOKEN, so the test can ask the route itself."""
    running = Stack(tmp_path)
    running.environ["DIALPLAN_TOKEN"] = TOKEN
    with running:
        yield running


@pytest.fixture
def smart_page(browser, smart_stack):
    with browser_page(browser, smart_stack.url, 1366, 768) as page:
        yield page


@pytest.fixture
def boris(django_user_model):
    """The manager, at extension 101; operator1 at 100 is the normal route."""
    anna = django_user_model.objects.create_user("operator1", password="secret-pass-1", first_name="Анна")
    Operator.objects.create(user=anna, extension="100", channel="PJSIP/100")
    user = django_user_model.objects.create_user("operator2", password="secret-pass-2", first_name="Борис", last_name="Регистраторов")
    Operator.objects.create(user=user, extension="101", channel="PJSIP/101")
    return user


def route(stack, number: str) -> str:
    with urllib.request.urlopen(f"{stack.url}/telephony/dialplan/route?number={number}&token={TOKEN}", timeout=5) as response:
        return response.read().decode()


def open_managers_page(page, stack, client_number: str):
    log_in(page, "operator2", "secret-pass-2")
    expect(page.locator("#call-popups")).to_have_attribute("data-link", "up")
    wait_for(lambda: route(stack, client_number) == "101", timeout=10)  # the open page counts as the manager being in


def test_a_clients_call_pops_the_card_on_their_managers_page(smart_stack, smart_page, boris):
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", middle_name="Геннадьевна", phone_mobile="+74957894561", manager=boris)
    assert route(smart_stack, "84957894561") == "", "the manager is away until a page of theirs is open"
    open_managers_page(smart_page, smart_stack, "84957894561")
    linkedid = smart_stack.ring("84957894561", scenario="inbound_smart", extensions="100", ring=2, talk=3)
    panel = smart_page.locator(".popup-panel")
    expect(panel.locator("h2")).to_have_text("Савицкая Наталья Геннадьевна")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    smart_page.screenshot(path=str(SCREENSHOTS / "smart-transfer-popup.png"))
    wait_for(lambda: Call.objects.filter(linkedid=linkedid, ended_at__isnull=False).exists(), timeout=15)
    call = Call.objects.get(linkedid=linkedid)
    assert (call.extension, call.operator, call.client) == ("101", boris, savitskaya)
    decision = RouteDecision.objects.get(linkedid=linkedid)
    assert (decision.extension, decision.reason) == ("101", RouteDecision.Reason.MANAGER)
    smart_page.goto(f"/history/calls/{call.pk}/")
    expect(smart_page.locator("table.route-decisions")).to_contain_text("менеджер доступен")


def test_the_demo_button_calls_from_a_client_the_operator_manages(smart_stack, smart_page, boris):
    Client.objects.create(last_name="Орлов", first_name="Пётр", phone_mobile="+79166715740", manager=boris)
    open_managers_page(smart_page, smart_stack, "89166715740")
    smart_page.locator(".demo button[data-scenario=inbound_smart]").click()
    expect(smart_page.locator(".popup-panel h2")).to_have_text("Орлов Пётр")
    wait_for(lambda: RouteDecision.objects.filter(number="+79166715740", extension="101").exists())
