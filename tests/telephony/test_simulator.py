"""The PBX simulator over real TCP: AMI as Asterisk 18 speaks it, call scripts, CDRs, recordings."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import re
import wave
from collections.abc import Callable

import pytest
import pytest_asyncio

from telephony.simulator import Simulator
from telephony.simulator.cli import main as cli_main
from telephony.simulator.protocol import ALL_EVENTS, EVENT_CLASSES, escape_c, strings_to_mask

pytestmark = pytest.mark.asyncio

Message = list[tuple[str, str]]


def header(message: Message, key: str, default: str | None = None) -> str | None:
    for name, value in message:
        if name == key:
            return value
    return default


class Client:
    """A deliberately naive AMI client: raw bytes out, `Key: Value` blocks in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, banner: bytes) -> None:
        self.reader, self.writer, self.banner = reader, writer, banner
        self.buffer = b""
        self.seen: list[Message] = []

    @classmethod
    async def connect(cls, simulator: Simulator) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", simulator.port)
        return cls(reader, writer, await reader.readline())

    def write(self, raw: bytes) -> None:
        self.writer.write(raw)

    def send(self, *pairs: tuple[str, str], **headers: str) -> None:
        lines = list(pairs) + list(headers.items())
        self.write("".join(f"{key}: {value}\r\n" for key, value in lines).encode() + b"\r\n")

    async def raw_until(self, marker: bytes, timeout: float = 5.0) -> bytes:
        while marker not in self.buffer:
            chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        end = self.buffer.index(marker) + len(marker)
        head, self.buffer = self.buffer[:end], self.buffer[end:]
        return head

    async def next(self, timeout: float = 5.0) -> Message:
        block = await self.raw_until(b"\r\n\r\n", timeout)
        lines = block.decode().split("\r\n")[:-2]
        message = [tuple(line.split(": ", 1)) for line in lines]  # type: ignore[misc]
        self.seen.append(message)  # type: ignore[arg-type]
        return message  # type: ignore[return-value]

    async def until(self, predicate: Callable[[Message], bool], timeout: float = 5.0) -> list[Message]:
        """Every message up to and including the first that matches."""
        collected = []
        while True:
            message = await self.next(timeout)
            collected.append(message)
            if predicate(message):
                return collected

    async def response(self, action_id: str) -> Message:
        found = await self.until(lambda m: header(m, "Response") is not None and header(m, "ActionID") == action_id)
        return found[-1]

    async def login(self, events: str = "on") -> None:
        self.send(Action="Login", ActionID="login", Username="admin", Secret="admin", Events=events)
        assert header(await self.response("login"), "Message") == "Authentication accepted"

    async def is_closed(self, timeout: float = 3.0) -> bool:
        try:
            while True:
                chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
                if not chunk:
                    return True
        except (ConnectionError, asyncio.TimeoutError):
            return False

    def close(self) -> None:
        self.writer.close()


@pytest_asyncio.fixture
async def sim(tmp_path):
    simulator = Simulator(
        port=0, time_scale=0.01, cdr_csv=str(tmp_path / "Master.csv"),
        recordings_dir=str(tmp_path / "recordings"),
    )
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest_asyncio.fixture
async def client(sim):
    connection = await Client.connect(sim)
    await connection.login()
    yield connection
    connection.close()


def call_ended(linkedid: str, hangups_expected: int) -> Callable[[Message], bool]:
    count = 0

    def predicate(message: Message) -> bool:
        nonlocal count
        if header(message, "Event") == "Hangup" and header(message, "Linkedid") == linkedid:
            count += 1
        return count == hangups_expected

    return predicate


def of_call(messages: list[Message], linkedid: str) -> list[Message]:
    """A call's events: those naming its Linkedid, and the events of bridges they entered."""
    mine = [m for m in messages if header(m, "Event") and any(k.endswith("Linkedid") and v == linkedid for k, v in m)]
    bridges = {header(m, "BridgeUniqueid") for m in mine} - {None}
    return [m for m in messages if m in mine or (header(m, "Event") and header(m, "BridgeUniqueid") in bridges)]


def assert_sequence_rules(events: list[Message]) -> None:
    """docs/pbx.md §5, checked over one call's events."""
    position: dict[str, list[tuple[int, str]]] = {}
    for index, message in enumerate(events):
        assert message[1][0] == "Privilege" and message[1][1].endswith(",all"), message
        for key, value in message:
            if key.endswith("Uniqueid") and key != "BridgeUniqueid":
                position.setdefault(value, []).append((index, header(message, "Event") or ""))
    for uniqueid, seen in position.items():
        assert seen[0][1] == "Newchannel", f"{uniqueid} starts with {seen[0][1]}"
        assert seen[-1][1] == "Hangup", f"{uniqueid} ends with {seen[-1][1]}"
        assert [name for _, name in seen].count("Hangup") == 1
    assert len({v for m in events for k, v in m if k.endswith("Linkedid")}) == 1, "one Linkedid per call"
    begins = [header(m, "DestUniqueid") for m in events if header(m, "Event") == "DialBegin"]
    ends = [header(m, "DestUniqueid") for m in events if header(m, "Event") == "DialEnd"]
    assert sorted(begins) == sorted(ends) and len(set(begins)) == len(begins), "one DialBegin/DialEnd pair per callee"
    for dest in begins:
        dial = [header(m, "Event") for m in events if header(m, "DestUniqueid") == dest and header(m, "Event", "").startswith("Dial")]
        assert dial == ["DialBegin", "DialEnd"]
    for bridge in {header(m, "BridgeUniqueid") for m in events if header(m, "BridgeUniqueid")}:
        names = [(i, header(m, "Event"), header(m, "Uniqueid")) for i, m in enumerate(events) if header(m, "BridgeUniqueid") == bridge]
        assert names[0][1] == "BridgeCreate" and names[-1][1] == "BridgeDestroy"
        entered = [u for _, e, u in names if e == "BridgeEnter"]
        assert sorted(entered) == sorted(u for _, e, u in names if e == "BridgeLeave")
        for index, event, uniqueid in names:
            if event == "BridgeLeave":
                assert index < next(i for i, n in position[uniqueid] if n == "Hangup"), "BridgeLeave before Hangup"
    kinds = [header(m, "Event") for m in events]
    if "MixMonitorStart" in kinds:
        varset = next(i for i, m in enumerate(events) if header(m, "Variable") == "MIXMONITOR_FILENAME")
        assert varset < kinds.index("MixMonitorStart")


