from celery import shared_task

from telephony.ami import AMIError
from telephony.reconcile import cdr_reconcile_recent
from telephony.services import call_originate, call_originate_failed


@shared_task
def reconcile_cdr() -> dict[str, int] | None:
    return cdr_reconcile_recent()


@shared_task(bind=True, max_retries=3, default_retry_delay=1)
def originate_call(self, call_id: int, action: dict) -> None:
    try:
        call_originate(call_id=call_id, action=action)
    except AMIError as error:
        if self.request.retries >= self.max_retries or self.request.is_eager:
            call_originate_failed(call_id=call_id, status="unreachable", reason=str(error))
        else:
            raise self.retry(exc=error)
