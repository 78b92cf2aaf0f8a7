"""The listener's writes (`calls_save_from_pbx`, `calls_add_rung`, `recordings_add`): monotonic whoever writes, in whatever order."""

import datetime

import pytest
from django.db import DataError, connection, transaction
from django.utils import timezone

from clients.models import Client
from history.models import Call, Recording
from history.services import call_from_pbx, calls_add_rung, calls_save_from_pbx, calls_send_from_pbx, calls_written, recordings_add

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0)


def picture(linkedid: str, **fields) -> Call:
    """A call as the listener sees it at one moment."""
    defaults = {"direction": "in", "disposition": "ringing", "phone": "+74957894561", "extension": "100", "started_at": T0, "source": Call.Source.AMI}
    return Call(linkedid=linkedid, **(defaults | fields))


def test_a_call_built_from_values_in_order_is_the_one_djangos_keywords_build():
    values = {"linkedid": "built.1", "direction": "in", "phone": "+74957894561", "operator_id": 7, "started_at": T0, "billsec": 3}
    built, expected = call_from_pbx(**values), Call(**values)
    assert [getattr(built, field.attname) for field in Call._meta.concrete_fields] == [getattr(expected, field.attname) for field in Call._meta.concrete_fields]
    assert built._state.adding and built.pk is None
    with pytest.raises(IndexError):
        call_from_pbx(linkedid="built.2", no_such_column=1)


def test_a_batch_is_inserted_in_one_go_and_each_call_gets_its_id():
    calls = [picture(f"batch.{n}", phone=f"+7495000000{n}") for n in range(3)]
    written = calls_save_from_pbx(calls)
    rows = {row.linkedid: row for row in Call.objects.all()}
    assert written == {linkedid: row.pk for linkedid, row in rows.items()} and [call.pk for call in calls] == [rows[f"batch.{n}"].pk for n in range(3)]
    assert rows["batch.2"].phone == "+74950000002" and rows["batch.2"].started_at == T0 and rows["batch.2"].source == "ami"


def test_an_older_picture_arriving_later_takes_nothing_back(operator_user):
    calls_save_from_pbx([picture("mono.1", disposition="answered", operator_id=operator_user.pk, answered_at=T0 + datetime.timedelta(seconds=5))])
    calls_save_from_pbx([picture("mono.1", started_at=T0 + datetime.timedelta(seconds=1), phone="", extension="")])  # a standby's stale view
    row = Call.objects.get()
    assert (row.disposition, row.answered_at, row.operator_id) == ("answered", T0 + datetime.timedelta(seconds=5), operator_user.pk)
    assert (row.started_at, row.phone, row.extension) == (T0, "+74957894561", "100")
    calls_save_from_pbx([picture("mono.1", started_at=T0 - datetime.timedelta(seconds=2))])
    assert Call.objects.get().started_at == T0 - datetime.timedelta(seconds=2), "an earlier start is taken"


def test_a_finished_call_is_never_written_again_and_a_client_fills_only_a_row_without_one():
    ivanov = Client.objects.create(last_name="Иванов", phone_mobile="+74957894561")
    petrov = Client.objects.create(last_name="Петров", phone_mobile="+74957894562")
    calls_save_from_pbx([picture("done.1", ended_at=T0, duration=3)])
    calls_save_from_pbx([picture("open.1"), picture("open.2", client_id=petrov.pk)])
    again = [picture("done.1", ended_at=T0 + datetime.timedelta(seconds=9), duration=12), picture("open.1", client_id=ivanov.pk),
             picture("open.2", client_id=ivanov.pk)]
    written = calls_save_from_pbx(again)
    assert sorted(written) == ["open.1", "open.2"] and again[0].pk is None
    assert Call.objects.get(linkedid="done.1").duration == 3
    assert Call.objects.get(linkedid="open.1").client_id == ivanov.pk, "a row made before its number was known takes its client"
    assert Call.objects.get(linkedid="open.2").client_id == petrov.pk, "a client the row has is the operator's to change"


def test_a_value_too_long_for_its_column_fails_rather_than_being_cut():
    from tests.conftest import needs

    needs(connection.vendor == "postgresql", "SQLite does not hold a column to its length")
    with pytest.raises(DataError), transaction.atomic():
        calls_save_from_pbx([picture("long.1", extension="1" * 40)])


def test_the_operators_a_call_rang_are_added_once_and_never_taken_off(operator_user, django_user_model):
    boris = django_user_model.objects.create_user("operator2")
    calls_save_from_pbx([picture("rung.1"), picture("rung.2")])
    first, second = Call.objects.order_by("linkedid")
    calls_add_rung([("rung.1", operator_user.pk), ("rung.1", operator_user.pk), ("rung.2", boris.pk), ("nobody.1", boris.pk)])
    calls_add_rung([("rung.1", boris.pk), ("rung.2", boris.pk)])
    assert set(first.rung.all()) == {operator_user, boris} and list(second.rung.all()) == [boris]


def test_a_recording_is_kept_once_however_often_it_is_told():
    calls_save_from_pbx([picture("rec.1"), picture("rec.2")])
    recordings_add([("rec.1", "a.wav", 5), ("rec.1", "a.wav", 5), ("rec.1", "b.wav", 2), ("nobody.1", "c.wav", 1)])
    recordings_add([("rec.1", "a.wav", 5), ("rec.2", "a.wav", 7)])
    assert sorted(Recording.objects.values_list("call__linkedid", "file", "duration")) == [
        ("rec.1", "a.wav", 5), ("rec.1", "b.wav", 2), ("rec.2", "a.wav", 7),
    ]


def test_what_the_log_held_is_read_before_the_same_transaction_writes(operator_user, django_user_model):
    boris = django_user_model.objects.create_user("operator2")
    calls_save_from_pbx([picture("held.1", operator_id=operator_user.pk, answered_at=T0)])
    calls_add_rung([("held.1", boris.pk)])
    calls_add_rung([("held.1", operator_user.pk)])
    with transaction.atomic():
        earlier = calls_written(["held.1", "new.1"])
        written = calls_send_from_pbx([picture("held.1", ended_at=T0 + datetime.timedelta(seconds=5)), picture("new.1")])
        calls_add_rung([("new.1", boris.pk)])
        assert set(written()) == {"held.1", "new.1"}
        assert earlier() == [("held.1", operator_user.pk, T0, None, Call.Source.AMI, [boris.pk, operator_user.pk])]


def test_whatever_the_pbx_names_things_every_value_arrives_as_it_was(operator_user):
    odd = ['sip"1\\2,3', "{x}", "NULL", " Иван ", ""]
    calls = [picture(f"odd.{linkedid}", extension=extension, phone=extension, operator_id=operator_user.pk)
             for linkedid, extension in zip(odd, reversed(odd))]
    written = calls_save_from_pbx(calls)
    assert set(written) == {f"odd.{linkedid}" for linkedid in odd}
    rows = {row.linkedid: row for row in Call.objects.all()}
    assert [(rows[call.linkedid].extension, rows[call.linkedid].phone) for call in calls] == [(call.extension, call.phone) for call in calls]
    calls_add_rung([(call.linkedid, operator_user.pk) for call in calls])
    recordings_add([(call.linkedid, f"{call.linkedid}/{call.extension}.wav", 3) for call in calls])
    assert sorted(Recording.objects.values_list("call__linkedid", "file")) == sorted((call.linkedid, f"{call.linkedid}/{call.extension}.wav") for call in calls)
    held = calls_written([call.linkedid for call in calls])()
    assert sorted((linkedid, users) for linkedid, *_, users in held) == sorted((call.linkedid, [operator_user.pk]) for call in calls)