# -- the AMI session ---------------------------------------------------------------------------


async def test_it_greets_like_asterisk_18(sim):
    connection = await Client.connect(sim)
    assert connection.banner == b"Asterisk Call Manager/7.0.3\r\n"
    connection.close()


async def test_a_plain_login_is_accepted_in_asterisks_words_then_fully_booted_follows(sim):
    connection = await Client.connect(sim)
    connection.send(Action="Login", ActionID="1", Username="admin", Secret="admin")
    raw = await connection.raw_until(b"\r\n\r\n")
    assert raw == b"Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n"
    booted = await connection.next()
    assert booted[:2] == [("Event", "FullyBooted"), ("Privilege", "system,all")]
    assert header(booted, "Status") == "Fully Booted"
    connection.close()


async def test_a_bad_login_is_refused_and_the_connection_closed(sim):
    connection = await Client.connect(sim)
    connection.send(Action="Login", ActionID="1", Username="admin", Secret="wrong")
    response = await connection.response("1")
    assert response == [("Response", "Error"), ("ActionID", "1"), ("Message", "Authentication failed")]
    assert await connection.is_closed()
    connection.close()


async def test_an_md5_challenge_login_is_accepted_and_a_wrong_key_is_not(sim):
    for secret, expected in (("admin", "Authentication accepted"), ("nope", "Authentication failed")):
        connection = await Client.connect(sim)
        connection.send(Action="Challenge", ActionID="c", AuthType="MD5")
        challenge = header(await connection.response("c"), "Challenge")
        assert challenge and challenge.isdigit()
        key = hashlib.md5((challenge + secret).encode()).hexdigest()
        connection.send(Action="Login", ActionID="l", AuthType="MD5", Username="admin", Key=key)
        assert header(await connection.response("l"), "Message") == expected
        connection.close()


async def test_actions_before_login_get_permission_denied(sim):
    connection = await Client.connect(sim)
    for action in ("Ping", "SimCall", "NoSuchAction"):
        connection.send(Action=action, ActionID=action)
        assert header(await connection.response(action), "Message") == "Permission denied"
    connection.close()


async def test_an_unknown_action_and_a_missing_action_get_asterisks_messages(client):
    client.send(Action="Frobnicate", ActionID="1")
    assert header(await client.response("1"), "Message") == (
        "Invalid/unknown command: Frobnicate. Use Action: ListCommands to show available commands."
    )
    client.send(ActionID="2", Channel="x")
    assert header(await client.response("2"), "Message") == "Missing action in request"


async def test_keys_are_case_insensitive_and_a_bare_newline_ends_a_line(client):
    client.write(b"action: ping\nACTIONID: 7\n\n")
    response = await client.response("7")
    assert response[0] == ("Response", "Success") and header(response, "Ping") == "Pong"
    assert re.fullmatch(r"\d+\.\d{6}", header(response, "Timestamp") or "")


async def test_a_line_of_1024_bytes_passes_and_a_longer_one_is_refused(client):
    fits = b"ActionID: " + b"a" * (1024 - 12) + b"\r\n"
    assert len(fits) == 1024
    client.write(b"Action: Ping\r\n" + fits + b"\r\n")
    assert header(await client.response("a" * 1012), "Ping") == "Pong"
    client.write(b"Action: Ping\r\nActionID: long\r\nX-Pad: " + b"b" * 1100 + b"\r\n\r\n")
    response = await client.response("long")
    assert response == [("Response", "Error"), ("ActionID", "long"), ("Message", "Failed to parse message: line too long")]
    client.send(Action="Ping", ActionID="after")
    assert header(await client.response("after"), "Ping") == "Pong"


async def test_128_header_lines_pass_and_129_are_too_many(client):
    padding = [(f"X-{i}", "y") for i in range(126)]
    client.send(("Action", "Ping"), ("ActionID", "ok"), *padding)
    assert header(await client.response("ok"), "Ping") == "Pong"
    client.send(("Action", "Ping"), ("ActionID", "many"), *padding, ("X-last", "z"))
    assert header(await client.response("many"), "Message") == "Too many lines in message or allocation failure"


async def test_logoff_says_goodbye_and_closes(client):
    client.send(Action="Logoff", ActionID="bye")
    assert await client.response("bye") == [("Response", "Goodbye"), ("ActionID", "bye"), ("Message", "Thanks for all the fish.")]
    assert await client.is_closed()


