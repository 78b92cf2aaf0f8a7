"""Shared fixtures. With STRICT=1 (CI) a missing PostgreSQL, Redis or browser fails the run."""

import os
import shutil

import pytest
from django.conf import settings

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def pytest_configure(config):
    if not getattr(settings, "STRICT", False):
        return
    if problems := services_missing():
        raise pytest.UsageError("STRICT=1 but " + "; ".join(problems))


def services_missing() -> list[str]:
    """What production runs on and this machine lacks: PostgreSQL, a Redis that answers, the browser."""
    problems = []
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        problems.append("DATABASE_URL must point at PostgreSQL (postgres://root@127.0.0.1:5432/simplecalls)")
    if not settings.REDIS_URL:
        problems.append("REDIS_URL must be set (redis://127.0.0.1:6379/0)")
    else:
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_timeout=3).ping()
        except redis.RedisError as error:
            problems.append(f"Redis at {settings.REDIS_URL} does not answer: {error}")
    if not shutil.which(CHROMIUM):
        problems.append(f"no browser at {CHROMIUM} (apt-get install chromium)")
    return problems


def needs(condition: bool, reason: str):
    """Skip when a service is missing on a developer's bare machine; fail under STRICT=1."""
    if condition:
        return
    if getattr(settings, "STRICT", False):
        pytest.fail(f"STRICT=1: {reason}")
    pytest.skip(reason)


@pytest.fixture
def operator_user(django_user_model):
    from telephony.models import Operator

    user = django_user_model.objects.create_user("operator1", password="secret-pass-1", first_name="Анна")
    Operator.objects.create(user=user, extension="100", channel="PJSIP/100")
    return user


@pytest.fixture
def operator_client(client, operator_user):
    client.force_login(operator_user)
    return client


@pytest.fixture
def operators(django_user_model):
    """Two operators at desk phones PJSIP/100 and PJSIP/101."""
    from telephony.models import Operator

    users = []
    for username, extension in (("operator1", "100"), ("operator2", "101")):
        user = django_user_model.objects.create_user(username)
        Operator.objects.create(user=user, extension=extension, channel=f"PJSIP/{extension}")
        users.append(user)
    return users
