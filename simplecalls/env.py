"""Reading settings from the environment: every bad value names its variable."""

import ipaddress
import re
from collections.abc import Mapping
from pathlib import PurePath
from urllib.parse import urlparse

import dj_database_url
import phonenumbers
from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}
DEVELOPMENT_SECRET_KEY = "insecure-development-key-set-SECRET_KEY-in-production"
PREPARE_THRESHOLD = 5  # psycopg's own default, which Django turns off (None)
# Short enough that the channel layer's own names (prefix + 42 characters) stay under Channels' limit of 100.
CHANNEL_PREFIX = re.compile(r"[a-z0-9_]{1,40}")


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


def env_float(environ: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number; got {raw!r}") from None
    if not low <= value <= high:  # nan fails this too
        raise ImproperlyConfigured(f"{name} must be between {low:g} and {high:g}; got {raw}")
    return value


def env_list(environ: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def secret_key_from_env(environ: Mapping[str, str], *, debug: bool) -> str:
    """SECRET_KEY; only with DEBUG on may the public development key stand in for it."""
    key = environ.get("SECRET_KEY", "")
    if key.strip():
        return key
    if not debug:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off: with the public development key anyone can forge a session")
    return DEVELOPMENT_SECRET_KEY


def database_from_env(environ: Mapping[str, str], sqlite_path: str) -> dict:
    """The database; connections are closed after each request (CONN_MAX_AGE 0), as Django advises under ASGI.

    Commands such as pbx_listen serve no requests, so each of their threads keeps its connection.
    With DATABASE_POOL_SIZE (web processes on PostgreSQL) a request borrows an open connection from
    a pool of that many instead of opening its own: the fork and login of a PostgreSQL backend per
    request is most of a short request's cost.
    """
    url = environ.get("DATABASE_URL", "").strip()
    if not url:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite_path}
    if urlparse(url).scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ImproperlyConfigured(f"DATABASE_URL must be a postgres:// (or sqlite://) URL; got {url!r}")
    try:
        config = dj_database_url.parse(url, conn_max_age=0)
    except ValueError as error:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {error}") from None
    if config["ENGINE"] != "django.db.backends.sqlite3" and not config.get("NAME"):
        raise ImproperlyConfigured(f"DATABASE_URL names no database; got {url!r}")
    if config["ENGINE"] == "django.db.backends.postgresql":
        # psycopg prepares a statement bound on the server once it has run 5 times on a connection. Django's cursors bind on
        # the client and are never prepared; only the caller lookup binds on the server (clients.services.clients_having).
        config.setdefault("OPTIONS", {})["prepare_threshold"] = PREPARE_THRESHOLD
    pool = env_int(environ, "DATABASE_POOL_SIZE", 0, low=0, high=100)
    if pool and config["ENGINE"] == "django.db.backends.postgresql":
        config.setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": pool, "timeout": 10}
        # Each connection is checked as it leaves the pool: one the server dropped meanwhile is replaced, not handed out.
        config["CONN_HEALTH_CHECKS"] = True
    return config


def redis_url_from_env(environ: Mapping[str, str]) -> str:
    url = environ.get("REDIS_URL", "").strip()
    if url and urlparse(url).scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(f"REDIS_URL must be a redis://, rediss:// or unix:// URL; got {url!r}")
    return url


def channel_prefix_from_env(environ: Mapping[str, str], database: Mapping) -> str:
    """What this installation's names on Redis start with: CHANNEL_PREFIX, else the database's name.

    Redis pub/sub ignores database numbers, so two installations on one Redis server would
    otherwise hear each other's live messages. The default is the PostgreSQL database's name
    (the SQLite file's name without its suffix) in a-z, 0-9 and _.
    """
    prefix = environ.get("CHANNEL_PREFIX", "").strip()
    if prefix:
        if not CHANNEL_PREFIX.fullmatch(prefix):
            raise ImproperlyConfigured(f"CHANNEL_PREFIX must be 1 to 40 characters from a-z, 0-9 and _; got {prefix!r}")
        return prefix
    name = str(database.get("NAME") or "")
    if database["ENGINE"] == "django.db.backends.sqlite3":
        name = PurePath(name).stem
    return re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")[:40] or "simplecalls"


def channel_layer_config(redis_url: str, prefix: str) -> dict:
    """Redis pub/sub under the installation's prefix; without Redis, in memory (one process only)."""
    if not redis_url:
        return {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    return {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [redis_url], "prefix": f"{prefix}."}}


def cache_config(redis_url: str, prefix: str) -> dict:
    """Redis, every key under the installation's prefix; without Redis, each process's memory."""
    if not redis_url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": prefix}
    return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url, "KEY_PREFIX": prefix}


def broker_transport_options(redis_url: str, prefix: str) -> dict:
    """Kombu's Redis transport puts every key and pub/sub channel of Celery's under the installation's prefix."""
    return {"global_keyprefix": f"{prefix}:"} if redis_url else {}


def dialplan_name_from_env(environ: Mapping[str, str], name: str, default: str) -> str:
    """A dialplan context or the like: it goes into AMI headers, so only letters, digits and -_. pass."""
    value = environ.get(name, "").strip() or default
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,80}", value):
        raise ImproperlyConfigured(f"{name} must be a dialplan name (letters, digits, - _ .); got {value!r}")
    return value


# Russian trunks dial 8 for long distance and 8~10 abroad; elsewhere numbers go out in E.164.
DEFAULT_DIAL_RULES = {"RU": "+7=8,+=810"}


def dial_rules_from_env(environ: Mapping[str, str], region: str) -> list[tuple[str, str]]:
    """DIAL_RULES, `+7=8,+=810` (an E.164 prefix = what the trunk dials instead), else the region's usual ones."""
    text = environ.get("DIAL_RULES", "").strip() or DEFAULT_DIAL_RULES.get(region, "")
    rules = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        prefix, equals, replacement = (side.strip() for side in item.partition("="))
        if not equals or not re.fullmatch(r"\+\d*", prefix) or not re.fullmatch(r"\+?\d*", replacement):
            raise ImproperlyConfigured(f"DIAL_RULES must be rules such as +7=8,+=810 (an E.164 prefix = what to dial instead); got {item!r}")
        rules.append((prefix, replacement))
    return rules


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


def networks_from_env(environ: Mapping[str, str], name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Comma-separated addresses or networks (`10.0.0.5, 192.168.1.0/24, ::1`); none set = an empty list."""
    networks = []
    for item in env_list(environ, name, []):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be IP addresses or networks such as 192.168.1.0/24, comma-separated; got {item!r}") from None
    return networks
