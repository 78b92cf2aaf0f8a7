"""`/healthz`: JSON for a load balancer or monitoring, 200 when healthy, 503 otherwise; no login.

It names no host, user or secret: an error is only its class name. The thresholds are settings
(HEALTHZ_*): the database and Redis must answer within HEALTHZ_TIMEOUT_MS, the leading listener must
have renewed its lease within HEALTHZ_LISTENER_MAX_AGE seconds, and, when HEALTHZ_EVENT_MAX_AGE is
above 0, it must have had an AMI event within that many seconds (off by default: a quiet PBX sends none).
"""

import time

import redis
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from telephony.ami import AMIConfig
from telephony.heartbeat import listener_heartbeats, listener_lease


def health_database() -> dict:
    """`SELECT 1`, cancelled by the server past the timeout (PostgreSQL)."""
    started = time.perf_counter()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL statement_timeout = %s", [settings.HEALTHZ_TIMEOUT_MS])
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        return {"status": "fail", "error": type(error).__name__}
    return {"status": "ok", "ms": _ms(started)}


def health_redis() -> dict:
    """PING the Redis at REDIS_URL (the cache's, the channel layer's and Celery's); "not used" without one."""
    if not settings.REDIS_URL:
        return {"status": "not used"}
    seconds = settings.HEALTHZ_TIMEOUT_MS / 1000
    started = time.perf_counter()
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=seconds, socket_timeout=seconds)
    try:
        client.ping()
    except redis.RedisError as error:
        return {"status": "fail", "error": type(error).__name__}
    finally:
        client.close()
    return {"status": "ok", "ms": _ms(started)}


def health_listener(*, heartbeats: bool = True) -> tuple[dict, dict]:
    """The leading listener's lease renewal age, and the age of the last AMI event it heard (from its heartbeat in the cache)."""
    pbx = AMIConfig.from_settings().address
    limit, event_limit = settings.HEALTHZ_LISTENER_MAX_AGE, settings.HEALTHZ_EVENT_MAX_AGE or None
    try:
        lease = listener_lease(pbx)
    except DatabaseError as error:
        return {"status": "unknown", "error": type(error).__name__}, {"status": "unknown", "last_event_age": None, "max_age": event_limit}
    age = round(lease.age, 1) if lease is not None else None
    listener = {"status": "ok" if age is not None and age <= limit else "fail", "heartbeat_age": age, "max_age": limit}
    event_age = _last_event_age(pbx, lease) if heartbeats else None
    if event_limit:
        status = "ok" if event_age is not None and event_age <= event_limit else "fail"
    else:
        status = "ok" if event_age is not None else "unknown"
    return listener, {"status": status, "last_event_age": event_age, "max_age": event_limit}


def _last_event_age(pbx: str, lease) -> float | None:
    if lease is None or not lease.held:
        return None
    try:
        leader = next((beat for beat in listener_heartbeats(pbx) if beat.get("id") == lease.holder), None)
    except Exception:  # the cache's Redis failing shows under "redis"
        return None
    return round(max(time.time() - leader["last_event"], 0.0), 1) if leader and leader.get("last_event") else None


@never_cache
@require_safe
def healthz(request):
    database, redis_ = health_database(), health_redis()
    # A Redis that did not answer the PING is not asked for the heartbeats: the cache has no timeout of its own.
    listener, events = health_listener(heartbeats=redis_["status"] != "fail")
    checks = {"database": database, "redis": redis_, "listener": listener, "ami_events": events}
    healthy = not any(check["status"] == "fail" for check in checks.values())
    return JsonResponse({"status": "ok" if healthy else "fail", **checks}, status=200 if healthy else 503)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
