"""Reading settings from the environment: every bad value names its variable."""

import re
from collections.abc import Mapping
from urllib.parse import urlparse

import dj_database_url
import phonenumbers
from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    if name not in environ:
        return default
    value = environ[name].strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {environ[name]!r}")


def env_int(environ: Mapping[str, str], name: str, default: int, *, low: int = 1, high: int = 65535) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number; got {raw!r}") from None
    if not low <= value <= high:
        raise ImproperlyConfigured(f"{name} must be between {low} and {high}; got {value}")
    return value


def env_list(environ: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_env(environ: Mapping[str, str], sqlite_path: str) -> dict:
    url = environ.get("DATABASE_URL", "").strip()
    if not url:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite_path}
    if urlparse(url).scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ImproperlyConfigured(f"DATABASE_URL must be a postgres:// (or sqlite://) URL; got {url!r}")
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as error:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {error}") from None
    if config["ENGINE"] != "django.db.backends.sqlite3" and not config.get("NAME"):
        raise ImproperlyConfigured(f"DATABASE_URL names no database; got {url!r}")
    return config


def redis_url_from_env(environ: Mapping[str, str]) -> str:
    url = environ.get("REDIS_URL", "").strip()
    if url and urlparse(url).scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(f"REDIS_URL must be a redis://, rediss:// or unix:// URL; got {url!r}")
    return url


def phone_region_from_env(environ: Mapping[str, str]) -> str:
    region = environ.get("PHONE_REGION", "RU").strip().upper() or "RU"
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ImproperlyConfigured(f"PHONE_REGION must be a two-letter country code such as RU; got {region!r}")
    return region


def regex_from_env(environ: Mapping[str, str], name: str, default: str) -> str:
    pattern = environ.get(name, "").strip() or default
    try:
        re.compile(pattern)
    except re.error as error:
        raise ImproperlyConfigured(f"{name} must be a regular expression: {error}; got {pattern!r}") from None
    return pattern


def database_url(settings_dict: Mapping) -> str:
    """A DATABASE_URL for another process to open the same database (the tests' or a benchmark's)."""
    if settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{settings_dict['NAME']}"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host, port = settings_dict.get("HOST") or "127.0.0.1", settings_dict.get("PORT") or 5432
    return f"postgres://{settings_dict['USER']}{password}@{host}:{port}/{settings_dict['NAME']}"
