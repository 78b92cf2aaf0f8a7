"""Recorded AMI transcripts (fixtures/ami/) replayed through CallTracker, plus its helpers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from telephony.events import CallTracker, normalize_phone, parse_transcript, unescape_c
from tests.helpers import AMI_FIXTURES as FIXTURES
from tests.helpers import renumbered
from tests.helpers import transcript as load
# The clock for messages without a Timestamp header: one second per message.
CLOCK = datetime(2024, 11, 27, 12, 0, tzinfo=timezone.utc)

EXPECTED = {
    "inbound__answered.txt": dict(
        linkedid="1732711200.42", direction="in", phone="+74957894561", caller_name="IVANOV I",
        extensions_rung=["100"], extension="100", disposition="answered", duration=74,
        billsec=65, recording=""),
    "inbound__missed.txt": dict(
        linkedid="1732711500.48", direction="in", phone="+79161234567", caller_name="",
        extensions_rung=["101"], extension="101", disposition="no_answer", duration=9,
        billsec=0, recording=""),
    "inbound__no_answer.txt": dict(
        linkedid="1732711800.52", direction="in", phone="+74996715740", caller_name="",
        extensions_rung=["100"], extension="100", disposition="no_answer", duration=36,
        billsec=0, recording=""),
    "inbound__busy.txt": dict(
        linkedid="1732712100.56", direction="in", phone="+74957894561", caller_name="",
        extensions_rung=["100"], extension="100", disposition="busy", duration=9, billsec=0,
        recording=""),
    "inbound__two_extensions_one_answers.txt": dict(
        linkedid="1732712400.60", direction="in", phone="+74993690439",
        caller_name="FITNESS CLUB", extensions_rung=["100", "101"], extension="101",
        disposition="answered", duration=126, billsec=120, recording=""),
    "inbound__recorded.txt": dict(
        linkedid="1732712700.64", direction="in", phone="+74957894561",
        caller_name='O\'Brien "Ltd"', extensions_rung=["100"], extension="100",
        disposition="answered", duration=95, billsec=90,
        recording="/var/spool/asterisk/monitor/2024/11/27/in-74957894561-1732712700.64.wav"),
    "inbound__unknown_caller.txt": dict(
        linkedid="1732713000.68", direction="in", phone="", caller_name="",
        extensions_rung=["101"], extension="101", disposition="answered", duration=32,
        billsec=30, recording=""),
    "originate__answered.txt": dict(
        linkedid="1732713600.90", direction="out", phone="+74957894561", caller_name="",
        extensions_rung=["100"], extension="100", disposition="answered", duration=57,
        billsec=42, recording=""),
    "originate__no_answer.txt": dict(
        linkedid="1732714200.100", direction="out", phone="+74957894561", caller_name="",
        extensions_rung=["100"], extension="100", disposition="no_answer", duration=63,
        billsec=0, recording=""),
    "originate__busy.txt": dict(
        linkedid="1732714500.110", direction="out", phone="+74957894561", caller_name="",
        extensions_rung=["100"], extension="100", disposition="busy", duration=28, billsec=0,
        recording=""),
    "originate__operator_no_answer.txt": dict(
        linkedid="1732714800.120", direction="out", phone="+74957894561", caller_name="",
        extensions_rung=["100"], extension="100", disposition="no_answer", duration=30,
        billsec=0, recording=""),
    "originate__operator_busy.txt": dict(
        linkedid="1732715100.130", direction="out", phone="+74957894561", caller_name="",
        extensions_rung=["100"], extension="100", disposition="busy", duration=0, billsec=0,
        recording=""),
    "originate__failed.txt": dict(
        linkedid="sc-originate-a0f1", direction="out", phone="+74957894561", caller_name="",
        extensions_rung=[], extension="100", disposition="failed", duration=0, billsec=0,
        recording=""),
    "malformed.txt": dict(
        linkedid="1732716000.120", direction="in", phone="+74957894561", caller_name="",
        extensions_rung=["100"], extension="100", disposition="answered", duration=20,
        billsec=15, recording=""),
    "inbound__ring_group_busy_and_answer.txt": dict(
        linkedid="1732717200.200", direction="in", phone="+74957894561", caller_name="Сидоров П",
        extensions_rung=["100", "101", "102"], extension="101", disposition="answered", duration=90,
        billsec=83, recording="/var/spool/asterisk/monitor/1732717200.200.wav"),
    "inbound__queue_busy_and_answer.txt": dict(
        linkedid="1732717500.230", direction="in", phone="+74991234567", caller_name="",
        extensions_rung=["100", "101", "102"], extension="101", disposition="answered", duration=80,
        billsec=71, recording="/var/spool/asterisk/monitor/1732717500.230.wav"),
    "originate__local_chain.txt": dict(
        linkedid="1732717800.260", direction="out", phone="+74951234567", caller_name="",
        extensions_rung=["100"], extension="100", disposition="answered", duration=60,
        billsec=52, recording="/var/spool/asterisk/monitor/1732717800.260.wav"),
    "inbound__named_endpoints.txt": dict(
        linkedid="1732718100.290", direction="in", phone="+79161234567", caller_name="",
        extensions_rung=["107", "104", "105"], extension="107", disposition="answered", duration=45,
        billsec=40, recording="/var/spool/asterisk/monitor/1732718100.290.wav"),
    "outbound__named_endpoint_dials_out.txt": dict(
        linkedid="1732718400.310", direction="out", phone="+74951234567", caller_name="",
        extensions_rung=[], extension="106", disposition="answered", duration=72,
        billsec=64, recording="/var/spool/asterisk/monitor/1732718400.310.wav"),
    "inbound__nl_caller.txt": dict(
        linkedid="1732718700.330", direction="in", phone="+31201234567", caller_name="Jansen",
        extensions_rung=["100"], extension="100", disposition="answered", duration=37,
        billsec=33, recording="/var/spool/asterisk/monitor/1732718700.330.wav"),
}
# The operators' phones as an installation's operator table names them (endpoint -> extension).
OPERATOR_ENDPOINTS = {"SIP/4411-7": "104", "SIP/310020005": "105", "PJSIP/hg63xv": "106", "SIP/office-front": "107"}
# How the listener would build the tracker for a transcript, where the defaults do not fit it.
TRACKER_OPTIONS = {
    "inbound__named_endpoints.txt": dict(endpoints=OPERATOR_ENDPOINTS),
    "outbound__named_endpoint_dials_out.txt": dict(endpoints=OPERATOR_ENDPOINTS),
    "inbound__nl_caller.txt": dict(region="NL"),
}


def replay(timed_messages, tracker=None):
    """Apply (second, message) pairs; return the tracker and the last reported state per call."""
    tracker = tracker or CallTracker()
    reported = {}
    for second, message in timed_messages:
        state = tracker.apply(message, arrival(message, CLOCK + timedelta(seconds=second)))
        if state is not None:
            reported[state.linkedid] = state
    return tracker, reported


def arrival(message, otherwise):
    """When the listener got `message`: its clock agrees with the PBX's, so at its Timestamp."""
    try:
        return datetime.fromtimestamp(float(message.get("Timestamp", "")), timezone.utc)
    except ValueError:
        return otherwise


