"""The history services: registration writes only what the operator says."""

import datetime

import pytest
from django.db import connection
from django.utils import timezone

from history.models import Call, CallReason
from history.services import call_register

pytestmark = pytest.mark.django_db


def test_registering_never_undoes_a_hang_up_written_meanwhile(operator_user):
    started = timezone.now() - datetime.timedelta(minutes=1)
    Call.objects.create(linkedid="1.1", direction="in", phone="+74957894561", operator=operator_user, started_at=started)
    call = Call.objects.get()  # the form opens while the call still rings
    Call.objects.filter(pk=call.pk).update(disposition="answered", answered_at=started, ended_at=timezone.now(), duration=60, billsec=55)
    call.reason, call.comment = CallReason.objects.create(name="Запись"), "записана"

    call_register(call)

    saved = Call.objects.get()
    assert (saved.disposition, saved.duration, saved.billsec, saved.ended_at is not None) == ("answered", 60, 55, True)
    assert (saved.comment, saved.reason_id, saved.registered_at is not None) == ("записана", call.reason_id, True)


def test_the_operators_rung_are_indexed_by_operator_then_call():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Call.rung.through._meta.db_table)
    assert any(info["index"] and info["columns"] == ["user_id", "call_id"] for info in constraints.values())
