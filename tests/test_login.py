import time
import uuid

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_an_operator_logs_in_and_lands_on_the_client_list(client, operator_user):
    response = client.post(reverse("login"), {"username": "operator1", "password": "secret-pass-1"})
    assert response.status_code == 302 and response.url == reverse("clients:list")


def test_a_wrong_password_says_so_and_keeps_the_user_name(client, operator_user):
    response = client.post(reverse("login"), {"username": "operator1", "password": "wrong"})
    page = response.content.decode()
    assert response.status_code == 200
    assert 'value="operator1"' in page and "Неверное имя пользователя или пароль" in page


def test_logging_out_needs_a_post_and_ends_the_session(operator_client):
    response = operator_client.post(reverse("logout"))
    assert response.status_code == 302
    assert operator_client.get(reverse("clients:list")).status_code == 302


def test_pages_speak_russian_by_default_and_english_on_request(operator_client):
    assert "Клиенты" in operator_client.get(reverse("clients:list")).content.decode()
    operator_client.post(reverse("set_language"), {"language": "en", "next": "/"})
    page = operator_client.get(reverse("clients:list")).content.decode()
    assert ">Clients<" in page and "Клиенты" not in page


def test_an_english_browser_still_gets_russian_until_english_is_chosen(operator_client):
    page = operator_client.get(reverse("clients:list"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert "Клиенты" in page


@pytest.fixture(autouse=True)
def own_failure_counts(settings):
    """Each test counts failures under its own cache prefix, on whichever cache the settings use."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"login-test-{uuid.uuid4().hex}"}}


def log_in(client, password, *, username="operator1", address="127.0.0.1", url=None):
    return client.post(url or reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_after_five_failures_even_the_right_password_is_refused(client, operator_user):
    for _ in range(5):
        assert "Неверное имя пользователя или пароль" in log_in(client, "wrong").content.decode()
    response = log_in(client, "secret-pass-1")
    assert response.status_code == 429
    assert "Слишком много неудачных попыток входа. Попробуйте позже." in response.content.decode()
    assert client.get(reverse("clients:list")).status_code == 302, "not logged in"


def test_the_lockout_speaks_english_when_english_is_chosen(client, operator_user, settings):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    for _ in range(5):
        log_in(client, "wrong")
    assert "Too many failed attempts to log in. Try again later." in log_in(client, "secret-pass-1").content.decode()


def test_the_lock_lifts_once_the_lockout_has_passed(client, operator_user, settings):
    settings.LOGIN_LOCKOUT_SECONDS = 1
    for _ in range(5):
        log_in(client, "wrong")
    assert log_in(client, "secret-pass-1").status_code == 429
    time.sleep(2.1)
    assert log_in(client, "secret-pass-1").status_code == 302


def test_the_right_password_before_the_limit_starts_the_count_again(client, operator_user):
    for _ in range(4):
        log_in(client, "wrong")
    assert log_in(client, "secret-pass-1").status_code == 302
    client.logout()
    for _ in range(4):
        log_in(client, "wrong")
    assert log_in(client, "secret-pass-1").status_code == 302


def test_one_address_trying_many_user_names_is_locked_out_but_others_are_not(client, operator_user, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 3
    for name in ("admin", "root", "manager"):
        log_in(client, "123456", username=name, address="203.0.113.9")
    assert log_in(client, "secret-pass-1", address="203.0.113.9").status_code == 429
    assert log_in(client, "secret-pass-1", address="198.51.100.20").status_code == 302


def test_the_admin_login_is_throttled_too(client, django_user_model):
    django_user_model.objects.create_superuser("admin", password="admin-pass-1")
    admin_login = reverse("admin:login")
    for _ in range(5):
        log_in(client, "wrong", username="admin", url=admin_login)
    response = log_in(client, "admin-pass-1", username="admin", url=admin_login)
    assert "Слишком много неудачных попыток входа" in response.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302, "not logged in"
