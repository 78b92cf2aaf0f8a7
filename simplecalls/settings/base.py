"""Settings for every environment; production is driven only by environment variables."""

import os
from pathlib import Path

from django.utils.translation import gettext_lazy as _

from simplecalls.env import (
    broker_transport_options,
    cache_config,
    channel_layer_config,
    channel_prefix_from_env,
    database_from_env,
    dial_rules_from_env,
    dialplan_name_from_env,
    env_bool,
    env_float,
    env_int,
    env_list,
    networks_from_env,
    phone_region_from_env,
    redis_url_from_env,
    regex_from_env,
    secret_key_from_env,
)

env = os.environ
BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool(env, "DEBUG", True)
SECRET_KEY = secret_key_from_env(env, debug=DEBUG)
ALLOWED_HOSTS = env_list(env, "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list(env, "CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "phonenumber_field",
    "simplecalls.apps.SimpleCallsConfig",
    "clients",
    "history",
    "telephony",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "simplecalls.middleware.LanguageMiddleware",
    "simplecalls.middleware.BadQueryMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "simplecalls.urls"
ASGI_APPLICATION = "simplecalls.asgi.application"
# The first logs in; Django's own stays for sessions it started before (they carry their backend's name).
AUTHENTICATION_BACKENDS = ["simplecalls.login.UserBackend", "django.contrib.auth.backends.ModelBackend"]
# Threads a web process serves Django's views in (simplecalls/web.py); the requests beyond wait their turn.
WEB_THREADS = env_int(env, "WEB_THREADS", 4, high=64)
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "telephony.context_processors.call_texts",
            ],
        },
    },
]

