import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from simplecalls.env import database_from_env, env_bool, env_int, phone_region_from_env, redis_url_from_env


def test_no_database_url_means_the_embedded_sqlite_file():
    assert database_from_env({}, "/tmp/x.sqlite3") == {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/x.sqlite3"}


def test_a_postgres_url_becomes_a_postgresql_database():
    config = database_from_env({"DATABASE_URL": "postgres://root@127.0.0.1:5432/calls"}, "")
    assert (config["ENGINE"], config["NAME"], config["HOST"], config["PORT"]) == ("django.db.backends.postgresql", "calls", "127.0.0.1", 5432)


@pytest.mark.parametrize(
    "function, environ, variable",
    [
        (lambda e: database_from_env(e, ""), {"DATABASE_URL": "mysql://x@h/db"}, "DATABASE_URL"),
        (lambda e: database_from_env(e, ""), {"DATABASE_URL": "postgres://root@127.0.0.1:5432"}, "DATABASE_URL"),
        (lambda e: database_from_env(e, ""), {"DATABASE_URL": "postgres://h:notaport/db"}, "DATABASE_URL"),
        (redis_url_from_env, {"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
        (phone_region_from_env, {"PHONE_REGION": "XX"}, "PHONE_REGION"),
        (lambda e: env_int(e, "AMI_PORT", 5038), {"AMI_PORT": "five"}, "AMI_PORT"),
        (lambda e: env_int(e, "AMI_PORT", 5038), {"AMI_PORT": "70000"}, "AMI_PORT"),
        (lambda e: env_bool(e, "DEBUG", True), {"DEBUG": "maybe"}, "DEBUG"),
    ],
)
def test_a_bad_value_names_its_variable(function, environ, variable):
    with pytest.raises(ImproperlyConfigured, match=variable):
        function(environ)


def test_good_values_are_read():
    assert env_bool({"DEBUG": "off"}, "DEBUG", True) is False
    assert env_int({"AMI_PORT": "5039"}, "AMI_PORT", 5038) == 5039
    assert phone_region_from_env({"PHONE_REGION": "by"}) == "BY"
    assert redis_url_from_env({"REDIS_URL": "redis://127.0.0.1:6379/1"}) == "redis://127.0.0.1:6379/1"


def test_the_project_refuses_to_start_with_a_bad_value():
    environ = {**os.environ, "AMI_PORT": "not-a-port", "DJANGO_SETTINGS_MODULE": "simplecalls.settings.base"}
    result = subprocess.run([sys.executable, "manage.py", "check"], env=environ, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ImproperlyConfigured: AMI_PORT must be a whole number" in result.stderr


@override_settings(DEBUG=False, SECRET_KEY_FROM_ENV=False, ALLOWED_HOSTS=[], AMI_SECRET="")
def test_checks_say_what_production_is_missing():
    with pytest.raises(SystemCheckError) as error:
        call_command("check")
    message = str(error.value)
    for expected in ("SECRET_KEY is not set", "ALLOWED_HOSTS is empty", "AMI_SECRET is not set"):
        assert expected in message


@override_settings(DEBUG=False, SECRET_KEY_FROM_ENV=True, ALLOWED_HOSTS=["crm.example.ru"], AMI_SECRET="s", DIALPLAN_TOKEN="t", REDIS_URL="redis://x")
def test_checks_pass_when_production_is_configured(settings, monkeypatch):
    monkeypatch.setitem(settings.DATABASES["default"], "ENGINE", "django.db.backends.postgresql")
    call_command("check")