async def test_on_action_is_told_of_each_request_as_it_arrives_before_it_is_handled(sim):
    seen = []
    sim.on_action = lambda request: seen.append((request.action, request.get("channelid"), any(s.authenticated for s in sim.sessions)))
    connection = await Client.connect(sim)
    await connection.login()
    originate(connection, "o1", "84957894561", ChannelId="chan-1")
    await connection.response("o1")
    assert seen == [("Login", "", False), ("Originate", "chan-1", True)]
    connection.close()


async def test_events_off_at_login_suppresses_every_event(sim):
    quiet = await Client.connect(sim)
    await quiet.login(events="off")
    await sim.call("inbound_answered", ring=0.1, talk=0.1)
    quiet.send(Action="Ping", ActionID="p")
    before_ping = await quiet.until(lambda m: header(m, "ActionID") == "p")
    assert [m for m in before_ping if header(m, "Event")] == []
    quiet.close()


async def test_the_events_action_turns_events_off_and_limits_them_to_classes(client, sim):
    client.send(Action="Events", ActionID="off", EventMask="off")
    assert await client.response("off") == [("Response", "Success"), ("ActionID", "off"), ("Events", "Off")]
    client.send(Action="Events", ActionID="bad", EventMask="")
    assert header(await client.response("bad"), "Message") == "Invalid event mask"
    client.send(Action="Events", ActionID="call", EventMask="call")
    assert header(await client.response("call"), "Events") == "On"
    linkedid = await sim.call("inbound_answered", ring=0.1, talk=0.1)
    events = await client.until(call_ended(linkedid, 2))
    kinds = {header(m, "Event") for m in events}
    assert "Newchannel" in kinds and "VarSet" not in kinds and "Newexten" not in kinds, "dialplan class filtered"


async def test_event_masks_are_read_as_asterisk_reads_them():
    assert strings_to_mask("on") == ALL_EVENTS and strings_to_mask("off") == 0
    assert strings_to_mask("call,cdr") == EVENT_CLASSES["call"] | EVENT_CLASSES["cdr"]
    assert strings_to_mask("1") == EVENT_CLASSES["system"], "a number is a bitmask"
    assert strings_to_mask("") == -1


# -- call scenarios ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "statuses", "answered"),
    [
        ("inbound_answered", {"100": "ANSWER", "101": "CANCEL"}, True),
        ("inbound_missed", {"100": "CANCEL", "101": "CANCEL"}, False),
        ("inbound_no_answer", {"100": "NOANSWER", "101": "NOANSWER"}, False),
        ("inbound_busy", {"100": "BUSY", "101": "BUSY"}, False),
    ],
)
async def test_each_inbound_scenario_follows_the_event_rules(client, sim, scenario, statuses, answered):
    client.send(Action="SimCall", ActionID="call", Scenario=scenario, Caller="74957894561", Extensions="100,101", Ring="0.2", Talk="0.2")
    response = await client.response("call")
    linkedid = header(response, "Linkedid")
    assert header(response, "Message") == "Call started" and linkedid
    await client.until(call_ended(linkedid, 3))
    events = of_call(client.seen, linkedid)
    assert_sequence_rules(events)
    assert header(events[0], "Channel", "").startswith("PJSIP/trunk-") and header(events[0], "Uniqueid") == linkedid
    dial_ends = {header(m, "DestExten"): header(m, "DialStatus") for m in events if header(m, "Event") == "DialEnd"}
    assert dial_ends == statuses
    kinds = [header(m, "Event") for m in events]
    assert ("BridgeEnter" in kinds) is answered and ("MixMonitorStart" in kinds) is answered
    if scenario == "inbound_busy":
        assert {header(m, "Cause") for m in events if header(m, "Event") == "Hangup"} == {"17"}


async def test_uniqueids_are_epoch_dot_sequence_and_increase(client, sim):
    linkedid = await sim.call("inbound_answered", extensions=["100", "101", "102"], ring=0.1, talk=0.1)
    await client.until(call_ended(linkedid, 4))
    events = of_call(client.seen, linkedid)
    created = [header(m, "Uniqueid") or "" for m in events if header(m, "Event") == "Newchannel"]
    assert all(re.fullmatch(r"\d{10}\.\d+", u) for u in created)
    assert [int(u.split(".")[1]) for u in created] == sorted(int(u.split(".")[1]) for u in created)
    assert len(set(created)) == 4


async def test_names_are_c_escaped_on_the_way_out(client, sim):
    linkedid = await sim.call("inbound_answered", caller_name='O\'Brien "Ltd"', ring=0.1, talk=0.1)
    await client.until(call_ended(linkedid, 2))
    events = of_call(client.seen, linkedid)
    assert header(events[0], "CallerIDName") == 'O\\\'Brien \\"Ltd\\"'
    callee = next(m for m in events if header(m, "Event") == "Newchannel" and header(m, "Channel", "").startswith("PJSIP/100-"))
    assert header(callee, "ConnectedLineName") == 'O\\\'Brien \\"Ltd\\"'
    assert escape_c("a\\b?\t\n") == "a\\\\b\\?\\t\\n"


async def test_configured_chanvariables_appear_on_channel_events(tmp_path):
    simulator = Simulator(port=0, time_scale=0.01, chanvariables=["CDR(userfield)", "CHANNEL(language)"])
    await simulator.start()
    try:
        connection = await Client.connect(simulator)
        await connection.login()
        linkedid = await simulator.call("inbound_answered", ring=0.1, talk=0.1)
        await connection.until(call_ended(linkedid, 2))
        events = of_call(connection.seen, linkedid)
        assert ("ChanVariable", "CDR(userfield)=") in events[0] and ("ChanVariable", "CHANNEL(language)=en") in events[0]
        dial = next(m for m in events if header(m, "Event") == "DialBegin")
        assert ("DestChanVariable", "CHANNEL(language)=en") in dial
        connection.close()
    finally:
        await simulator.stop()


