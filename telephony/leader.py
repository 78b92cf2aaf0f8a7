"""One active listener per PBX: a Redis lock with a short expiry, renewed while the holder lives."""

import logging
import time
import uuid

import redis

log = logging.getLogger(__name__)


class Leadership:
    """`hold()` is True while this process is the active one; a standby takes over after `ttl` seconds."""

    def __init__(self, url: str, name: str, *, ttl: float = 10.0, renew_every: float = 3.0):
        self.client = redis.Redis.from_url(url, socket_timeout=2)
        self.key = f"simplecalls:leader:{name}"
        self.token = uuid.uuid4().hex
        self.ttl_ms = int(ttl * 1000)
        self.renew_every = renew_every
        self.held = False
        self.renewed_at = 0.0

    def hold(self) -> bool:
        now = time.monotonic()
        if self.held and now - self.renewed_at < self.renew_every:
            return True
        try:
            if self.held:
                self.held = bool(self.client.eval(RENEW, 1, self.key, self.token, self.ttl_ms))
                if not self.held:
                    log.warning("lost the listener lock %s; standing by", self.key)
            else:
                self.held = bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))
                if self.held:
                    log.info("holding the listener lock %s: this listener is active", self.key)
        except redis.RedisError as error:
            log.error("Redis unreachable for the listener lock (%s); standing by", error)
            self.held = False
        if self.held:
            self.renewed_at = now
        return self.held

    def release(self) -> None:
        if self.held:
            try:
                self.client.eval(RELEASE, 1, self.key, self.token)
            except redis.RedisError:
                pass
            self.held = False


# Renew or release only a lock this process still owns.
RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