def heard_at(messages, index):
    """When `replay` makes the listener hear messages[index]."""
    return arrival(messages[index], CLOCK + timedelta(seconds=index))


def tracker_for(name):
    return CallTracker(**TRACKER_OPTIONS.get(name, {}))


def final_state(messages, tracker=None):
    tracker, reported = replay(enumerate(messages), tracker)
    assert len(reported) == 1
    assert tracker.active() == []
    return next(iter(reported.values()))


def fields(state, names=None):
    return {name: getattr(state, name) for name in names or EXPECTED["malformed.txt"]}


def move(messages, event, to):
    """Move the first message of type `event` to position `to` (0 = first, -1 = last)."""
    index = next(i for i, m in enumerate(messages) if m.get("Event") == event)
    messages = list(messages)
    message = messages.pop(index)
    messages.insert(len(messages) if to == -1 else to, message)
    return messages


def test_every_fixture_has_an_expectation():
    assert sorted(path.name for path in FIXTURES.glob("*.txt")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_it_reduces_a_recorded_call_to_its_final_state(name):
    state = final_state(load(name), tracker_for(name))

    assert fields(state) == EXPECTED[name]
    assert state.is_over


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_replaying_a_transcript_twice_changes_nothing(name):
    messages = load(name)
    once = final_state(messages, tracker_for(name))

    tracker, reported = replay(enumerate(messages + messages), tracker_for(name))

    assert list(reported.values()) == [once]
    assert tracker.active() == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_message_arriving_twice_changes_nothing(name):
    messages = load(name)
    doubled = [(second, message) for second, message in enumerate(messages) for _ in (1, 2)]

    _, reported = replay(doubled, tracker_for(name))

    assert list(reported.values()) == [final_state(messages, tracker_for(name))]


@pytest.mark.parametrize("name", ["originate__answered.txt", "originate__operator_busy.txt",
                                  "originate__no_answer.txt", "originate__local_chain.txt"])
@pytest.mark.parametrize("to", [0, -1])
def test_the_originate_response_may_come_first_or_last(name, to):
    messages = load(name)

    assert final_state(move(messages, "OriginateResponse", to)) == final_state(messages)


def test_the_answer_time_does_not_depend_on_which_answer_event_comes_first():
    messages = load("inbound__answered.txt")
    answered = final_state(messages)

    reordered = move(messages, "DialEnd", 0)

    assert final_state(reordered) == answered


def test_it_takes_a_dial_begin_whose_newchannel_it_never_saw():
    messages = load("inbound__answered.txt")
    without = [m for m in messages if not (m.get("Event") == "Newchannel"
                                           and m["Channel"].startswith("PJSIP/100-"))]

    assert fields(final_state(without)) == EXPECTED["inbound__answered.txt"]


def test_it_reports_an_inbound_call_as_it_rings_and_answers():
    tracker = CallTracker()
    changes = []
    for message in load("inbound__answered.txt"):
        state = tracker.apply(message, CLOCK)
        if state is not None:   # the same live object each time, so copy what it says now
            changes.append((message["Event"], state.direction, state.phone, state.disposition,
                            state.extension, state.is_over))

    assert changes == [
        ("Newchannel", "in", "+74957894561", "ringing", None, False),
        ("Newchannel", "in", "+74957894561", "ringing", "100", False),
        ("Newstate", "in", "+74957894561", "answered", "100", False),
        ("Hangup", "in", "+74957894561", "answered", "100", True),   # not the first Hangup
    ]


def test_it_ignores_a_duplicate_dial_end():
    # Without the Newstate Up, the DialEnd ANSWER is what answers the call.
    messages = [m for m in load("inbound__answered.txt")
                if not (m.get("Event") == "Newstate" and m["ChannelState"] == "6")]
    dial_end = next(i for i, m in enumerate(messages) if m.get("Event") == "DialEnd")
    tracker, _ = replay(enumerate(messages[:dial_end]))

    first = tracker.apply(messages[dial_end], CLOCK)
    second = tracker.apply(dict(messages[dial_end]), CLOCK + timedelta(seconds=1))

    assert (first.disposition, first.extension) == ("answered", "100")
    assert second is None


def test_a_late_event_does_not_bring_a_finished_call_back():
    messages = load("inbound__answered.txt")
    tracker, _ = replay(enumerate(messages))
    late = [m for m in messages if m.get("Event") in ("Hangup", "Newchannel", "DialBegin")]

    assert [tracker.apply(m, CLOCK + timedelta(hours=1)) for m in late] == [None] * len(late)
    assert tracker.active() == []


def test_a_call_is_over_only_when_its_last_channel_hangs_up():
    messages = load("originate__answered.txt")
    last_hangup = max(i for i, m in enumerate(messages) if m.get("Event") == "Hangup")
    tracker, reported = replay(enumerate(messages[:last_hangup]))

    call = reported["1732713600.90"]
    assert not call.is_over and call.ended_at is None and call.duration == 0
    assert tracker.active() == [call]


def test_an_outgoing_call_takes_the_number_dialled_over_the_trunk_legs_caller_id():
    messages = load("originate__answered.txt")
    for message in messages:
        for key in ("CallerIDNum", "DestCallerIDNum"):
            if message.get(key.replace("CallerIDNum", "Channel"), "").startswith("PJSIP/mts-"):
                message[key] = "74951234567"    # the office number shown to the client

    assert final_state(messages).phone == "+74957894561"


def test_a_channel_stays_with_the_call_it_joined_first():
    tracker = CallTracker()
    first = {"Channel": "PJSIP/trunk-00000001", "Uniqueid": "7.1", "Linkedid": "7.1"}
    phone = {"Channel": "PJSIP/100-00000002", "Uniqueid": "7.2", "Linkedid": "7.1"}
    second = {"Channel": "PJSIP/trunk-00000003", "Uniqueid": "7.3", "Linkedid": "7.3"}
    for message in ({"Event": "Newchannel", **first}, {"Event": "Newchannel", **phone},
                    {"Event": "Newchannel", **second}):
        tracker.apply(message, CLOCK)

    # A transfer hands the phone the other call's Linkedid; it still belongs to the first.
    tracker.apply({"Event": "DialBegin", **second, "DestChannel": phone["Channel"],
                   "DestUniqueid": "7.2", "DestLinkedid": "7.3"}, CLOCK)
    second_over = tracker.apply({"Event": "Hangup", **second, "Cause": "16"}, CLOCK)
    tracker.apply({"Event": "Hangup", **first, "Cause": "16"}, CLOCK)
    first_over = tracker.apply({"Event": "Hangup", **phone, "Linkedid": "7.3", "Cause": "16"},
                               CLOCK)

    assert (second_over.linkedid, second_over.uniqueids, second_over.is_over) == (
        "7.3", {"7.3"}, True)
    assert (first_over.linkedid, first_over.is_over) == ("7.1", True)
    assert tracker.active() == []


def test_the_operator_picking_up_does_not_answer_an_outgoing_call():
    messages = load("originate__answered.txt")
    outside = next(i for i, m in enumerate(messages) if m.get("Event") == "Newchannel"
                   and m["Channel"].startswith("PJSIP/mts-"))
    _, reported = replay(enumerate(messages[:outside]))

    call = reported["1732713600.90"]
    assert (call.disposition, call.answered_at, call.extension) == ("ringing", None, "100")
    assert call.phone == "+74957894561"     # from the ;1 half's Exten, before the trunk leg


@pytest.mark.parametrize(("reason", "disposition"), [
    ("0", "failed"), ("1", "failed"), ("3", "no_answer"), ("5", "busy"), ("8", "failed")])
def test_an_originate_that_created_no_channel_ends_at_once(reason, disposition):
    message = {"Event": "OriginateResponse", "Privilege": "call,all", "ActionID": "sc-1",
               "Response": "Failure", "Channel": "Local/101@from-internal",
               "Context": "from-internal", "Exten": "89161234567", "Reason": reason,
               "Uniqueid": "<unknown>", "CallerIDNum": "<unknown>", "CallerIDName": "<unknown>"}

    call = CallTracker().apply(message, CLOCK)

    assert fields(call, ["linkedid", "direction", "extension", "phone", "disposition",
                         "is_over", "started_at", "ended_at"]) == dict(
        linkedid="sc-1", direction="out", extension="101", phone="+79161234567",
        disposition=disposition, is_over=True, started_at=CLOCK, ended_at=CLOCK)


def unanswered_inbound(statuses):
    """A trunk call dialled in parallel to 100, 101…, each leg ending with the given DialStatus."""
    trunk = {"Channel": "PJSIP/trunk-00000001", "CallerIDNum": "84957894561",
             "Uniqueid": "5.1", "Linkedid": "5.1"}
    legs = [{"DestChannel": f"PJSIP/{100 + n}-0000000{n + 2}", "DestUniqueid": f"5.{n + 2}",
             "DestLinkedid": "5.1"} for n in range(len(statuses))]
    return ([{"Event": "Newchannel", **trunk}]
            + [{"Event": "DialBegin", **trunk, **leg} for leg in legs]
            + [{"Event": "DialEnd", **trunk, **leg, "DialStatus": status}
               for leg, status in zip(legs, statuses)]
            + [{"Event": "Hangup", "Channel": leg["DestChannel"], "Uniqueid": leg["DestUniqueid"],
                "Linkedid": "5.1", "Cause": "16"} for leg in legs]
            + [{"Event": "Hangup", **trunk, "Cause": "16"}])


@pytest.mark.parametrize(("statuses", "disposition"), [
    (["CHANUNAVAIL", "NOANSWER"], "no_answer"),
    (["CONGESTION", "CANCEL"], "no_answer"),
    (["NOANSWER", "BUSY"], "no_answer"),   # one busy while another rang: missed, not busy
    (["BUSY", "CANCEL"], "no_answer"),
    (["BUSY", "BUSY"], "busy"),
    (["BUSY", "CHANUNAVAIL"], "busy"),
    (["CHANUNAVAIL"], "failed"),
    (["CHANUNAVAIL", "CONGESTION"], "failed"),
    ([], "no_answer"),
])
def test_an_unanswered_call_ends_with_the_most_telling_dial_status(statuses, disposition):
    call = final_state(unanswered_inbound(statuses))

    assert (call.disposition, call.is_over, call.answered_at) == (disposition, True, None)
    assert call.extensions_rung == [str(100 + n) for n in range(len(statuses))]


def test_a_user_busy_hangup_means_busy_even_without_its_dial_end():
    messages = [m for m in unanswered_inbound(["BUSY"]) if m["Event"] != "DialEnd"]
    messages[-2]["Cause"] = "17"

    assert final_state(messages).disposition == "busy"


def test_an_originate_response_with_no_key_at_all_is_ignored():
    message = {"Event": "OriginateResponse", "Response": "Failure", "Reason": "0",
               "Channel": "Local/100@from-internal", "Uniqueid": "<unknown>"}

    assert CallTracker().apply(message, CLOCK) is None


@pytest.mark.parametrize("message", [
    {"Event": "Newexten", "Channel": "PJSIP/trunk-00000001", "Uniqueid": "1.1",
     "Linkedid": "1.1"},
    {"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"},
    {"Event": "MixMonitorStart", "Channel": "PJSIP/trunk-00000001", "Uniqueid": "1.1",
     "Linkedid": "1.1"},
    {"Event": "VarSet", "Channel": "PJSIP/trunk-00000001", "Uniqueid": "1.1", "Linkedid": "1.1",
     "Variable": "DIALSTATUS", "Value": "ANSWER"},
    {"Response": "Success", "ActionID": "1", "Message": "Authentication accepted"},
    {"Event": "Hangup", "Channel": "PJSIP/trunk-00000001", "Uniqueid": "1.1", "Linkedid": "1.1",
     "Cause": "16"},
    {"Event": "Newchannel", "Uniqueid": "1.1", "Linkedid": "1.1"},
    {"Event": "Newchannel", "Channel": "PJSIP/trunk-00000001", "Uniqueid": "1.1"},
    {"Event": "DialEnd", "DialStatus": "ANSWER"},
    {"Event": 42},
    {},
])
def test_it_returns_none_for_what_it_does_not_track(message):
    tracker = CallTracker()

    assert tracker.apply(message, CLOCK) is None
    assert tracker.active() == []


@pytest.mark.parametrize("message", [None, [], "Event: Newchannel", {1: 2}, {"Event": None}])
def test_it_never_raises_on_a_message_that_is_not_a_mapping_of_strings(message):
    assert CallTracker().apply(message, CLOCK) is None


def test_it_matches_headers_without_regard_to_case_and_takes_the_last_of_a_list():
    tracker = CallTracker()
    message = {"EVENT": "newchannel", "channel": "PJSIP/trunk-00000001",
               "UNIQUEID": ["0.0", "1732711200.42"], "linkedid": "1732711200.42",
               "CallerIdNum": "84957894561", "ChanVariable": ["A=1", "B=2"]}

    call = tracker.apply(message, CLOCK)

    assert (call.linkedid, call.direction, call.phone) == ("1732711200.42", "in", "+74957894561")
    assert call.uniqueids == {"1732711200.42"}


def test_it_prefers_the_timestamp_header_to_the_clock():
    base = {"Event": "Newchannel", "Channel": "PJSIP/trunk-00000001", "Uniqueid": "9.1",
            "Linkedid": "9.1"}
    now = datetime(2024, 11, 27, 12, 40, 3, tzinfo=timezone.utc)

    stamped = CallTracker().apply({**base, "Timestamp": "1732711200.250000"}, now)
    unstamped = CallTracker().apply({**base, "Timestamp": "not-a-number"}, now)

    assert stamped.started_at == datetime(2024, 11, 27, 12, 40, 0, 250000, tzinfo=timezone.utc)
    assert unstamped.started_at == now


@pytest.mark.parametrize("stamp", ["4102444800.0", "-5000000000.0", "1e300", "nan", "inf"])
def test_a_timestamp_far_from_the_listeners_clock_gives_way_to_the_arrival_time(stamp):
    message = {"Event": "Newchannel", "Channel": "PJSIP/trunk-00000001", "Uniqueid": "9.1",
               "Linkedid": "9.1", "Timestamp": stamp}

    assert CallTracker().apply(message, CLOCK).started_at == CLOCK


def test_it_un_escapes_the_recording_file_name():
    tracker = CallTracker()
    snapshot = {"Channel": "PJSIP/trunk-00000001", "Uniqueid": "9.1", "Linkedid": "9.1"}
    tracker.apply({"Event": "Newchannel", **snapshot}, CLOCK)

    call = tracker.apply({"Event": "VarSet", **snapshot, "Variable": "MIXMONITOR_FILENAME",
                          "Value": "/rec/O\\'Brien \\\"Ltd\\\".wav"}, CLOCK)

    assert call.recording == "/rec/O'Brien \"Ltd\".wav"


@pytest.mark.parametrize(("channel", "rung"), [
    ("PJSIP/100-00000002", ["100"]), ("SIP/101-0000000a", ["101"]),
    ("PJSIP/trunk-00000001", []), ("PJSIP/mts-0000001f", []),
    ("PJSIP/74957894561-00000003", []), ("Local/100@from-internal-0000000a;2", []),
])
def test_it_tells_operator_phones_from_outside_lines_and_local_halves(channel, rung):
    tracker = CallTracker()
    tracker.apply({"Event": "Newchannel", "Channel": "PJSIP/trunk-00000009",
                   "CallerIDNum": "84957894561", "Uniqueid": "9.1", "Linkedid": "9.1"}, CLOCK)

    call = tracker.apply({"Event": "Newchannel", "Channel": channel, "Uniqueid": "9.2",
                          "Linkedid": "9.1"}, CLOCK)

    assert (call.extensions_rung, call.direction, call.phone) == (rung, "in", "+74957894561")


def test_the_extension_pattern_is_configurable():
    tracker = CallTracker(extension_pattern=r"^\d{4}$")
    tracker.apply({"Event": "Newchannel", "Channel": "PJSIP/trunk-00000009",
                   "Uniqueid": "9.1", "Linkedid": "9.1"}, CLOCK)

    call = tracker.apply({"Event": "Newchannel", "Channel": "PJSIP/1234-00000002",
                          "Uniqueid": "9.2", "Linkedid": "9.1"}, CLOCK)

    assert call.extensions_rung == ["1234"]


def test_finished_calls_are_forgotten_so_memory_stays_bounded():
    messages = load("inbound__answered.txt")
    tracker = CallTracker(keep_finished=100)

    for n in range(10_000):
        for message in renumbered(messages, n):
            tracker.apply(message, CLOCK)

    assert tracker.active() == []
    assert len(tracker.known(datetime.min.replace(tzinfo=timezone.utc))) == 100, "only the last keep_finished are kept"
    late = renumbered(messages, 9_999)
    assert [tracker.apply(m, CLOCK) for m in late] == [None] * len(late), "a late duplicate of a kept call is ignored"
    forgotten = [state for state in (tracker.apply(m, CLOCK) for m in renumbered(messages, 0)) if state]
    assert forgotten[-1].linkedid == "1732711200.42-0" and forgotten[-1].is_over, "an older one is heard as new"


def test_a_call_that_goes_silent_for_too_long_is_closed_as_of_its_last_event():
    messages = load("inbound__answered.txt")
    hangups = [i for i, m in enumerate(messages) if m.get("Event") == "Hangup"]
    # Heard up to the answer's BridgeEnter: the BridgeLeave after it is not an event the tracker reads.
    bridged = max(i for i, m in enumerate(messages[:hangups[0]]) if m.get("Event") == "BridgeEnter")
    tracker, _ = replay(enumerate(messages[:bridged + 1]))
    last_event = heard_at(messages, bridged)
    assert tracker.close_silent(last_event + timedelta(minutes=59), timedelta(hours=1)) == []

    [closed] = tracker.close_silent(last_event + timedelta(hours=2), timedelta(hours=1))

    assert (closed.is_over, closed.disposition, closed.ended_at) == (True, "answered", last_event)
    assert tracker.active() == []
    late = [m for m in messages[hangups[0]:] if m.get("Event") == "Hangup"]
    assert [tracker.apply(m, last_event) for m in late] == [None] * len(late), "a closed call stays closed"


def test_a_call_the_pbx_no_longer_has_is_closed_and_one_it_still_has_is_kept():
    messages = load("inbound__answered.txt")
    hangups = [i for i, m in enumerate(messages) if m.get("Event") == "Hangup"]
    tracker, _ = replay(enumerate(messages[:hangups[0]]))
    tracker, _ = replay(enumerate(renumbered(messages[:hangups[0]], "alive")), tracker)
    now = heard_at(messages, hangups[0] - 1) + timedelta(seconds=5)
    live = {m["Uniqueid"] for m in renumbered(messages, "alive") if m.get("Uniqueid")}

    closed = tracker.close_gone(live, now)

    assert [(call.linkedid, call.is_over, call.ended_at) for call in closed] == [("1732711200.42", True, now)]
    assert [call.linkedid for call in tracker.active()] == ["1732711200.42-alive"]


def test_known_calls_are_the_active_ones_and_those_that_ended_recently():
    messages = load("inbound__answered.txt")
    tracker, reported = replay(enumerate(messages))
    ended = reported["1732711200.42"].ended_at
    tracker, _ = replay(enumerate(renumbered(messages[:5], "active")), tracker)

    assert sorted(c.linkedid for c in tracker.known(ended)) == ["1732711200.42", "1732711200.42-active"]
    assert [c.linkedid for c in tracker.known(ended + timedelta(seconds=1))] == ["1732711200.42-active"]


@pytest.mark.parametrize("raw", [
    "84957894561", "74957894561", "+74957894561", "4957894561", "8 (495) 789-45-61",
    " +7 495 789-45-61 ",
])
def test_it_normalises_every_form_of_a_russian_number(raw):
    assert normalize_phone(raw, "RU") == "+74957894561"


@pytest.mark.parametrize("raw", ["<unknown>", "anonymous", "Anonymous", "", "   ", "100", "s",
                                 "trunk", "1" * 40, "+7 495 abc"])
def test_it_gives_no_number_for_what_is_not_a_phone_number(raw):
    assert normalize_phone(raw, "RU") == ""


def test_it_keeps_a_foreign_number_foreign():
    assert normalize_phone("+4930123456", "RU") == "+4930123456"
    assert normalize_phone("81049301234567", "RU") == "+49301234567"


@pytest.mark.parametrize(("escaped", "plain"), [
    ("O\\'Brien", "O'Brien"),
    ('O\\\'Brien \\"Ltd\\"', 'O\'Brien "Ltd"'),
    ("a\\\\b", "a\\b"),
    ("\\a\\b\\f\\n\\r\\t\\v\\?", "\a\b\f\n\r\t\v?"),
    ("\\\\\\'", "\\'"),
    ("Иванов \\\"Иван\\\"", 'Иванов "Иван"'),
    ("no escapes", "no escapes"),
    ("\\x41 stays", "\\x41 stays"),
    ("trailing \\", "trailing \\"),
])
def test_it_un_escapes_what_asterisk_escaped(escaped, plain):
    assert unescape_c(escaped) == plain


def test_a_transcript_parses_the_same_with_crlf_or_lf():
    text = "Asterisk Call Manager/7.0.3\r\nResponse: Success\r\nMessage: Authentication accepted" \
           "\r\n\r\nEvent: Hangup\r\nCause: 16\r\nCause: 17\r\njunk without colon\r\n\r\n\r\n"

    assert parse_transcript(text) == parse_transcript(text.replace("\r\n", "\n")) == [
        {"Response": "Success", "Message": "Authentication accepted"},
        {"Event": "Hangup", "Cause": "17"},
    ]



@pytest.mark.parametrize("channel, extension", [
    ("SIP/4411-7-0000001a", "104"), ("SIP/310020005-0000001b", "105"), ("PJSIP/hg63xv-0000001c", "106"),
    ("SIP/office-front-0000001d", "107"), ("PJSIP/100-0000001e", "100"), ("PJSIP/trunk-0000001f", None),
    ("Local/107@from-queue-00000020;2", "107"), ("Local/84951234567@outbound-00000021;1", None),
])
def test_operators_phones_are_known_by_the_operator_table_then_by_the_pattern(channel, extension):
    tracker = CallTracker(endpoints=OPERATOR_ENDPOINTS)

    kind, found = tracker.phones.classify(channel)

    assert found == extension and kind == ("local" if channel.startswith("Local/") else "ext" if extension else "trunk")


def test_an_operator_on_a_named_endpoint_who_dials_out_makes_an_outgoing_call_to_the_number_dialled():
    tracker = CallTracker(endpoints=OPERATOR_ENDPOINTS)
    phone = {"Channel": "PJSIP/hg63xv-00000031", "Uniqueid": "31.1", "Linkedid": "31.1", "CallerIDNum": "hg63xv"}
    trunk = {"DestChannel": "PJSIP/trunk-00000032", "DestUniqueid": "31.2", "DestLinkedid": "31.1", "DestCallerIDNum": "84951234567"}
    tracker.apply({"Event": "Newchannel", **phone, "ChannelState": "4"}, CLOCK)
    tracker.apply({"Event": "DialBegin", **phone, **trunk, "DialString": "trunk/84951234567"}, CLOCK)
    tracker.apply({"Event": "DialEnd", **phone, **trunk, "DestChannelState": "6", "DialStatus": "ANSWER"}, CLOCK + timedelta(seconds=5))
    tracker.apply({"Event": "Hangup", **phone, "Cause": "16"}, CLOCK + timedelta(seconds=65))
    call = tracker.apply({"Event": "Hangup", "Channel": "PJSIP/trunk-00000032", "Uniqueid": "31.2", "Linkedid": "31.1", "Cause": "16"}, CLOCK + timedelta(seconds=65))

    assert (call.direction, call.phone, call.extension, call.disposition, call.billsec) == ("out", "+74951234567", "106", "answered", 60)


def test_a_click_to_call_straight_to_a_named_endpoint_calls_the_client_not_the_operators_account():
    tracker = CallTracker(endpoints=OPERATOR_ENDPOINTS)
    tracker.apply({"Event": "OriginateResponse", "ActionID": "sc-1", "Response": "Failure", "Channel": "SIP/310020005",
                   "Context": "from-internal", "Exten": "84951234567", "Reason": "5", "Uniqueid": "<unknown>",
                   "CallerIDNum": "84951234567"}, CLOCK)
    call = tracker.known(CLOCK)[0]

    assert (call.direction, call.phone, call.extension, call.disposition) == ("out", "+74951234567", "105", "busy")


def test_the_operators_phones_can_change_while_the_tracker_runs():
    tracker = CallTracker()
    assert tracker.phones.classify("SIP/office-front-00000001") == ("trunk", None)

    tracker.phones.set_endpoints({"SIP/office-front": "107"})

    assert tracker.phones.classify("SIP/office-front-00000001") == ("ext", "107")


def renamed(messages, old, new):
    """The same transcript with the phone on endpoint `old` (PJSIP/101) moved to `new` (PJSIP/hg63xv)."""
    result = []
    for message in messages:
        message = {key: value.replace(f"{old}-", f"{new}-") if key.lower().endswith("channel") else value
                   for key, value in message.items()}
        if message.get("Event") == "DialBegin" and message.get("DestChannel", "").startswith(f"{new}-"):
            message["DialString"] = new.partition("/")[2]
        result.append(message)
    return result


def answer_time(messages, channel_prefix):
    up = next(m for m in messages if m.get("Event") == "Newstate" and m.get("ChannelState") == "6"
              and m["Channel"].startswith(channel_prefix))
    return datetime.fromtimestamp(float(up["Timestamp"]), timezone.utc)


@pytest.mark.parametrize("name", ["inbound__ring_group_busy_and_answer.txt", "inbound__queue_busy_and_answer.txt"])
def test_a_group_call_through_local_channels_is_answered_by_the_members_phone_not_a_local_half(name):
    messages = load(name)

    call = final_state(messages)

    # Each Local ;1/;2 went Up and its DialEnd said ANSWER before the trunk's; only the phone's answer counts.
    assert call.answered_at == answer_time(messages, "PJSIP/101-")
    assert (call.extension, call.extensions_rung) == ("101", ["100", "101", "102"])


@pytest.mark.parametrize("name", ["inbound__ring_group_busy_and_answer.txt", "inbound__queue_busy_and_answer.txt",
                                  "originate__local_chain.txt"])
def test_a_phone_neither_table_nor_pattern_knows_is_the_operators_whose_local_pair_dials_it(name):
    messages = renamed(renamed(load(name), "PJSIP/101", "PJSIP/hg63xv"), "PJSIP/100", "SIP/office-front")

    assert fields(final_state(messages)) == EXPECTED[name]


def test_a_local_pair_is_taken_for_its_extensions_phone_whatever_the_order_of_the_events():
    messages = renamed(load("inbound__ring_group_busy_and_answer.txt"), "PJSIP/101", "PJSIP/hg63xv")
    dial = next(i for i, m in enumerate(messages) if m.get("Event") == "DialBegin"
                and m["DestChannel"].startswith("PJSIP/hg63xv-"))
    first_hangup = next(i for i, m in enumerate(messages) if m.get("Event") == "Hangup"
                        and m["Channel"].startswith("PJSIP/trunk-"))
    # The phone answers, and its call is bridged, before the DialBegin that says whose it is arrives.
    late = messages[:dial] + messages[dial + 1:first_hangup] + [messages[dial]] + messages[first_hangup:]

    reordered, original = final_state(late), final_state(messages)

    assert fields(reordered, ["extension", "disposition", "answered_at", "billsec"]) == fields(
        original, ["extension", "disposition", "answered_at", "billsec"])
    assert sorted(reordered.extensions_rung) == sorted(original.extensions_rung)


def test_a_local_pair_that_passes_its_number_on_to_a_trunk_is_not_ringing_an_extension():
    tracker = CallTracker()
    phone = {"Channel": "PJSIP/100-00000001", "Uniqueid": "8.1", "Linkedid": "8.1"}
    two = {"Channel": "Local/112@outbound-00000002;2", "Uniqueid": "8.3", "Linkedid": "8.1"}
    trunk = {"DestChannel": "PJSIP/trunk-00000003", "DestUniqueid": "8.4", "DestLinkedid": "8.1"}
    tracker.apply({"Event": "Newchannel", **phone, "Exten": "112"}, CLOCK)
    tracker.apply({"Event": "DialBegin", **two, **trunk, "DialString": "trunk/112"}, CLOCK)
    tracker.apply({"Event": "DialEnd", **two, **trunk, "DestChannelState": "6", "DialStatus": "ANSWER"}, CLOCK)
    [call] = tracker.active()

    assert (call.direction, call.extensions_rung, call.disposition) == ("out", [], "answered")


def test_a_local_half_1_dialling_out_is_running_the_originate_target_not_ringing_an_extension():
    messages = load("originate__answered.txt")    # Local/100@from-internal-…;1 dials PJSIP/mts-… itself

    call = final_state(messages)

    assert (call.extensions_rung, call.answered_at) == (["100"], answer_time(messages, "PJSIP/mts-"))


def group_through_locals(statuses):
    """A trunk call to members 100, 101… each through a Local/<ext>@from-queue pair; each phone's DialStatus given."""
    trunk = {"Channel": "PJSIP/trunk-00000001", "CallerIDNum": "84957894561", "Uniqueid": "6.1", "Linkedid": "6.1"}
    messages = [{"Event": "Newchannel", **trunk}]
    hangups = []
    for n, status in enumerate(statuses):
        ext, base = str(100 + n), f"Local/{100 + n}@from-queue-0000000{n}"
        one = {"Channel": f"{base};1", "Uniqueid": f"6.{10 * n + 2}", "Linkedid": "6.1"}
        two = {"Channel": f"{base};2", "Uniqueid": f"6.{10 * n + 3}", "Linkedid": "6.1"}
        phone = {"Channel": f"PJSIP/{ext}-0000000{n}", "Uniqueid": f"6.{10 * n + 4}", "Linkedid": "6.1"}
        as_dest = {f"Dest{key}": value for key, value in one.items()}
        phone_dest = {f"Dest{key}": value for key, value in phone.items()}
        local_status = "ANSWER" if status == "ANSWER" else status
        messages += [{"Event": "Newchannel", **one}, {"Event": "Newchannel", **two},
                     {"Event": "DialBegin", **trunk, **as_dest, "DialString": f"Local/{ext}@from-queue/n"},
                     {"Event": "Newchannel", **phone}, {"Event": "DialBegin", **two, **phone_dest, "DialString": ext},
                     {"Event": "DialEnd", **two, **phone_dest, "DialStatus": status},
                     {"Event": "DialEnd", **trunk, **as_dest, "DialStatus": local_status}]
        cause = "17" if status == "BUSY" else "16"
        hangups += [{"Event": "Hangup", **chan, "Cause": cause} for chan in (phone, one, two)]
    return messages + hangups + [{"Event": "Hangup", **trunk, "Cause": "16"}]


@pytest.mark.parametrize(("statuses", "disposition", "extension"), [
    (["BUSY", "ANSWER", "CANCEL"], "answered", "101"),
    (["BUSY", "BUSY", "BUSY"], "busy", None),
    (["BUSY", "CANCEL"], "no_answer", None),
    (["BUSY", "NOANSWER"], "no_answer", None),
])
def test_a_group_call_is_busy_only_when_every_member_was_busy(statuses, disposition, extension):
    call = final_state(group_through_locals(statuses))

    assert (call.disposition, call.extension) == (disposition, extension)
    assert call.extensions_rung == [str(100 + n) for n in range(len(statuses))]


@pytest.mark.parametrize("caller_id", ["0201234567", "0031201234567", "+31201234567", "31201234567"])
def test_a_dutch_caller_id_in_any_form_gives_the_same_number_with_the_nl_region(caller_id):
    messages = [{k: caller_id if v == "0201234567" else v for k, v in m.items()} for m in load("inbound__nl_caller.txt")]

    assert final_state(messages, CallTracker(region="NL")).phone == "+31201234567"