async def test_an_answered_call_is_recorded_to_a_real_wav_named_in_varset(client, sim, tmp_path):
    linkedid = await sim.call("inbound_answered", ring=0.1, talk=0.1)
    await client.until(call_ended(linkedid, 2))
    events = of_call(client.seen, linkedid)
    path = next(header(m, "Value") for m in events if header(m, "Variable") == "MIXMONITOR_FILENAME")
    assert path == str(tmp_path / "recordings" / f"{linkedid}.wav")
    with wave.open(path) as recording:
        assert (recording.getnchannels(), recording.getframerate(), recording.getsampwidth()) == (1, 8000, 2)
        assert 4000 <= recording.getnframes() <= 8000


async def test_cdr_rows_follow_cdr_csv_columns_and_values(tmp_path):
    master = tmp_path / "Master.csv"
    simulator = Simulator(port=0, time_scale=0.01, cdr_csv=str(master))
    await simulator.start()
    try:
        # Talk long enough in real time (1.2 s) for billsec to be a whole second.
        linkedid = await simulator.call("inbound_answered", caller_name='A "B"', extensions=["100", "101"], ring=10, talk=120)
    finally:
        await simulator.stop()
    text = master.read_text()
    assert ',,"' in text.splitlines()[1], "an unanswered row has an empty unquoted answer time"
    rows = list(csv.reader(text.splitlines()))
    assert [len(row) for row in rows] == [21, 21]
    answered, cancelled = rows
    (accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata, start, answer, end,
     duration, billsec, disposition, amaflags, uniqueid, userfield, peeraccount, row_linkedid, sequence) = answered
    assert (src, dcontext, clid, lastapp, disposition, amaflags) == (
        "74957894561", "from-trunk", '"A "B"" <74957894561>', "Dial", "ANSWERED", "DOCUMENTATION")
    assert channel.startswith("PJSIP/trunk-") and dstchannel.startswith("PJSIP/100-") and dst
    assert uniqueid == row_linkedid == linkedid
    assert int(billsec) == 1 and int(duration) >= int(billsec)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", start) and answer and end >= answer >= start
    assert cancelled[6].startswith("PJSIP/101-") and cancelled[10] == "" and cancelled[13] == "0"
    assert cancelled[14] == "NO ANSWER" and int(cancelled[20]) > int(sequence)


async def test_the_load_mode_plays_rate_times_seconds_calls(client, sim):
    started = await sim.load(rate=200, seconds=0.25, ring=0.1, talk=0.1)
    assert started == 50
    client.send(Action="SimLoad", ActionID="load", Rate="100", Seconds="0.1", Ring="0.1", Talk="0.1")
    response = await client.response("load")
    assert header(response, "Calls") == "10" and header(response, "Message") == "10 calls started"
    trunks = {header(m, "Linkedid") for m in client.seen if header(m, "Event") == "Newchannel" and "trunk" in (header(m, "Channel") or "")}
    assert len(trunks) == 60


# -- originate ---------------------------------------------------------------------------------


def originate(client: Client, action_id: str, number: str, **extra: str) -> None:
    client.send(
        Action="Originate", ActionID=action_id, Channel="Local/100@from-internal", Exten=number,
        Context="from-internal", Priority="1", Async="true", CallerID='"Ivanov" <84951112233>', Timeout="3000",
        **extra,
    )


def originate_response(action_id: str) -> Callable[[Message], bool]:
    return lambda m: header(m, "Event") == "OriginateResponse" and header(m, "ActionID") == action_id


async def test_an_answered_originate_rings_the_operator_then_dials_out(client):
    originate(client, "o1", "84957894561", ChannelId="chan-1", OtherChannelId="chan-2")
    assert await client.response("o1") == [("Response", "Success"), ("ActionID", "o1"), ("Message", "Originate successfully queued")]
    result = (await client.until(originate_response("o1")))[-1]
    assert (header(result, "Response"), header(result, "Reason"), header(result, "Uniqueid")) == ("Success", "4", "chan-1")
    assert re.fullmatch(r"Local/100@from-internal-[0-9a-f]{8};1", header(result, "Channel") or "")
    assert (header(result, "CallerIDNum"), header(result, "CallerIDName")) == ("84951112233", "Ivanov")
    await client.until(call_ended("chan-1", 4))
    events = of_call(client.seen, "chan-1")
    assert_sequence_rules([m for m in events if header(m, "Event") != "OriginateResponse"])
    first_two = [(header(m, "Channel"), header(m, "Uniqueid"), header(m, "Linkedid")) for m in events[:2]]
    assert first_two[0][1:] == ("chan-1", "chan-1") and first_two[1][1:] == ("chan-2", "chan-1")
    assert [header(m, "Event") for m in events[2:4]] == ["LocalBridge", "DialBegin"]
    assert header(events[3], "Channel") is None and header(events[3], "DestUniqueid") == "chan-1", "Dest fields only"
    trunk = next(m for m in events if header(m, "Event") == "DialBegin" and header(m, "DestChannel", "").startswith("PJSIP/trunk-"))
    assert header(trunk, "Uniqueid") == "chan-1" and header(trunk, "DestExten") == "84957894561"


