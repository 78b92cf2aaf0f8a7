from celery import shared_task

from telephony.reconcile import cdr_reconcile_recent


@shared_task
def reconcile_cdr() -> dict[str, int] | None:
    return cdr_reconcile_recent()
