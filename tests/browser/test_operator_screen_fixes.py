"""The operator's screen where it used to hurt: the pop-up's room, keys, confirmations, the live link, small screens."""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from clients.models import Client
from history.models import Call, CallReason, CallResult
from tests.browser.test_operator_screen import anna, open_screen, shoot  # noqa: F401 -- the operator fixture
from tests.helpers import make_call, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def missed_calls(operator, count):
    """`count` missed calls (and one busy) the operator has not registered yet, from known and unknown numbers."""
    ended = timezone.now() - datetime.timedelta(minutes=5)
    for number in range(count):
        make_call(operator, phone=f"+7916000000{number}", started_at=ended, ended_at=ended, disposition="no_answer")
    Client.objects.create(last_name="Занятова", phone_mobile="+74950000001")
    make_call(operator, phone="+74950000001", started_at=ended, ended_at=ended, disposition="busy")


def inside(box, width, height):
    return box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= width and box["y"] + box["height"] <= height


@pytest.mark.parametrize("width, height", [(1366, 768), (1024, 768)])
def test_the_pop_up_fits_the_screen_with_save_and_close_in_view_and_covers_nothing(stack, stack_page, anna, width, height):  # noqa: F811
    stack_page.set_viewport_size({"width": width, "height": height})
    missed_calls(anna, 4)
    Client.objects.create(last_name="Савицкая", first_name="Наталья", phone_mobile="+74957894561")
    open_screen(stack_page)
    pending = stack_page.locator(".pending")
    expect(pending.locator("li")).to_have_count(5)
    expect(pending.locator("li[data-outcome=busy] .outcome")).to_have_text("занято")
    expect(pending.locator("li[data-outcome=missed]")).to_have_count(4)

    stack.ring("84957894561", talk=30)

    panel = stack_page.locator(".popup-panel")
    expect(panel.locator("h2 a").first).to_have_text("Савицкая Наталья")
    expect(pending).not_to_have_attribute("open", "")  # collapsed to make room, its count still shown
    expect(pending.locator("summary")).to_contain_text("(5)")
    for button in (panel.locator("button[value=register]"), panel.locator("button[data-close]")):
        expect(button).to_be_visible()
        assert inside(button.bounding_box(), width, height), f"{button} is off screen at {width}×{height}"
    popups = stack_page.locator("#call-popups").bounding_box()
    main = stack_page.locator("main").bounding_box()
    assert main["x"] + main["width"] <= popups["x"], "the page's own content moves over; the pop-up covers none of it"
    shoot(stack_page, f"popup-fits-{width}x{height}")


def test_keys_and_confirmations_in_the_pop_up(stack, stack_page, anna):  # noqa: F811
    reason, result = CallReason.objects.create(name="Запись"), CallResult.objects.create(name="Записана")
    open_screen(stack_page)
    dialogs = []

    def answer(dialog, accept):
        dialogs.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    stack.ring("89031112233", talk=30)
    panel = stack_page.locator(".popup-panel")
    search = panel.locator("input[data-search]")
    search.fill("89031112233")
    search.press("Enter")
    expect(panel).to_contain_text("Ни у кого нет такого номера.")
    assert not Client.objects.exists(), "Enter in the search box searches; it never creates a client"

    panel.locator("#id_comment").fill("перезвонить завтра")
    stack_page.once("dialog", lambda dialog: answer(dialog, accept=False))
    stack_page.keyboard.press("Escape")
    expect(panel).to_be_visible()
    expect(panel.locator("#id_comment")).to_have_value("перезвонить завтра")
    assert dialogs == ["Закрыть форму? Введённое не сохранится."]

    panel.locator("#id_comment").fill("")
    stack_page.once("dialog", lambda dialog: answer(dialog, accept=False))
    panel.locator("button[value=register]").click()
    expect(panel).to_be_visible()
    assert dialogs[-1] == "В форме ничего не выбрано и не заполнено. Всё равно зарегистрировать звонок?"
    assert Call.objects.get().registered_at is None

    panel.locator("#id_reason").select_option(str(reason.pk))
    panel.locator("#id_result").select_option(str(result.pk))
    panel.locator("button[value=register]").click()
    expect(panel).to_be_hidden()
    expect(stack_page.locator("#call-popups .toast")).to_have_text("Звонок зарегистрирован.")
    assert Call.objects.get().registered_at is not None

    stack.ring("89161234567", talk=30)
    expect(panel.locator("#id_caller-phone_mobile")).to_have_value("+79161234567")
    stack_page.keyboard.press("Escape")  # nothing typed: no question
    expect(panel).to_be_hidden()
    assert len(dialogs) == 2


