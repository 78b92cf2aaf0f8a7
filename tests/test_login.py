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
