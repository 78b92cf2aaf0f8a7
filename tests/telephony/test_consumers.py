import datetime

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import SynchronousOnlyOperation
from django.utils import timezone

from simplecalls.asgi import application
from telephony.models import Operator
from telephony.realtime import call_changed
from tests.helpers import make_call

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def session_cookie(user) -> str:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


async def connect(user=None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost")]
    if user is not None:
        cookie = await sync_to_async(session_cookie)(user)
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application, "/ws/operator/", headers=headers)
    return communicator


def make_operator(django_user_model, username, extension):
    user = django_user_model.objects.create_user(username)
    Operator.objects.create(user=user, extension=extension, channel=f"PJSIP/{extension}")
    return user


async def test_the_orm_is_refused_inside_the_event_loop_even_after_the_browser_tests(django_user_model):
    # The browser tests lift this guard for themselves (DJANGO_ALLOW_ASYNC_UNSAFE); here it must hold again.
    with pytest.raises(SynchronousOnlyOperation):
        django_user_model.objects.count()


async def test_an_anonymous_connection_is_refused():
    communicator = await connect()
    connected, _ = await communicator.connect()
    assert not connected


async def test_an_operator_gets_an_empty_pending_list_on_connect(django_user_model):
    anna = await sync_to_async(make_operator)(django_user_model, "anna", "100")
    communicator = await connect(anna)
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_json_from() == {"type": "calls.pending", "calls": []}
    await communicator.disconnect()


async def test_operator_a_never_receives_operator_bs_calls(django_user_model):
    anna = await sync_to_async(make_operator)(django_user_model, "anna", "100")
    boris = await sync_to_async(make_operator)(django_user_model, "boris", "101")
    to_anna, to_boris = await connect(anna), await connect(boris)
    await to_anna.connect()
    await to_boris.connect()
    await to_anna.receive_json_from()
    await to_boris.receive_json_from()
    call = await sync_to_async(make_call)(boris, linkedid="1.1")
    await sync_to_async(call_changed)(call.pk, ["call.ringing"])
    message = await to_boris.receive_json_from()
    assert message["type"] == "call.ringing" and message["call"]["linkedid"] == "1.1"
    assert await to_anna.receive_nothing(timeout=0.3)
    await to_anna.disconnect()
    await to_boris.disconnect()


async def test_reconnecting_delivers_active_and_pending_calls(django_user_model):
    anna = await sync_to_async(make_operator)(django_user_model, "anna", "100")
    boris = await sync_to_async(make_operator)(django_user_model, "boris", "101")
    earlier = timezone.now() - datetime.timedelta(minutes=5)
    await sync_to_async(make_call)(anna, linkedid="1.1", disposition="answered", answered_at=earlier)
    await sync_to_async(make_call)(anna, linkedid="1.2", disposition="no_answer", started_at=earlier, ended_at=earlier)
    await sync_to_async(make_call)(anna, linkedid="1.3", disposition="answered", ended_at=earlier, registered_at=earlier)
    await sync_to_async(make_call)(anna, linkedid="1.4", disposition="answered", ended_at=earlier, dismissed_at=earlier)
    await sync_to_async(make_call)(boris, linkedid="1.5", disposition="no_answer", ended_at=earlier)
    communicator = await connect(anna)
    await communicator.connect()
    active = await communicator.receive_json_from()
    assert (active["type"], active["call"]["linkedid"]) == ("call.answered", "1.1")
    pending = await communicator.receive_json_from()
    assert pending["type"] == "calls.pending"
    assert [message["call"]["linkedid"] for message in pending["calls"]] == ["1.2"]
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()


async def test_a_foreign_origin_is_refused(django_user_model):
    anna = await sync_to_async(make_operator)(django_user_model, "anna", "100")
    cookie = await sync_to_async(session_cookie)(anna)
    communicator = WebsocketCommunicator(application, "/ws/operator/", headers=[(b"origin", b"http://evil.example"), (b"cookie", cookie.encode())])
    connected, _ = await communicator.connect()
    assert not connected


async def test_a_call_left_open_for_half_a_day_is_not_shown_as_in_progress(django_user_model):
    anna = await sync_to_async(make_operator)(django_user_model, "anna", "100")
    long_ago = timezone.now() - datetime.timedelta(hours=13)
    await sync_to_async(make_call)(anna, linkedid="1.1", disposition="answered", started_at=long_ago, answered_at=long_ago)
    communicator = await connect(anna)
    await communicator.connect()
    assert (await communicator.receive_json_from())["type"] == "calls.pending"
    await communicator.disconnect()