@pytest.mark.parametrize(
    ("leg", "outcome", "reason"),
    [("ExtensionOutcome", "no_answer", "3"), ("ExtensionOutcome", "busy", "5"), ("ExtensionOutcome", "failed", "0")],
)
async def test_an_operator_leg_that_fails_ends_with_asterisks_reason(client, leg, outcome, reason):
    client.send(("Action", "SimOutcome"), ("ActionID", "set"), ("Exten", "84950000001"), (leg, outcome))
    assert header(await client.response("set"), "Response") == "Success"
    originate(client, "o2", "84950000001")
    seen = await client.until(originate_response("o2"))
    result = seen[-1]
    assert (header(result, "Response"), header(result, "Reason")) == ("Failure", reason)
    # pbx.c returns no channel for a failed dial, so Asterisk reports the channel as requested.
    assert (header(result, "Channel"), header(result, "Uniqueid")) == ("Local/100@from-internal", "<unknown>")
    if outcome == "failed":
        assert not [m for m in seen if header(m, "Event") == "Newchannel"]


@pytest.mark.parametrize(("outcome", "status"), [("busy", "BUSY"), ("no_answer", "NOANSWER")])
async def test_an_outside_number_that_does_not_answer_ends_its_dial_accordingly(client, outcome, status):
    client.send(Action="SimOutcome", ActionID="set", Exten="84950000002", Outcome=outcome)
    await client.response("set")
    originate(client, "o3", "84950000002", ChannelId="chan-3")
    assert header((await client.until(originate_response("o3")))[-1], "Reason") == "4"
    await client.until(call_ended("chan-3", 4))
    events = of_call(client.seen, "chan-3")
    trunk_end = next(m for m in events if header(m, "Event") == "DialEnd" and header(m, "DestChannel", "").startswith("PJSIP/trunk-"))
    assert header(trunk_end, "DialStatus") == status


async def test_originate_errors_and_a_synchronous_originate_answer_like_asterisk(client):
    client.send(Action="Originate", ActionID="e", Channel="Local/100@from-internal", Exten="1234")
    assert header(await client.response("e"), "Message") == "Originate with 'Exten' requires 'Context' and 'Priority'"
    client.send(Action="Originate", ActionID="s", Channel="Local/100@from-internal", Exten="84950000003", Context="from-internal", Priority="1")
    assert await client.response("s") == [("Response", "Success"), ("ActionID", "s"), ("Message", "Originate successfully queued")]
    client.send(Action="SimOutcome", ActionID="set", Exten="84950000004", ExtensionOutcome="busy")
    await client.response("set")
    client.send(Action="Originate", ActionID="f", Channel="Local/100@from-internal", Exten="84950000004", Context="from-internal", Priority="1")
    assert header(await client.response("f"), "Message") == "Originate failed"
    assert not [m for m in client.seen if header(m, "Event") == "OriginateResponse"], "none for a synchronous originate"


# -- channel actions ---------------------------------------------------------------------------


async def test_hangup_ends_the_named_channel_first_and_core_show_channels_lists_live_ones(client, sim):
    client.send(Action="SimCall", ActionID="c", Extensions="100", Ring="0.1", Talk="500")
    linkedid = header(await client.response("c"), "Linkedid")
    await client.until(lambda m: header(m, "Event") == "BridgeEnter" and header(m, "BridgeNumChannels") == "2")
    client.send(Action="CoreShowChannels", ActionID="list")
    listed = await client.until(lambda m: header(m, "Event") == "CoreShowChannelsComplete")
    listed = [m for m in listed if header(m, "ActionID") == "list"]
    assert listed[0] == [("Response", "Success"), ("ActionID", "list"), ("EventList", "start"), ("Message", "Channels will follow")]
    items = [m for m in listed if header(m, "Event") == "CoreShowChannel"]
    assert len(items) == 2 and all(header(m, "ActionID") == "list" for m in items)
    assert listed[-1] == [("Event", "CoreShowChannelsComplete"), ("ActionID", "list"), ("EventList", "Complete"), ("ListItems", "2")]
    phone = next(header(m, "Channel") for m in items if header(m, "Channel", "").startswith("PJSIP/100-"))
    client.send(Action="Hangup", ActionID="h", Channel=phone)
    assert header(await client.response("h"), "Message") == "Channel Hungup"
    await client.until(call_ended(linkedid, 2))
    events = of_call(client.seen, linkedid)
    hangups = [header(m, "Channel") for m in events if header(m, "Event") == "Hangup"]
    assert hangups[0] == phone
    client.send(Action="Hangup", ActionID="gone", Channel=phone)
    assert await client.response("gone") == [("Response", "Error"), ("ActionID", "gone"), ("Message", "No such channel")]


async def test_sim_drop_closes_every_other_session_and_drop_connections_closes_all(sim, client):
    other = await Client.connect(sim)
    await other.login()
    client.send(Action="SimDrop", ActionID="d")
    assert header(await client.response("d"), "Response") == "Success"
    assert await other.is_closed()
    other.close()
    client.send(Action="Ping", ActionID="p")
    assert header(await client.response("p"), "Ping") == "Pong"
    await sim.drop_connections()
    assert await client.is_closed()


async def test_injected_raw_bytes_reach_logged_in_sessions_untouched(sim, client):
    stranger = await Client.connect(sim)
    sim.inject_raw(b"garbage without colon\r\n\r\n")
    raw = await client.raw_until(b"garbage without colon\r\n\r\n")
    assert raw.endswith(b"Status: Fully Booted\r\n\r\ngarbage without colon\r\n\r\n")
    stranger.send(Action="Ping", ActionID="p")
    assert header(await stranger.next(), "Message") == "Permission denied", "nothing injected before login"
    stranger.close()


# -- third-party clients and the command line --------------------------------------------------


