"""CDR rows from Master.csv and their sum per call: no database, fixtures in fixtures/cdr/."""

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from telephony.cdr import CdrRow, calls_from_cdr, read_csv
from tests.helpers import CDR_FIXTURES as FIXTURES

MOSCOW = ZoneInfo("Europe/Moscow")
EXTENSIONS = r"^\d{2,6}$"


def read(name, **options):
    return read_csv(FIXTURES / name, tz="Europe/Moscow", **options)


def summed(rows):
    return {call.key: call for call in calls_from_cdr(rows, region="RU", extension_pattern=EXTENSIONS)}


def at(hour, minute, second=0):
    return datetime(2025, 3, 14, hour, minute, second, tzinfo=MOSCOW)


def test_quoted_caller_ids_keep_their_commas_and_quotes():
    rows, errors = read("quoting.csv")
    assert errors == []
    assert [row.clid for row in rows] == ['"Ivanov, Ivan" <84957894561>', '"Test User" <test>', '"" <84957894562>']
    assert rows[1].accountcode == "acc,1"
    assert rows[1].userfield == 'say "hi", twice'


def test_times_are_read_in_the_pbx_time_zone_and_an_empty_answer_is_none():
    rows, _ = read("quoting.csv")
    assert (rows[0].start, rows[0].answer, rows[0].end) == (at(10, 0), at(10, 0, 5), at(10, 1, 5))
    assert rows[0].start.utcoffset() == timedelta(hours=3)
    assert rows[1].answer is None  # written as ""
    assert rows[2].answer is None  # written as nothing at all
    assert (rows[0].duration, rows[0].billsec, rows[0].disposition) == (65, 60, "ANSWERED")


def test_a_broken_line_is_reported_with_its_number_and_the_lines_after_it_are_still_read():
    rows, errors = read("broken.csv")
    assert errors == [
        "line 2: bad quoting (unexpected end of data)",
        "line 4: start is not a time: '2025-03-14 25:61:00'",
        "line 5: 20 fields, expected 16, 17, 18, 19 or 21",
        "line 6: NUL byte in the line",
        "line 7: duration is not a whole number: '1x'",
    ]
    assert [row.src for row in rows] == ["84957894561", "84957894563", "84957894564"]


def test_the_optional_columns_are_told_apart_by_the_number_of_fields():
    rows, errors = read("columns.csv")
    assert errors == []
    columns = [(row.uniqueid, row.userfield, row.peeraccount, row.linkedid, row.sequence) for row in rows]
    assert columns == [
        ("", "", "", "", None),                                        # 16 fields
        ("1741942920.2", "", "", "", None),                            # 17: loguniqueid
        ("1741942980.3", "vip", "", "", None),                         # 18: loguserfield too
        ("", "", "", "1741943040.4", 0),                               # 19: newcdrcolumns only
        ("1741943100.5", "vip", "acc2", "1741943100.5", 3),            # 21: all of them
    ]
    assert all((row.disposition, row.amaflags, row.billsec) == ("ANSWERED", "DOCUMENTATION", 10) for row in rows)


def test_every_kind_of_row_sums_up_to_one_call():
    rows, _ = read("columns.csv")
    calls = summed(rows)
    assert len(calls) == 5
    # Without linkedid or uniqueid the A channel and its start name the call.
    first = calls[f"PJSIP/trunk-00000021@{int(at(12, 1).timestamp())}"]
    assert (first.direction, first.phone, first.extension, first.disposition) == ("in", "+74957894561", "100", "answered")


def test_a_parallel_dial_sharing_a_uniqueid_is_one_call_answered_by_the_phone_that_answered():
    rows, errors = read("duplicates.csv")
    assert errors == [] and len(rows) == 4
    call = summed(rows)["1741946400.1"]
    assert (call.direction, call.disposition, call.phone, call.extension) == ("in", "answered", "+74957894561", "101")
    assert (call.started_at, call.answered_at, call.ended_at) == (at(13, 0), at(13, 0, 10), at(13, 0, 40))
    assert (call.duration, call.billsec) == (40, 30)


def test_a_line_written_twice_is_still_one_call():
    rows, _ = read("duplicates.csv")
    call = summed(rows)["1741947000.4"]
    assert (call.disposition, call.extension, call.duration, call.billsec) == ("no_answer", "100", 20, 0)


def test_with_since_older_rows_are_skipped():
    rows, _ = read("broken.csv", since=at(10, 5))
    assert [row.src for row in rows] == ["84957894563", "84957894564"]


def test_with_since_only_the_tail_is_read_from_its_first_whole_line(tmp_path):
    lines = (FIXTURES / "quoting.csv").read_bytes().splitlines(keepends=True)
    path = tmp_path / "Master.csv"
    path.write_bytes(lines[0] + lines[1] + b'"broken\n' + lines[2])
    since = at(0, 0)
    # The cut falls inside the first line: it is left out, not reported as broken.
    rows, errors = read_csv(path, since=since, tz="Europe/Moscow", tail_bytes=len(lines[1]) + len(lines[2]) + 20)
    assert [row.src for row in rows] == ["test", "84957894562"]
    assert errors == ["line 3: bad quoting (unexpected end of data)"]  # counted from the file's start
    # A cut right at a line's start keeps that line.
    rows, _ = read_csv(path, since=since, tz="Europe/Moscow", tail_bytes=len(lines[1]) + len(lines[2]) + 8)
    assert [row.src for row in rows] == ["test", "84957894562"]


