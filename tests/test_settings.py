import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from simplecalls.env import (
    DEVELOPMENT_SECRET_KEY,
    channel_prefix_from_env,
    database_from_env,
    env_bool,
    env_float,
    env_int,
    phone_region_from_env,
    redis_url_from_env,
    secret_key_from_env,
)

SQLITE = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/simplecalls/var/simplecalls.sqlite3"}


def test_no_database_url_means_the_embedded_sqlite_file():
    assert database_from_env({}, "/tmp/x.sqlite3") == {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/x.sqlite3"}


def test_web_processes_may_borrow_connections_from_a_pool():
    url = {"DATABASE_URL": "postgres://root@127.0.0.1:5432/calls"}
    assert "pool" not in database_from_env(url, "").get("OPTIONS", {})
    pooled = database_from_env(url | {"DATABASE_POOL_SIZE": "8"}, "")
    assert (pooled["OPTIONS"]["pool"], pooled["CONN_HEALTH_CHECKS"]) == ({"min_size": 1, "max_size": 8, "timeout": 10}, True)
    assert "OPTIONS" not in database_from_env({"DATABASE_POOL_SIZE": "8"}, "/tmp/x.sqlite3"), "SQLite has no pool"
    with pytest.raises(ImproperlyConfigured, match="DATABASE_POOL_SIZE"):
        database_from_env(url | {"DATABASE_POOL_SIZE": "many"}, "")


def test_a_postgres_url_becomes_a_postgresql_database():
    config = database_from_env({"DATABASE_URL": "postgres://root@127.0.0.1:5432/calls"}, "")
    assert (config["ENGINE"], config["NAME"], config["HOST"], config["PORT"]) == ("django.db.backends.postgresql", "calls", "127.0.0.1", 5432)


def test_web_processes_keep_no_database_connection_from_one_request_to_the_next():
    assert database_from_env({"DATABASE_URL": "postgres://root@127.0.0.1:5432/calls"}, "")["CONN_MAX_AGE"] == 0


@pytest.mark.parametrize(
    "environ, database, prefix",
    [
        ({}, SQLITE, "simplecalls"),
        ({"DATABASE_URL": "postgres://root@db/Salon-North.2"}, None, "salon_north_2"),
        ({"DATABASE_URL": "postgres://root@db/%D1%81%D0%B0%D0%BB%D0%BE%D0%BD"}, None, "simplecalls"),
        ({"DATABASE_URL": "sqlite:////srv/Клиника/clinic east.sqlite3"}, None, "clinic_east"),
        ({"CHANNEL_PREFIX": "front_desk_2", "DATABASE_URL": "postgres://root@db/salon"}, None, "front_desk_2"),
    ],
)
def test_the_channel_prefix_is_the_database_name_unless_channel_prefix_says_otherwise(environ, database, prefix):
    assert channel_prefix_from_env(environ, database or database_from_env(environ, "")) == prefix


def test_with_debug_on_the_development_key_stands_in_for_a_missing_secret_key():
    assert secret_key_from_env({}, debug=True) == DEVELOPMENT_SECRET_KEY
    assert secret_key_from_env({"SECRET_KEY": "k" * 50}, debug=False) == "k" * 50


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
        (lambda e: env_float(e, "ORIGINATE_DTMF_PAUSE", 2.0, low=0, high=30), {"ORIGINATE_DTMF_PAUSE": "two"}, "ORIGINATE_DTMF_PAUSE"),
        (lambda e: env_float(e, "ORIGINATE_DTMF_PAUSE", 2.0, low=0, high=30), {"ORIGINATE_DTMF_PAUSE": "31"}, "ORIGINATE_DTMF_PAUSE"),
        (lambda e: env_float(e, "ORIGINATE_DTMF_PAUSE", 2.0, low=0, high=30), {"ORIGINATE_DTMF_PAUSE": "nan"}, "ORIGINATE_DTMF_PAUSE"),
        (lambda e: env_bool(e, "DEBUG", True), {"DEBUG": "maybe"}, "DEBUG"),
        (lambda e: channel_prefix_from_env(e, SQLITE), {"CHANNEL_PREFIX": "Salon-North"}, "CHANNEL_PREFIX"),
        (lambda e: channel_prefix_from_env(e, SQLITE), {"CHANNEL_PREFIX": "salon:north"}, "CHANNEL_PREFIX"),
        (lambda e: channel_prefix_from_env(e, SQLITE), {"CHANNEL_PREFIX": "s" * 41}, "CHANNEL_PREFIX"),
        (lambda e: secret_key_from_env(e, debug=False), {}, "SECRET_KEY"),
        (lambda e: secret_key_from_env(e, debug=False), {"SECRET_KEY": "  "}, "SECRET_KEY"),
    ],
)
def test_a_bad_value_names_its_variable(function, environ, variable):
    with pytest.raises(ImproperlyConfigured, match=variable):
        function(environ)


def test_good_values_are_read():
    assert env_bool({"DEBUG": "off"}, "DEBUG", True) is False
    assert env_int({"AMI_PORT": "5039"}, "AMI_PORT", 5038) == 5039
    assert env_float({"ORIGINATE_DTMF_PAUSE": "1.5"}, "ORIGINATE_DTMF_PAUSE", 2.0, low=0, high=30) == 1.5
    assert env_float({}, "ORIGINATE_DTMF_PAUSE", 2.0, low=0, high=30) == 2.0
    assert phone_region_from_env({"PHONE_REGION": "by"}) == "BY"
    assert redis_url_from_env({"REDIS_URL": "redis://127.0.0.1:6379/1"}) == "redis://127.0.0.1:6379/1"


def test_the_project_refuses_to_start_with_a_bad_value():
    environ = {**os.environ, "AMI_PORT": "not-a-port", "DJANGO_SETTINGS_MODULE": "simplecalls.settings.base"}
    result = subprocess.run([sys.executable, "manage.py", "check"], env=environ, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ImproperlyConfigured: AMI_PORT must be a whole number" in result.stderr


def without_secret_key(**environ) -> dict:
    return {name: value for name, value in os.environ.items() if name != "SECRET_KEY"} | {
        "DEBUG": "0", "DJANGO_SETTINGS_MODULE": "simplecalls.settings.base", **environ,
    }


def test_with_debug_off_and_no_secret_key_management_commands_refuse_to_start():
    result = subprocess.run([sys.executable, "manage.py", "check"], env=without_secret_key(), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_with_debug_off_and_no_secret_key_daphne_refuses_to_serve():
    daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", "0", "simplecalls.asgi:application"]
    result = subprocess.run(daphne, env=without_secret_key(), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


@override_settings(DEBUG=False, ALLOWED_HOSTS=[], AMI_SECRET="")
def test_checks_say_what_production_is_missing():
    with pytest.raises(SystemCheckError) as error:
        call_command("check")
    message = str(error.value)
    for expected in ("ALLOWED_HOSTS is empty", "AMI_SECRET is not set"):
        assert expected in message


@override_settings(DEBUG=False, ALLOWED_HOSTS=["crm.example.ru"], AMI_SECRET="s", DIALPLAN_TOKEN="t", REDIS_URL="redis://x")
def test_checks_pass_when_production_is_configured(settings, monkeypatch):
    monkeypatch.setitem(settings.DATABASES["default"], "ENGINE", "django.db.backends.postgresql")
    call_command("check")