def test_a_pop_up_closed_stays_closed_on_the_next_page(stack, stack_page, anna):  # noqa: F811
    open_screen(stack_page)
    linkedid = stack.ring("89031112233", ring=1, talk=6)
    panel = stack_page.locator(".popup-panel")
    expect(panel.locator("#id_caller-phone_mobile")).to_have_value("+79031112233")
    panel.locator("button[data-close]").click()
    expect(panel).to_be_hidden()

    stack_page.goto("/history/")
    expect(stack_page.locator("#call-popups")).to_have_attribute("data-link", "up")
    wait_for(lambda: Call.objects.filter(linkedid=linkedid, ended_at__isnull=False).exists(), timeout=15)
    stack_page.wait_for_timeout(500)  # the call's end reaches this page too
    expect(panel).to_be_hidden()
    expect(stack_page.locator(".pending")).to_be_hidden()


def test_the_list_of_calls_while_away_is_cleared_in_one_action(stack, stack_page, anna):  # noqa: F811
    missed_calls(anna, 3)
    open_screen(stack_page)
    pending = stack_page.locator(".pending")
    expect(pending.locator("li")).to_have_count(4)
    expect(pending.locator("li").first).to_contain_text(timezone.localtime(Call.objects.order_by("started_at").first().started_at).strftime("%d.%m.%Y %H:%M:%S"))
    stack_page.once("dialog", lambda dialog: dialog.accept())
    pending.locator(".pending-clear").click()
    expect(pending).to_be_hidden()
    assert not Call.objects.filter(dismissed_at__isnull=True).exists()
    stack_page.reload()
    expect(stack_page.locator("#call-popups")).to_have_attribute("data-link", "up")
    expect(pending).to_be_hidden()


def test_a_lost_live_connection_shows_a_banner_until_it_is_back(stack, stack_page, anna):  # noqa: F811
    open_screen(stack_page)
    banner = stack_page.locator("#call-popups .link-lost")
    expect(banner).to_be_hidden()
    stack.stop()
    expect(banner).to_be_visible(timeout=10_000)
    expect(banner).to_contain_text("Нет связи с сервером")
    shoot(stack_page, "link-lost-banner")
    stack.start()
    expect(banner).to_be_hidden(timeout=40_000)


def test_the_ring_sound_can_be_turned_on_and_rings_for_an_incoming_call(stack, stack_page, anna):  # noqa: F811
    open_screen(stack_page)
    sound = stack_page.locator("#call-popups .ring-sound")
    expect(sound).to_have_attribute("aria-pressed", "false")
    stack.ring("89031112233", talk=5)
    expect(stack_page.locator(".popup-panel")).to_be_visible()
    assert stack_page.locator("#call-popups").get_attribute("data-rang") is None, "silent until turned on"
    stack_page.locator(".popup-panel button[data-close]").click()

    sound.click()
    expect(sound).to_have_attribute("aria-pressed", "true")
    stack_page.reload()
    expect(stack_page.locator("#call-popups")).to_have_attribute("data-link", "up")
    expect(sound).to_have_attribute("aria-pressed", "true")
    stack.ring("89161234567", talk=5)
    expect(stack_page.locator("#call-popups")).to_have_attribute("data-rang", "1")


def test_the_client_list_has_the_search_box_focused_and_fits_a_phone_screen(stack, stack_page, anna):  # noqa: F811
    savitskaya = Client.objects.create(last_name="Савицкая", first_name="Наталья", middle_name="Геннадьевна", phone_mobile="+74957894561", card_number="D-100")
    open_screen(stack_page)
    stack_page.goto("/clients/")
    assert stack_page.evaluate("document.activeElement.name") == "q"

    stack_page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/clients/", f"/clients/{savitskaya.pk}/", "/history/"):
        stack_page.goto(path)
        expect(stack_page.locator("#call-popups")).to_have_attribute("data-link", "up")
        overflow = stack_page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow} px on a 390 px screen"
        shoot(stack_page, f"phone-{path.strip('/').replace('/', '-') or 'home'}")
    stack.ring("84957894561", talk=10)
    save = stack_page.locator(".popup-panel button[value=register]")
    expect(save).to_be_visible()
    assert stack_page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