# The simulator's own rows (recorded into simulator.csv), one call per scenario.

def simulator_calls():
    rows, errors = read("simulator.csv")
    assert errors == []
    return list(summed(rows).values())


def facts(call):
    return (call.direction, call.disposition, call.phone, call.extension, call.duration, call.billsec)


def test_the_simulator_inbound_calls_sum_up_right():
    answered, two_phones, missed, no_answer, busy = simulator_calls()[:5]
    assert facts(answered) == ("in", "answered", "+74957894561", "100", 2, 1)
    assert answered.answered_at == at(1, 34, 53)
    assert facts(two_phones) == ("in", "answered", "+74957894561", "100", 1, 1)
    assert facts(missed) == ("in", "no_answer", "+74957894561", "100", 0, 0)
    assert facts(no_answer) == ("in", "no_answer", "+74957894561", "100", 0, 0)
    assert facts(busy) == ("in", "busy", "+74957894561", "100", 0, 0)
    assert missed.answered_at is None and busy.answered_at is None


def test_the_simulator_originates_through_a_local_channel_sum_up_right():
    answered, outside_busy, outside_no_answer, outside_failed, operator_busy, operator_no_answer = simulator_calls()[5:]
    assert answered.key == "1796423696.13"  # the ;1 half's uniqueid
    assert facts(answered) == ("out", "answered", "+74951234560", "100", 2, 1)
    assert (answered.started_at, answered.answered_at, answered.ended_at) == (at(1, 34, 56), at(1, 34, 57), at(1, 34, 58))
    assert facts(outside_busy) == ("out", "busy", "+74951234561", "100", 0, 0)
    assert facts(outside_no_answer) == ("out", "no_answer", "+74951234562", "100", 0, 0)
    assert facts(outside_failed) == ("out", "failed", "+74951234563", "100", 0, 0)
    # The operator never answered: only the ;2 half's row exists, and it knows no outside number.
    assert facts(operator_busy) == ("out", "busy", "", "100", 0, 0)
    assert facts(operator_no_answer) == ("out", "no_answer", "", "100", 1, 0)


def row(channel, dstchannel, disposition, *, start=0, answer=None, end=30, src="84957894561", dst="74951234500", **extra):
    return CdrRow(
        accountcode="", src=src, dst=dst, dcontext="from-trunk", clid="", channel=channel, dstchannel=dstchannel,
        lastapp="Dial", lastdata="", start=at(9, 0, start), answer=None if answer is None else at(9, 0, answer),
        end=at(9, 0, end), duration=end - start, billsec=0 if answer is None else end - answer,
        disposition=disposition, amaflags="DOCUMENTATION", **extra,
    )


def test_a_call_answered_by_a_voice_menu_but_never_by_an_operator_is_not_answered():
    menu = row("PJSIP/trunk-00000001", "", "ANSWERED", answer=1, uniqueid="1.1", linkedid="1.1")
    call = summed([menu])["1.1"]
    assert (call.direction, call.disposition, call.extension, call.answered_at) == ("in", "no_answer", "", None)


def test_a_queue_through_local_channels_is_answered_by_the_member_who_answered():
    rows = [
        row("PJSIP/trunk-00000001", "Local/100@from-queue-00000001;1", "NO ANSWER", uniqueid="1.1", linkedid="1.1"),
        row("PJSIP/trunk-00000001", "Local/101@from-queue-00000002;1", "ANSWERED", answer=5, uniqueid="1.1", linkedid="1.1", sequence=2),
        row("Local/101@from-queue-00000002;2", "PJSIP/101-00000004", "ANSWERED", answer=5, uniqueid="1.4", linkedid="1.1", sequence=3),
    ]
    call = summed(rows)["1.1"]
    assert (call.direction, call.disposition, call.extension, call.billsec) == ("in", "answered", "101", 25)


def test_without_a_linkedid_the_far_half_of_an_originate_is_not_a_call_of_its_own():
    rows = [
        row("Local/100@from-internal-00000001;1", "PJSIP/trunk-00000003", "ANSWERED", answer=4, dst="84951234567", uniqueid="2.1"),
        row("Local/100@from-internal-00000001;2", "PJSIP/100-00000002", "ANSWERED", answer=1, dst="100", uniqueid="2.2"),
    ]
    calls = summed(rows)
    assert list(calls) == ["2.1"]
    assert facts(calls["2.1"]) == ("out", "answered", "+74951234567", "100", 30, 26)


def test_an_operator_dialling_out_from_the_desk_phone_is_an_outbound_call():
    dialled = row("PJSIP/101-00000001", "PJSIP/trunk-00000002", "BUSY", src="101", dst="84951234567", linkedid="3.1")
    assert facts(summed([dialled])["3.1"]) == ("out", "busy", "+74951234567", "101", 30, 0)


def test_a_congested_trunk_counts_as_failed_and_the_earliest_row_leads():
    first = row("PJSIP/trunk-00000001", "PJSIP/100-00000002", "CONGESTION", start=2, linkedid="4.1", sequence=5)
    earlier = replace(first, start=at(9, 0, 0), dstchannel="PJSIP/101-00000003", sequence=9)
    call = summed([first, earlier])["4.1"]
    assert (call.disposition, call.extension, call.started_at) == ("failed", "101", at(9, 0, 0))