async def test_panoramisk_logs_in_receives_a_calls_events_and_originates(sim):
    from panoramisk import Manager

    manager = Manager(host="127.0.0.1", port=sim.port, username="admin", secret="admin", loop=asyncio.get_running_loop())
    events: list = []
    manager.register_event("*", lambda _, event: events.append(event))
    await manager.connect()
    for _ in range(100):
        if manager.authenticated:
            break
        await asyncio.sleep(0.02)
    assert manager.authenticated
    reply = await manager.send_action({"Action": "SimCall", "Extensions": "100", "Ring": "0.1", "Talk": "0.1"})
    linkedid = reply.linkedid
    for _ in range(200):
        if any(e.event == "Hangup" and e.linkedid == linkedid for e in events):
            break
        await asyncio.sleep(0.02)
    assert {"Newchannel", "DialBegin", "BridgeEnter", "Hangup"} <= {e.event for e in events if e.linkedid == linkedid}
    answers = await asyncio.wait_for(manager.send_action({
        "Action": "Originate", "Channel": "Local/100@from-internal", "Exten": "84957894561",
        "Context": "from-internal", "Priority": "1", "Async": "true", "CallerID": "Client <84957894561>",
    }), 5)
    assert answers[0].message == "Originate successfully queued"
    assert answers[-1].event == "OriginateResponse" and answers[-1].reason == "4"
    manager.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pyst2's own setDaemon/isSet
async def test_stock_pyst2_connects_logs_in_and_gets_a_pong(sim):
    def session() -> str:
        from asterisk.manager import Manager

        manager = Manager()
        manager.connect("127.0.0.1", sim.port)
        manager.login("admin", "admin")
        pong = manager.ping().get_header("Ping")
        manager.close()
        return pong

    assert await asyncio.wait_for(asyncio.to_thread(session), 10) == "Pong"


async def test_the_command_line_plays_a_call_on_a_running_simulator(client, sim, capsys):
    status = await asyncio.to_thread(
        cli_main, ["call", "inbound_missed", "--caller", "74950001122", "--extensions", "100,101", "--ring", "0.1", "--port", str(sim.port)],
    )
    assert status == 0
    linkedid = re.search(r"Linkedid: (\S+)", capsys.readouterr().out).group(1)  # type: ignore[union-attr]
    await client.until(call_ended(linkedid, 3))
    assert header(of_call(client.seen, linkedid)[0], "CallerIDNum") == "74950001122"


# -- ring groups, queues, Local chains, named endpoints ----------------------------------------


def dial_ends(events: list[Message]) -> dict[str, str]:
    """DialStatus per dialled channel, by its name without the sequence number."""
    return {(header(m, "DestChannel") or "").rsplit("-", 1)[0]: header(m, "DialStatus") or "" for m in events if header(m, "Event") == "DialEnd"}


def position(events: list[Message], event: str, **headers: str) -> int:
    return next(i for i, m in enumerate(events) if header(m, "Event") == event and all(header(m, k) == v for k, v in headers.items()))


async def until_hung_up(client: Client, linkedid: str, hangups: int) -> None:
    """Read on until `hangups` Hangups of the call have been seen, counting those read already."""
    while sum(header(m, "Event") == "Hangup" and header(m, "Linkedid") == linkedid for m in client.seen) < hangups:
        await client.next()


async def play(client: Client, action_id: str, hangups: int, **headers: str) -> list[Message]:
    client.send(Action="SimCall", ActionID=action_id, **headers)
    response = await client.response(action_id)
    linkedid = header(response, "Linkedid")
    assert header(response, "Message") == "Call started" and linkedid, response
    await client.until(call_ended(linkedid, hangups))
    events = of_call(client.seen, linkedid)
    assert_sequence_rules(events)
    return events


async def test_a_ring_group_rings_every_member_through_local_pairs_and_the_first_free_one_answers(client, sim, tmp_path):
    # trunk, group ;1/;2, three member ;1/;2 pairs and their phones: 12 channels
    events = await play(client, "rg", 12, Scenario="inbound_ring_group", Extensions="100,101,102", Busy="100", Ring="0.2", Talk="0.2")

    assert dial_ends(events) == {
        "Local/600@ext-group": "ANSWER",
        "Local/100@from-internal": "BUSY", "PJSIP/100": "BUSY",
        "Local/101@from-internal": "ANSWER", "PJSIP/101": "ANSWER",
        "Local/102@from-internal": "CANCEL", "PJSIP/102": "CANCEL",
    }
    assert sum(header(m, "Event") == "LocalBridge" for m in events) == 4
    group_dial = next(m for m in events if header(m, "Event") == "DialBegin" and header(m, "Channel", "").startswith("PJSIP/trunk-"))
    assert header(group_dial, "DestChannel", "").startswith("Local/600@ext-group-") and header(group_dial, "DestChannel", "").endswith(";1")
    member_dials = [m for m in events if header(m, "Event") == "DialBegin" and header(m, "Channel", "").startswith("Local/600@ext-group-")]
    assert [header(m, "DialString") for m in member_dials] == [f"{ext}@from-internal/n" for ext in ("100", "101", "102")]
    assert {header(m, "Cause") for m in events if header(m, "Event") == "Hangup" and "100" in (header(m, "Channel") or "")} == {"17"}
    rows = list(csv.reader((tmp_path / "Master.csv").read_text().splitlines()))
    pairs = {(row[5].rsplit("-", 1)[0], row[6].rsplit("-", 1)[0]): row[14] for row in rows}
    assert pairs == {
        ("PJSIP/trunk", "Local/600@ext-group"): "ANSWERED",
        ("Local/600@ext-group", "Local/100@from-internal"): "BUSY", ("Local/100@from-internal", "PJSIP/100"): "BUSY",
        ("Local/600@ext-group", "Local/101@from-internal"): "ANSWERED", ("Local/101@from-internal", "PJSIP/101"): "ANSWERED",
        ("Local/600@ext-group", "Local/102@from-internal"): "NO ANSWER", ("Local/102@from-internal", "PJSIP/102"): "NO ANSWER",
    }
    assert {row[19] for row in rows} == {header(events[0], "Linkedid")}


