"""The dialplan's fast path: the two asks answered by the ASGI application in front of Django (simplecalls/asgi.py).

The requests go through the real `application` daphne serves; its answer runs in a worker thread on that
thread's own database connection, so the data is committed first (transaction=True).
"""

import asyncio
import ipaddress
import threading
import time

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.core.cache import cache
from django.db import connection, connections, transaction
from django.urls import reverse

from clients.models import Client
from simplecalls.asgi import application
from telephony.models import Operator, RouteDecision, RouteFallback
from telephony.presence import presence_claim
from tests.conftest import needs

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "dialplan-secret-2"
CALLER = "84957894561"
ROUTE, CALLERID = "/telephony/dialplan/route", "/telephony/dialplan/callerid"


@pytest.fixture(autouse=True)
def dialplan_settings(settings):
    settings.DIALPLAN_TOKEN, settings.DIALPLAN_ALLOWED_IPS, settings.DIALPLAN_BUDGET_MS = TOKEN, [], 300
    settings.CALLERID_MAX_LENGTH = 20
    cache.clear()
    return settings


@pytest.fixture
def manager(django_user_model):
    user = django_user_model.objects.create_user("manager1")
    Operator.objects.create(user=user, extension="101", channel="PJSIP/101")
    return user


@pytest.fixture
def savitskaya(manager):
    return Client.objects.create(last_name="Савицкая", first_name="Наталья", middle_name="Геннадьевна", phone_mobile="+74957894561", manager=manager)


@pytest.fixture
def chain():
    RouteFallback.objects.create(position=1, extension="600")
    RouteFallback.objects.create(position=2, extension="602")


def ask(path=ROUTE, query=b"", method="GET", headers=(), client=("127.0.0.1", 40000)) -> tuple[int, dict, bytes]:
    """One request through the ASGI application as daphne hands it over: status, headers, body."""
    return async_to_sync(asked)(path, query, method, headers, client)