DATABASES = {"default": database_from_env(env, str(VAR_DIR / "simplecalls.sqlite3"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = redis_url_from_env(env)
# Installations sharing one Redis server stay apart by this prefix: pub/sub ignores database numbers.
CHANNEL_PREFIX = channel_prefix_from_env(env, DATABASES["default"])
CHANNEL_LAYERS = {"default": channel_layer_config(REDIS_URL, CHANNEL_PREFIX)}
CACHES = {"default": cache_config(REDIS_URL, CHANNEL_PREFIX)}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(REDIS_URL, CHANNEL_PREFIX)
CELERY_TASK_DEFAULT_QUEUE = CHANNEL_PREFIX
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE = {
    "reconcile-cdr": {"task": "telephony.tasks.reconcile_cdr", "schedule": 60.0},
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "clients:list"
LOGOUT_REDIRECT_URL = "login"
# Failures, each within LOGIN_LOCKOUT_SECONDS of the one before, that lock a user name or an address out
# until LOGIN_LOCKOUT_SECONDS pass without one; an office's computers share one address, so it gets more.
LOGIN_FAILURES_PER_USERNAME = 5
LOGIN_FAILURES_PER_ADDRESS = 20
LOGIN_LOCKOUT_SECONDS = 15 * 60

LANGUAGE_CODE = "ru"
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
FIXTURE_DIRS = [BASE_DIR / "fixtures"]
USE_I18N = True
TIME_ZONE = env.get("TIME_ZONE", "Europe/Moscow")
USE_TZ = True
DATE_INPUT_FORMATS = ["%d.%m.%Y", "%Y-%m-%d"]
FORMAT_MODULE_PATH = ["simplecalls.formats"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

PHONE_REGION = phone_region_from_env(env)
PHONENUMBER_DEFAULT_REGION = PHONE_REGION
PHONENUMBER_DB_FORMAT = "E164"

AMI_HOST = env.get("AMI_HOST", "127.0.0.1")
AMI_PORT = env_int(env, "AMI_PORT", 5038)
AMI_USERNAME = env.get("AMI_USERNAME", "simplecalls")
AMI_SECRET = env.get("AMI_SECRET", "simplecalls" if DEBUG else "")
RECORDINGS_DIR = Path(env.get("RECORDINGS_DIR") or VAR_DIR / "recordings")
# Set behind nginx (e.g. "/protected-recordings/", an internal location aliased to RECORDINGS_DIR): the audio view
# checks and audits, then nginx sends the bytes (X-Accel-Redirect). Empty: Django streams them itself.
RECORDINGS_ACCEL_PREFIX = env.get("RECORDINGS_ACCEL_PREFIX", "")
DIALPLAN_TOKEN = env.get("DIALPLAN_TOKEN", "")
# Smart transfer's endpoints for the dialplan (telephony/dialplan.py): who may ask (CIDRs; none = any
# address with the token), how long a lookup may take before the answer is empty, how long a caller-ID name may be.
DIALPLAN_ALLOWED_IPS = networks_from_env(env, "DIALPLAN_ALLOWED_IPS")
DIALPLAN_BUDGET_MS = env_int(env, "DIALPLAN_BUDGET_MS", 300, low=10, high=10_000)
CALLERID_MAX_LENGTH = env_int(env, "CALLERID_MAX_LENGTH", 20, low=4, high=80)
# How an E.164 number becomes what the trunk dials: "prefix=replacement" rules, the first that fits wins.
DIAL_RULES = dial_rules_from_env(env, PHONE_REGION)

# Click-to-call: the dialplan context that rings the operator's Local/<extension>@context and then dials
# the number, how long their phone rings, and how long a second click on the same number is refused.
ORIGINATE_CONTEXT = dialplan_name_from_env(env, "ORIGINATE_CONTEXT", "from-internal")
ORIGINATE_RING_SECONDS = env_int(env, "ORIGINATE_RING_SECONDS", 30, high=300)
ORIGINATE_WINDOW_SECONDS = env_int(env, "ORIGINATE_WINDOW_SECONDS", 15, high=3600)
ORIGINATE_PER_MINUTE = env_int(env, "ORIGINATE_PER_MINUTE", 10, high=1000)
# Seconds between the client answering and the extension number ("доб. 123") being sent as DTMF.
ORIGINATE_DTMF_PAUSE = env_float(env, "ORIGINATE_DTMF_PAUSE", 2.0, low=0, high=30)

# Phones not listed in the operator table count as operators' phones when their endpoint matches this.
EXTENSION_PATTERN = regex_from_env(env, "EXTENSION_PATTERN", r"^\d{2,6}$")

# The PBX's own call records (CDR), read to repair the call log: Asterisk's Master.csv (cdr_csv)
# or a CDR table in PostgreSQL (cdr_pgsql). CDR times are the PBX's local time.
CDR_CSV = env.get("CDR_CSV", "")
CDR_DSN = env.get("CDR_DSN", "")
CDR_TABLE = env.get("CDR_TABLE", "cdr")
CDR_TIMEZONE = env.get("CDR_TIMEZONE", "") or env.get("TIME_ZONE", "Europe/Moscow")
# How far back the periodic reconciliation looks.
CDR_WINDOW_HOURS = env_int(env, "CDR_WINDOW_HOURS", 24, high=24 * 366)

# The listener's leadership lease: a standby takes over this many seconds after the leader stops renewing.
LISTENER_LEASE_SECONDS = env_int(env, "LISTENER_LEASE_SECONDS", 3, high=600)
# /healthz answers 503 when the database or Redis takes longer than HEALTHZ_TIMEOUT_MS, when the leading listener
# last renewed its lease over HEALTHZ_LISTENER_MAX_AGE seconds ago, and (0: never) when it heard no AMI event for HEALTHZ_EVENT_MAX_AGE.
HEALTHZ_TIMEOUT_MS = env_int(env, "HEALTHZ_TIMEOUT_MS", 1000, low=50, high=30_000)
HEALTHZ_LISTENER_MAX_AGE = env_int(env, "HEALTHZ_LISTENER_MAX_AGE", max(15, 2 * LISTENER_LEASE_SECONDS), high=3600)
HEALTHZ_EVENT_MAX_AGE = env_int(env, "HEALTHZ_EVENT_MAX_AGE", 0, low=0, high=7 * 24 * 3600)
# A call with no event for this long is closed (its hang-up was lost).
STALE_CALL_MINUTES = env_int(env, "STALE_CALL_MINUTES", 720, high=60 * 24 * 7)

# The demo control that asks the PBX simulator for a call; on by default only with DEBUG.
DEMO = env_bool(env, "DEMO", DEBUG)

SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool(env, "SECURE_COOKIES", not DEBUG)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.get("LOG_LEVEL", "INFO")},
    "loggers": {"django": {"level": "INFO"}, "daphne": {"level": "WARNING"}},
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = DEBUG