async def test_a_ring_group_whose_members_are_all_busy_ends_busy(client):
    events = await play(client, "rg", 9, Scenario="inbound_ring_group", Extensions="100,101", Busy="100,101", Ring="0.2")

    assert set(dial_ends(events).values()) == {"BUSY"}
    assert "BridgeEnter" not in [header(m, "Event") for m in events]
    trunk_hangup = next(m for m in events if header(m, "Event") == "Hangup" and header(m, "Channel", "").startswith("PJSIP/trunk-"))
    assert header(trunk_hangup, "Cause") == "17"


async def test_a_queue_call_sends_app_queues_events_around_the_dials_to_its_members(client, tmp_path):
    events = await play(client, "q", 10, Scenario="inbound_queue", Extensions="100,101,102", Busy="100", Ring="0.2", Talk="0.2")

    agent = [(header(m, "Event"), header(m, "DestChannel", "").rsplit("-", 1)[0]) for m in events if header(m, "Privilege") == "agent,all"]
    assert agent == [
        ("QueueCallerJoin", ""),
        ("AgentCalled", "Local/100@from-queue"), ("AgentCalled", "Local/101@from-queue"), ("AgentCalled", "Local/102@from-queue"),
        ("AgentRingNoAnswer", "Local/100@from-queue"),
        ("QueueCallerLeave", ""), ("AgentConnect", "Local/101@from-queue"), ("AgentComplete", "Local/101@from-queue"),
    ]
    assert dial_ends(events) == {
        "Local/100@from-queue": "BUSY", "PJSIP/100": "BUSY", "Local/101@from-queue": "ANSWER", "PJSIP/101": "ANSWER",
        "Local/102@from-queue": "CANCEL", "PJSIP/102": "CANCEL",
    }
    called = position(events, "AgentCalled", Queue="support", Interface="Local/101@from-queue/n")
    dialled = position(events, "DialBegin", DialString="Local/101@from-queue/n")
    answered = position(events, "DialEnd", DialStatus="ANSWER", Channel=header(events[0], "Channel") or "")
    assert called < dialled < answered < position(events, "QueueCallerLeave") < position(events, "AgentConnect")
    assert position(events, "AgentConnect") < position(events, "BridgeEnter", Channel=header(events[0], "Channel") or "")
    assert position(events, "AgentComplete", Reason="caller") < position(events, "Hangup", Channel=header(events[0], "Channel") or "")
    trunk_up = position(events, "Newstate", Channel=header(events[0], "Channel") or "", ChannelState="6")
    assert trunk_up < position(events, "QueueCallerJoin"), "the caller is answered before it waits in the queue"
    rows = list(csv.reader((tmp_path / "Master.csv").read_text().splitlines()))
    assert sorted((row[7], row[6].rsplit("-", 1)[0]) for row in rows if row[5].startswith("PJSIP/trunk-")) == [
        ("Queue", f"Local/{ext}@from-queue") for ext in ("100", "101", "102")]


async def test_a_caller_who_gives_up_in_the_queue_abandons_it_and_every_member_is_cancelled(client, sim):
    client.send(Action="SimCall", ActionID="q", Scenario="inbound_queue", Extensions="100,101", Ring="500")
    linkedid = header(await client.response("q"), "Linkedid")
    await client.until(lambda m: header(m, "Event") == "Newstate" and header(m, "Channel", "").startswith("PJSIP/101-") and header(m, "ChannelState") == "5")
    trunk = next(chan.name for chan in sim.pbx.channels.values() if chan.uniqueid == linkedid)
    client.send(Action="Hangup", ActionID="h", Channel=trunk)
    await client.until(call_ended(linkedid, 7))
    events = of_call(client.seen, linkedid)
    assert_sequence_rules(events)
    assert set(dial_ends(events).values()) == {"CANCEL"}
    assert position(events, "QueueCallerAbandon") < position(events, "QueueCallerLeave") < position(events, "Hangup", Channel=trunk)


async def test_endpoints_named_per_call_are_rung_by_their_names(client):
    events = await play(
        client, "named", 4, Extensions="107,104,105", Ring="0.1", Talk="0.1",
        Endpoints="107=SIP/office-front, 104=SIP/4411-7,105=SIP/310020005",
    )

    phones = [header(m, "Channel") or "" for m in events if header(m, "Event") == "Newchannel"][1:]
    assert [re.fullmatch(r"(.+)-[0-9a-f]{8}", name).group(1) for name in phones] == ["SIP/office-front", "SIP/4411-7", "SIP/310020005"]  # type: ignore[union-attr]
    assert header(events[2], "AppData") == "SIP/office-front&SIP/4411-7&SIP/310020005,30"
    assert [header(m, "DialString") for m in events if header(m, "Event") == "DialBegin"] == ["office-front", "4411-7", "310020005"]
    assert dial_ends(events)["SIP/office-front"] == "ANSWER"