async def asked(path, query, method="GET", headers=(), client=("127.0.0.1", 40000)) -> tuple[int, dict, bytes]:
    scope = {
        "type": "http", "http_version": "1.1", "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": query, "root_path": "", "headers": [(b"host", b"127.0.0.1"), *headers], "client": client,
        "server": ("127.0.0.1", 8000),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(10)
    body = b""
    while True:
        message = await communicator.receive_output(10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(10)
    return start["status"], {name.decode().lower(): value.decode() for name, value in start["headers"]}, body


def answer(path=ROUTE, query="", **options) -> str:
    status, headers, body = ask(path, query.encode(), **options)
    assert status == 200 and headers["content-type"] == "text/plain; charset=utf-8" and headers["content-length"] == str(len(body))
    return body.decode()


def test_a_known_caller_is_routed_to_their_manager_and_the_decision_written_down(savitskaya, manager, chain):
    presence_claim(manager.pk, "page-1")
    assert answer(query=f"number={CALLER}&did=74951234500&call=1733000000.17&token={TOKEN}") == "101"
    decision = RouteDecision.objects.get()
    assert (decision.linkedid, decision.number, decision.did, decision.client, decision.extension, decision.reason) == (
        "1733000000.17", "+74957894561", "74951234500", savitskaya, "101", RouteDecision.Reason.MANAGER)


def test_the_fast_path_gives_the_views_answers_step_by_step(client, savitskaya, manager, chain):
    presence_claim(manager.pk, "page-1")
    asked = [answer(query=f"number={CALLER}&attempt={attempt}&token={TOKEN}") for attempt in ("0", "1", "2", "3", "junk")]
    viewed = [client.get(reverse("telephony:dialplan_route"), {"number": CALLER, "attempt": attempt, "token": TOKEN}).content.decode()
              for attempt in ("0", "1", "2", "3", "junk")]
    assert asked == viewed == ["101", "600", "602", "", "101"]
    assert RouteDecision.objects.count() == 10
    assert answer(query=f"number=84991112233&token={TOKEN}") == "", "an unknown number"


def test_the_caller_id_name_in_cyrillic_and_in_ascii(savitskaya):
    assert answer(CALLERID, f"number=%2B74957894561&token={TOKEN}") == "Савицкая Н.Г."
    assert answer(CALLERID, f"number={CALLER}&ascii=1&token={TOKEN}") == "Savitskaia N.G."
    assert answer(CALLERID, f"number=84991112233&token={TOKEN}") == ""


@pytest.mark.parametrize("path", [ROUTE, CALLERID])
@pytest.mark.parametrize("query, headers", [
    (f"number={CALLER}", []),
    (f"number={CALLER}&token=", []),
    (f"number={CALLER}&token=wrong", []),
    (f"number={CALLER}&token={TOKEN}x", []),
    (f"number={CALLER}&token={TOKEN[:-1]}", []),
    (f"number={CALLER}", [(b"x-dialplan-token", b"wrong")]),
    (f"number={CALLER}&token={TOKEN}", [(b"x-dialplan-token", b"wrong")]),  # the header, when given, is the token
])
def test_a_missing_or_wrong_token_is_refused_with_an_empty_body(savitskaya, path, query, headers):
    status, _, body = ask(path, query.encode(), headers=headers)
    assert (status, body) == (403, b"")
    assert not RouteDecision.objects.exists()


def test_the_token_may_come_as_a_header_and_none_configured_refuses_everyone(savitskaya, manager, dialplan_settings):
    Operator.objects.filter(user=manager).update(available=True)
    assert answer(query=f"number={CALLER}", headers=[(b"x-dialplan-token", TOKEN.encode())]) == "101"
    dialplan_settings.DIALPLAN_TOKEN = ""
    assert ask(query=f"number={CALLER}&token=".encode())[0] == 403
    assert ask(query=f"number={CALLER}".encode(), headers=[(b"x-dialplan-token", b"")])[0] == 403


def test_only_allowed_addresses_are_answered(savitskaya, manager, dialplan_settings):
    Operator.objects.filter(user=manager).update(available=True)
    dialplan_settings.DIALPLAN_ALLOWED_IPS = [ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("::1")]
    query = f"number={CALLER}&token={TOKEN}".encode()
    assert ask(query=query)[:3:2] == (403, b"")
    assert ask(query=query, client=None)[:3:2] == (403, b""), "no address known: not allowed"
    assert ask(query=query + b"&REMOTE_ADDR=10.20.30.40")[0] == 403, "a parameter is no address"
    assert answer(query=query.decode(), client=("10.20.30.40", 5000)) == "101"
    assert answer(CALLERID, query.decode(), client=("::1", 5000)) == "Савицкая Н.Г."
    assert list(RouteDecision.objects.values_list("extension", flat=True)) == ["101"]


@pytest.mark.parametrize("method", ["POST", "HEAD", "PUT", "OPTIONS"])
def test_only_get_is_answered(savitskaya, method):
    status, headers, body = ask(query=f"number={CALLER}&token={TOKEN}".encode(), method=method)
    assert (status, headers["allow"], body) == (405, "GET", b"")
    assert not RouteDecision.objects.exists()


@pytest.mark.parametrize("query", [
    f"number=8495%0078945&token={TOKEN}",
    f"number={CALLER}&call=17330%00&token={TOKEN}",
    f"number={CALLER}&%00=1&token={TOKEN}",
    f"number={CALLER}&token={TOKEN}&did=" + "7" * 5000,
])
def test_a_nul_byte_or_a_huge_query_is_refused_with_an_empty_body(savitskaya, query):
    status, _, body = ask(query=query.encode())
    assert (status, body) == (400, b"")
    assert not RouteDecision.objects.exists()


def test_non_ascii_and_undecodable_queries_are_answered_as_unknown_numbers(savitskaya, chain):
    assert answer(query=f"number=%D1%82%D0%B5%D1%81%D1%82&call=%FF%FE&token={TOKEN}") == ""
    status, _, body = ask(query="number=тест\u202e&token=".encode() + TOKEN.encode())  # raw UTF-8, as a careless client sends it
    assert (status, body) == (200, b"")
    assert answer(CALLERID, f"number=%D0%A1%D0%B0%D0%B2&ascii=%FF&token={TOKEN}") == ""
    assert list(RouteDecision.objects.order_by("pk").values_list("number", "linkedid", "reason")) == [
        ("тест", "\ufffd\ufffd", "unknown"), ("тест\u202e", "", "unknown")]


def test_other_paths_still_go_to_django(savitskaya):
    assert ask(ROUTE + "/", f"number={CALLER}&token={TOKEN}".encode())[0] == 404
    status, headers, _ = ask("/healthz")
    assert status in (200, 503) and headers["content-type"].startswith("application/json")


def test_a_locked_client_table_gives_empty_answers_within_the_budget_even_to_asks_that_queue(savitskaya, manager, chain):
    needs(connection.vendor == "postgresql", "the statement and lock timeouts are PostgreSQL's")
    Operator.objects.filter(user=manager).update(available=True)
    query = f"number={CALLER}&token={TOKEN}"
    assert answer(query=query) == "101"
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        with transaction.atomic(), connections["default"].cursor() as cursor:  # this thread's own connection
            cursor.execute("LOCK TABLE clients_client IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(30)
        connections["default"].close()

    holder = threading.Thread(target=hold_lock)
    holder.start()

    async def at_once(count):
        return await asyncio.gather(*(asked(ROUTE if index % 2 else CALLERID, f"{query}&call=locked.{index}".encode()) for index in range(count)))

    try:
        assert locked.wait(10)
        started = time.monotonic()
        # Eight times more asks at once than a 2-core machine's worker threads (six): one budget after another would
        # take 2.4 s; the asks that wait for a thread count their wait in the budget and answer in time.
        answers = async_to_sync(at_once)(48)
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join(10)
    assert {answer[::2] for answer in answers} == {(200, b"")}
    decisions = RouteDecision.objects.filter(linkedid__startswith="locked.")
    assert decisions.count() == 24 and set(decisions.values_list("reason", "extension")) == {(RouteDecision.Reason.SLOW, "")}
    assert max(decisions.values_list("elapsed_ms", flat=True)) < 300 + 1000
    assert waited < 1.5, "all of them within about one budget"
    assert answer(query=query) == "101", "the next call is routed again"
