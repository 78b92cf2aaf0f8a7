"""One writing listener per PBX: a lease row in the database, renewed by its holder, which also fences writes.

Every listener reads the PBX; the one holding the lease writes. The lease is taken when it has
expired (by the database's clock), and each taking raises its epoch. Every write transaction
first locks the lease row on the epoch it was taken with (`fence`), so a listener that was
frozen or cut off while another took over can never write again, whatever it has queued: its
epoch is gone, and the lock makes the check and the write one atomic step.
"""

import contextlib
import datetime
import logging
import os
import socket
import threading
import uuid

from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.db.models.functions import Now

from simplecalls.db import server_bound
from telephony.models import ListenerLease

log = logging.getLogger(__name__)


FENCED_OUT = "SC001"  # the error listener_fence raises (telephony/migrations/0004_listener_fence.py)


class FenceError(Exception):
    """This listener no longer holds the lease: nothing may be written."""


class Lease:
    def __init__(self, name: str, *, ttl: float = 3.0, renew_every: float | None = None):
        self.name = name
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.ttl = datetime.timedelta(seconds=ttl)
        self.renew_every = renew_every if renew_every is not None else ttl / 3
        self.epoch: int | None = None  # set while held

    @property
    def held(self) -> bool:
        return self.epoch is not None

    def renew(self) -> bool:
        """Keep the lease, or take it if it has expired; return whether it is held."""
        try:
            with transaction.atomic():
                ListenerLease.objects.bulk_create([ListenerLease(name=self.name, expires_at=datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))], ignore_conflicts=True)
                mine = ListenerLease.objects.filter(name=self.name, holder=self.holder, epoch=self.epoch)
                if self.epoch is not None and mine.update(expires_at=Now() + self.ttl):
                    return True
                taken = ListenerLease.objects.filter(name=self.name, expires_at__lte=Now()).update(
                    holder=self.holder, epoch=F("epoch") + 1, expires_at=Now() + self.ttl, taken_at=Now()
                )
                epoch = ListenerLease.objects.filter(name=self.name, holder=self.holder).values_list("epoch", flat=True).first() if taken else None
        except DatabaseError as error:
            # The lease runs out by itself if this goes on; writes are fenced meanwhile.
            log.error("could not renew the listener lease %s (%s); retrying", self.name, error)
            connection.close()
            return self.held
        if self.epoch is not None and epoch is None:
            log.warning("lost the listener lease %s (epoch %s): another listener writes now; standing by", self.name, self.epoch)
        elif epoch is not None:
            log.info("took the listener lease %s (epoch %s): this listener writes", self.name, epoch)
        self.epoch = epoch
        return self.held

    def fence(self) -> None:
        """Inside a write transaction: lock the lease row on our epoch, or raise FenceError.

        It renews the lease too: the lock it takes is held until the write commits, and the renewing
        thread waits for it meanwhile, so a long write would otherwise end with the lease about to expire
        and a standby, queued on the same lock, taking it at the commit.
        """
        with self.fencing():
            self.fence_send()

    def fence_send(self) -> None:
        """`fence` for `simplecalls.db.pipelined_transaction`: on PostgreSQL the database itself refuses the lock
        (`listener_fence`, an error that rolls back every statement sent with it), so nothing waits for its answer.
        Wrap the transaction in `fencing`, which turns that error into FenceError."""
        epoch = self.epoch
        if epoch is None:
            self.fenced_out()
        if connection.vendor != "postgresql":
            if not ListenerLease.objects.filter(name=self.name, holder=self.holder, epoch=epoch).update(expires_at=Now() + self.ttl):
                self.fenced_out()
            return
        with server_bound(connection.cursor()) as cursor:  # run every write: prepared
            cursor.execute("SELECT listener_fence(%s, %s, %s, %s)", [self.name, self.holder, epoch, self.ttl])

    @contextlib.contextmanager
    def fencing(self):
        """Around a transaction that fences: the database's refusal comes out as FenceError."""
        try:
            yield
        except DatabaseError as error:
            if getattr(error.__cause__, "sqlstate", None) == FENCED_OUT:
                self.fenced_out()
            raise

    def fenced_out(self) -> None:
        self.epoch = None
        raise FenceError(self.name)

    def release(self) -> None:
        """Let the lease go at once. Its epoch moves on too: a write fenced a moment ago on the old one, which would
        renew the lease as it fences, finds nothing to lock."""
        epoch, self.epoch = self.epoch, None
        if epoch is None:
            return
        try:
            ListenerLease.objects.filter(name=self.name, holder=self.holder, epoch=epoch).update(expires_at=Now(), epoch=F("epoch") + 1)
        except DatabaseError:
            pass

    def keep(self, stop: threading.Event, ready: threading.Event) -> threading.Thread:
        """Renew on a thread of its own, so nothing the listener waits on can delay it.

        Only while `ready` (connected to the PBX): a listener that cannot hear the PBX lets another lead.
        """

        def loop():
            try:
                while not stop.is_set():
                    if ready.is_set():
                        self.renew()
                    elif self.held:
                        log.warning("not connected to the PBX: letting the listener lease %s go", self.name)
                        self.release()
                    stop.wait(self.renew_every)
            finally:
                self.release()
                connection.close()

        thread = threading.Thread(target=loop, name="listener-lease", daemon=True)
        thread.start()
        return thread