async def test_endpoints_are_checked_and_the_simulators_own_apply_to_every_call(tmp_path):
    simulator = Simulator(port=0, time_scale=0.01, endpoints={"106": "PJSIP/hg63xv"})
    await simulator.start()
    try:
        connection = await Client.connect(simulator)
        await connection.login()
        connection.send(Action="SimCall", ActionID="bad", Endpoints="106:PJSIP/hg63xv")
        assert await connection.response("bad") == [("Response", "Error"), ("ActionID", "bad"), ("Message", "Invalid Endpoints: 106:PJSIP/hg63xv")]
        events = await play(connection, "queue", 4, Scenario="inbound_queue", Extensions="106", Ring="0.1", Talk="0.1")
        assert [header(m, "DestChannel", "")[:13] for m in events if header(m, "Event") == "DialBegin"][1] == "PJSIP/hg63xv-"
        connection.close()
    finally:
        await simulator.stop()


async def test_an_operators_desk_phone_dials_out_on_the_trunk(client):
    events = await play(
        client, "out", 2, Scenario="outbound_answered", Extensions="106", Endpoints="106=PJSIP/hg63xv", Caller="84951234567",
        Ring="0.1", Talk="0.1",
    )

    assert header(events[0], "Channel", "").startswith("PJSIP/hg63xv-") and header(events[0], "Exten") == "84951234567"
    dial = next(m for m in events if header(m, "Event") == "DialBegin")
    assert (header(dial, "Channel"), header(dial, "DialString")) == (header(events[0], "Channel"), "trunk/84951234567")
    assert dial_ends(events) == {"PJSIP/trunk": "ANSWER"}


async def test_a_click_to_dial_through_local_chains_rings_the_operator_then_the_number(client, tmp_path):
    client.send(
        Action="Originate", ActionID="chain", Channel="Local/100@click-to-call", Exten="84957894561", Context="from-internal",
        Priority="1", Async="true", CallerID='"Ivanov" <84951112233>', Timeout="3000", ChannelId="chain-1",
    )
    result = (await client.until(originate_response("chain")))[-1]
    assert (header(result, "Response"), header(result, "Reason"), header(result, "Uniqueid")) == ("Success", "4", "chain-1")
    assert re.fullmatch(r"Local/100@click-to-call-[0-9a-f]{8};1", header(result, "Channel") or "")
    await until_hung_up(client, "chain-1", 8)
    events = of_call(client.seen, "chain-1")
    assert_sequence_rules([m for m in events if header(m, "Event") != "OriginateResponse"])

    first = next(m for m in events if header(m, "Event") == "DialBegin")
    assert header(first, "Channel") is None and header(first, "DestUniqueid") == "chain-1", "Dest fields only"
    hops = [(header(m, "Channel", "").rsplit("-", 1)[0], header(m, "DestChannel", "").rsplit("-", 1)[0]) for m in events if header(m, "Event") == "DialBegin"]
    assert hops == [
        ("", "Local/100@click-to-call"),
        ("Local/100@click-to-call", "Local/100@from-internal"), ("Local/100@from-internal", "PJSIP/100"),
        ("Local/100@click-to-call", "Local/84957894561@outbound"), ("Local/84957894561@outbound", "PJSIP/trunk"),
    ]
    assert [header(m, "Channel", "")[-2:] for m in events if header(m, "Event") == "DialBegin"][1:] == [";2", ";2", ";1", ";2"]
    assert set(dial_ends(events).values()) == {"ANSWER"}
    assert position(events, "DialEnd", DestChannel=header(result, "Channel") or "") < position(events, "DialBegin", DialString="84957894561@outbound")
    rows = list(csv.reader((tmp_path / "Master.csv").read_text().splitlines()))
    assert sorted((row[5].rsplit("-", 1)[0], row[6].rsplit("-", 1)[0], row[14]) for row in rows) == sorted([
        ("Local/100@click-to-call", "Local/100@from-internal", "ANSWERED"), ("Local/100@from-internal", "PJSIP/100", "ANSWERED"),
        ("Local/100@click-to-call", "Local/84957894561@outbound", "ANSWERED"), ("Local/84957894561@outbound", "PJSIP/trunk", "ANSWERED"),
    ])


@pytest.mark.parametrize(("leg", "outcome", "reason", "hangups"), [
    ("ExtensionOutcome", "busy", "5", 5), ("ExtensionOutcome", "no_answer", "3", 5), ("Outcome", "busy", "4", 8),
])
async def test_a_click_to_dial_through_local_chains_ends_each_way_a_plain_one_does(client, leg, outcome, reason, hangups):
    client.send(("Action", "SimOutcome"), ("ActionID", "set"), ("Exten", "84950000009"), (leg, outcome), ("Ring", "0.2"))
    await client.response("set")
    client.send(
        Action="Originate", ActionID="c2", Channel="Local/100@click-to-call", Exten="84950000009", Context="from-internal",
        Priority="1", Async="true", Timeout="1000", ChannelId="chain-2",
    )
    assert header((await client.until(originate_response("c2")))[-1], "Reason") == reason
    await until_hung_up(client, "chain-2", hangups)
    events = of_call(client.seen, "chain-2")
    assert_sequence_rules([m for m in events if header(m, "Event") != "OriginateResponse"])
    statuses = dial_ends(events)
    expected = {"busy": "BUSY", "no_answer": "NOANSWER"}[outcome]
    far_end = "PJSIP/100" if leg == "ExtensionOutcome" else "PJSIP/trunk"
    assert expected in (statuses[far_end], statuses["Local/100@click-to-call"])
