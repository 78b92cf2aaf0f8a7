import io
import logging
import socket
import threading

import pytest
from django.conf import settings

from telephony.ami import (
    MAX_FRAME, MAX_FRAME_LINES, MAX_LINE, MAX_VALUE, AMIAuthError, AMIConfig, AMIConnectError, AMIConnection, AMITimeout, Framer, Message,
    connect_with_retry, dial_number, header_value, shared_connection,
)
from tests.helpers import wait_for
from tests.telephony.conftest import running_simulator


def connected(config, **callbacks) -> AMIConnection:
    connection = AMIConnection(config, **callbacks)
    connection.connect()
    connection.login()
    return connection


def test_it_logs_in_pings_and_logs_off(simulator):
    connection = connected(simulator.config())
    assert (connection.title, connection.version) == ("Asterisk Call Manager", "7.0.3")
    assert connection.ping().get_header("Ping") == "Pong"
    connection.close()
    assert not connection.connected()


def test_events_reach_the_callback_with_their_headers(simulator):
    events = []
    connection = connected(simulator.config(), on_event=events.append)
    linkedid = simulator.call("inbound_answered", caller="74957894561", extensions=["100"])
    wait_for(lambda: any(e.get("Event") == "Hangup" and e.get("Linkedid") == linkedid for e in events[-3:]))
    names = [e["Event"] for e in events if e.get("Linkedid") == linkedid]
    assert names[0] == "Newchannel" and "DialBegin" in names and "BridgeEnter" in names
    connection.close()


def test_responses_are_matched_by_action_id_even_when_sent_from_many_threads(simulator):
    connection = connected(simulator.config())
    results = []

    def ping_many():
        for _ in range(20):
            results.append(connection.ping().get_header("Ping"))

    threads = [threading.Thread(target=ping_many) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["Pong"] * 100
    connection.close()


def test_bad_credentials_raise_a_clear_error(simulator):
    with pytest.raises(AMIAuthError, match=r"127\.0\.0\.1:\d+: login refused \(Authentication failed\)"):
        connected(simulator.config(secret="wrong"))


def test_an_unreachable_pbx_raises_a_clear_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(AMIConnectError, match=rf"127\.0\.0\.1:{port}: .*refused"):
        connected(AMIConfig("127.0.0.1", port, "u", "s", timeout=1))


def test_retrying_logs_one_line_per_attempt_and_no_traceback(simulator, caplog):
    stop = threading.Event()
    threading.Timer(2.5, stop.set).start()
    with caplog.at_level(logging.ERROR, logger="telephony.ami"):
        assert connect_with_retry(simulator.config(secret="wrong"), stop, first_delay=0.2, max_delay=0.4) is None
    lines = [record for record in caplog.records if record.name == "telephony.ami"]
    assert len(lines) >= 3
    for record in lines:
        assert record.exc_info is None
        assert "login refused" in record.getMessage() and "next attempt in" in record.getMessage()


def test_a_value_with_cr_lf_cannot_inject_a_header(simulator):
    connection = connected(simulator.config())
    response = connection.send_action({"Action": "SimCall", "Scenario": "inbound_answered", "Caller": "74957894561\r\nAction: Logoff\r\n"})
    assert response.get_header("Response") == "Success", "still one SimCall, not a Logoff"
    assert connection.ping().get_header("Ping") == "Pong"
    with pytest.raises(ValueError):
        connection.send_action({"Action": "Ping", "Bad\r\nKey": "x"})
    connection.close()


def test_values_and_numbers_are_sanitised():
    assert header_value("a\r\nb\x00c") == "a b c"
    assert dial_number("+7 (495) 789-45-61\r\nAction: Logoff") == "+74957894561"
    assert dial_number("8 495 789 45 61 доб. 12") == "8495789456112"
    with pytest.raises(ValueError):
        dial_number("\r\n")


def test_chan_variable_headers_do_not_stop_the_reader(tmp_path):
    with running_simulator(time_scale=0.01, chanvariables=["CDR(userfield)", "CHANNEL(language)"]) as simulator:
        events = []
        connection = connected(simulator.config(), on_event=events.append)
        linkedid = simulator.call("inbound_answered")
        wait_for(lambda: any(e.get("Event") == "Hangup" and e.get("Linkedid") == linkedid for e in events[-3:]))
        with_variables = [e for e in events if "ChanVariable" in e]
        assert with_variables and isinstance(with_variables[0]["ChanVariable"], dict)
        assert connection.ping().get_header("Ping") == "Pong"
        connection.close()


def test_garbage_and_an_oversized_line_are_skipped(simulator, caplog):
    events = []
    connection = connected(simulator.config(), on_event=events.append)
    simulator.inject_raw(b"this is not a header\r\n\xff\xfe junk\r\n\r\n" + b"X" * 70_000 + b"\r\n\r\n")
    linkedid = simulator.call("inbound_answered")
    wait_for(lambda: any(e.get("Event") == "Hangup" and e.get("Linkedid") == linkedid for e in events[-3:]))
    assert connection.ping().get_header("Ping") == "Pong"
    assert any("longer than" in record.getMessage() for record in caplog.records)
    connection.close()


def test_a_failing_callback_does_not_stop_the_others(simulator):
    seen = []

    def broken(headers):
        raise RuntimeError("boom")

    connection = connected(simulator.config(), on_event=broken)
    connection.add_event_callback(seen.append)
    linkedid = simulator.call("inbound_answered")
    wait_for(lambda: any(e.get("Event") == "Hangup" and e.get("Linkedid") == linkedid for e in seen[-3:]))
    connection.close()


def test_a_dropped_connection_is_noticed_and_pending_actions_fail(simulator):
    closed = threading.Event()
    connection = connected(simulator.config(), on_close=closed.set)
    simulator.drop_connections()
    assert closed.wait(5)
    with pytest.raises(AMIConnectError):
        connection.ping()


def test_an_action_without_an_answer_times_out(simulator):
    connection = connected(simulator.config(timeout=0.5))
    # SimLoad answers only when its calls have started: 2 s here, longer than the timeout.
    with pytest.raises(AMITimeout):
        connection.send_action({"Action": "SimLoad", "Rate": "1", "Seconds": "2"})
    connection.close()


def test_the_keep_alive_drops_a_connection_that_stopped_answering(simulator):
    closed = threading.Event()
    connection = connected(simulator.config(ping_interval=0.2, timeout=0.3), on_close=closed.set)

    def block_the_session():
        with pytest.raises(AMIConnectError):  # the keep-alive drops the connection under it
            connection.send_action({"Action": "SimLoad", "Rate": "1", "Seconds": "3"}, timeout=5)

    threading.Thread(target=block_the_session, daemon=True).start()
    assert closed.wait(3), "the ping went unanswered and the connection was dropped"


def test_an_oversized_message_is_dropped_whole_and_the_next_one_read(simulator, caplog):
    events = []
    connection = connected(simulator.config(), on_event=events.append)
    huge = b"Event: Newchannel\r\n" + b"".join(b"X-Filler-%d: %s\r\n" % (n, b"y" * 200) for n in range(3000)) + b"\r\n"
    simulator.inject_raw(huge + b"Event: UserEvent\r\nUserEvent: after\r\n\r\n")
    wait_for(lambda: any(e.get("UserEvent") == "after" for e in events))
    assert not any(e.get("Event") == "Newchannel" for e in events)
    assert "dropped a message over" in caplog.text
    connection.close()


def test_every_value_is_bounded_and_loses_its_nul_bytes(simulator):
    events = []
    connection = connected(simulator.config(), on_event=events.append)
    simulator.inject_raw(b"Event: UserEvent\r\nLinkedid: 17\x0033.1\r\nLong: " + b"z" * 5000 + b"\r\n\r\n")
    wait_for(lambda: any(e.get("Event") == "UserEvent" for e in events))
    [event] = [e for e in events if e.get("Event") == "UserEvent"]
    assert event["Linkedid"] == "1733.1" and len(event["Long"]) == 1024
    connection.close()


def test_the_pbx_tells_which_channels_are_alive(simulator):
    connection = connected(simulator.config())
    assert connection.live_channels() == set()
    linkedid = simulator.call("inbound_answered", ring=50, wait=False)
    wait_for(lambda: linkedid in simulator.simulator.engine.calls)
    live = connection.live_channels()
    assert linkedid in live and len(live) >= 2, "the trunk's and the phone's Uniqueids, with their Linkedid"
    connection.close()


def originate(connection, channel_id: str):
    return connection.send_action({
        "Action": "Originate", "Channel": "Local/100@from-internal", "Context": "from-internal",
        "Exten": "84951234567", "Priority": "1", "Async": "true", "ChannelId": channel_id,
    })


def test_the_shared_connection_serves_many_originates_on_one_login_and_is_made_anew_once_dropped(simulator):
    actions = []
    simulator.simulator.on_action = lambda request: actions.append(request.action)
    with shared_connection(simulator.config()) as first:
        originate(first, "chan-1")
    with shared_connection(simulator.config()) as second:
        originate(second, "chan-2")
    assert second is first and actions == ["Login", "Events", "Originate", "Originate"]

    simulator.drop_connections()
    wait_for(lambda: not first.connected())
    with shared_connection(simulator.config()) as third:
        assert originate(third, "chan-3").get_header("Response") == "Success"
    assert third is not first and actions[4:] == ["Login", "Events", "Originate"]


def test_an_ami_error_in_the_block_closes_the_shared_connection_and_the_next_use_logs_in_again(simulator):
    with pytest.raises(AMITimeout):
        with shared_connection(simulator.config()) as first:
            first.send_action({"Action": "SimLoad", "Rate": "1", "Seconds": "2"}, timeout=0.2)
    assert not first.connected()
    with shared_connection(simulator.config()) as second:
        assert second is not first and second.ping().get_header("Ping") == "Pong"


def test_the_shared_connection_hears_no_events(simulator):
    with shared_connection(simulator.config()) as connection:
        events = []
        connection.add_event_callback(events.append)
        simulator.call("inbound_answered")
        connection.ping()
    assert events == []


# -- the framer: one split per read must cut messages exactly as reading line by line did ------------


def line_by_line(stream: bytes) -> list[list[str]]:
    """The messages as the former line-by-line reader cut them: the behaviour the framer keeps."""
    messages, lines, size, oversized = [], [], 0, False
    reader = io.BufferedReader(io.BytesIO(stream))
    while raw := reader.readline(MAX_LINE):
        if not raw.endswith(b"\n"):
            if len(raw) < MAX_LINE:
                break  # the stream ends inside a line
            while raw and not raw.endswith(b"\n"):  # a line too long: skipped
                raw = reader.readline(MAX_LINE)
            continue
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if lines:
                messages.append(lines)
            lines, size, oversized = [], 0, False
            continue
        size += len(raw)
        if size > MAX_FRAME or len(lines) >= MAX_FRAME_LINES:
            lines, oversized = [], True
        elif not oversized:
            lines.append(line)
    return messages


def framed(*chunks: bytes) -> list[tuple[list[str], dict | None]]:
    framer = Framer("test")
    return [item for chunk in chunks for item in framer.feed(chunk)]


def event(*lines: str, eol: str = "\r\n") -> bytes:
    return (eol.join(lines) + eol + eol).encode()


SNAPSHOT = ("Channel: PJSIP/100-0000002a", "ChannelState: 6", "CallerIDNum: 84957894561", "CallerIDName: Иванов И.", "AccountCode: ",
            "Uniqueid: 1732711200.42", "Linkedid: 1732711200.42")
PLAIN = b"".join([
    event("Event: Newchannel", "Privilege: call,all", *SNAPSHOT),
    b"\r\n\r\n",  # empty lines between messages
    event("Response: Follows", "Privilege: Command", "ActionID: a-1", "Channel              Location", "--END COMMAND--"),
    event("Event: VarSet", "Variable: MIXMONITOR_FILENAME", "Value: /var/spool/asterisk/monitor/1.wav", "Value: /last/one/wins.wav"),
    event("Event: Hangup", "ChanVariable: CDR(userfield)=vip", "ChanVariable: CHANNEL(language)=ru", *SNAPSHOT),
    event("Event: UserEvent", "Padded:  two spaces", "Trailing: space "),
    event("Event: UserEvent", "Tight:colon", "Odd-Name_1: ok"),
    event("Event: UserEvent", "Not a name: x", "After: y"),  # Message stops at a line that is no header
    event("Event: UserEvent", "Long: " + "z" * (MAX_VALUE + 10)),
    event("Event: UserEvent", *(f"X-Header-{n}: {'v' * 40}" for n in range(60))),  # longer than the fast path takes whole
    event("this is not a header", "Event: Ignored"),
    event("Event: Newstate", *SNAPSHOT),
])
MIXED = b"".join([
    event("Event: Newchannel", "Privilege: call,all", *SNAPSHOT, eol="\n"),
    b"Event: Newstate\nChannel: PJSIP/100-0000002a\r\nChannelState: 5\r\r\n\r\n",
    b"Event: UserEvent\r\nLinkedid: 17\x0033.1\r\nBytes: \xff\xfe\r\n\r\n",
    b"\n\r\r\n",  # lines of only CRs are empty lines too
    event("Event: Hangup", *SNAPSHOT),
])


def delivered(items: list) -> list[tuple[list[str], dict]]:
    """Each message's lines and its headers, from the fast path or from Message (which path may differ by read)."""
    return [(lines, Message(lines).headers if headers is None else headers) for lines, headers in items]


def assert_same_as_line_by_line(stream: bytes, items: list) -> None:
    assert [lines for lines, _ in items] == line_by_line(stream)
    for lines, headers in items:
        if headers is not None:  # built on the fast path: exactly what Message makes of the same lines
            assert headers == Message(lines).headers


@pytest.mark.parametrize("stream", [PLAIN, MIXED], ids=["crlf", "lf-crlf-mixed"])
def test_a_message_split_across_two_reads_at_any_byte_comes_out_the_same(stream):
    assert_same_as_line_by_line(stream, framed(stream))
    whole = delivered(framed(stream))
    for cut in range(len(stream) + 1):
        assert delivered(framed(stream[:cut], stream[cut:])) == whole, f"cut at byte {cut}"
    assert delivered(framed(*(stream[i:i + 1] for i in range(len(stream))))) == whole


def test_ordinary_events_take_the_fast_path_and_the_odd_ones_go_through_message():
    by_event = {}
    for lines, headers in framed(PLAIN):
        by_event.setdefault(Message(lines).headers.get("Event") or Message(lines).headers.get("Response"), []).append(headers)
    assert by_event["Newchannel"][0]["CallerIDName"] == "Иванов И." and by_event["Newchannel"][0]["AccountCode"] == ""
    assert by_event["Newstate"][0] is not None and by_event["VarSet"][0]["Value"] == "/last/one/wins.wav"
    assert by_event["Follows"] == [None] and by_event["Hangup"] == [None] and by_event["Generated Header"] == [None]
    assert by_event["UserEvent"] == [None] * 5, "spaces to strip, no space after the colon, no header name, a value to cut, a long message"
    [(padded, _), (tight, _)] = framed(event("Event: UserEvent", "Padded:  two spaces", "Trailing: space "), event("Event: UserEvent", "Tight:colon"))
    assert Message(padded).headers == {"Event": "UserEvent", "Padded": "two spaces", "Trailing": "space"}
    assert Message(tight).headers == {"Event": "UserEvent", "Tight": "colon"}


def test_chan_variables_nul_bytes_and_long_values_are_parsed_as_before():
    items = framed(PLAIN + MIXED)
    parsed = [Message(lines).headers for lines, _ in items]
    hangup = next(headers for headers in parsed if headers.get("Event") == "Hangup")
    assert hangup["ChanVariable"] == {"CDR(userfield)": "vip", "CHANNEL(language)": "ru"}
    assert any(headers.get("Linkedid") == "1733.1" for headers in parsed)
    assert any(len(headers.get("Long", "")) == MAX_VALUE for headers in parsed)


def test_every_recorded_stream_is_cut_as_line_by_line_reading_did():
    for fixture in sorted((settings.BASE_DIR / "fixtures" / "ami").glob("*.txt")):
        stream = fixture.read_bytes().split(b"\n", 1)[1]  # the greeting is read by connect()
        items = framed(*(stream[i:i + 4096] for i in range(0, len(stream), 4096)))
        assert_same_as_line_by_line(stream, items)


@pytest.mark.parametrize("read_size", [1000, 4096, 65_536, 10**7])
def test_a_message_over_the_limit_is_logged_and_skipped_and_the_next_one_delivered(read_size, caplog):
    huge = event("Event: Newchannel", *(f"X-Filler-{n}: {'y' * 200}" for n in range(1500)))
    stream = huge + event("Event: UserEvent", "UserEvent: after")
    framer, items, held = Framer("test"), [], 0
    for start in range(0, len(stream), read_size):
        items += framer.feed(stream[start:start + read_size])
        held = max(held, len(framer._pending))
    assert [headers for _, headers in items] == [{"Event": "UserEvent", "UserEvent": "after"}]
    assert caplog.text.count("dropped a message over") == 1
    assert held <= MAX_LINE + min(read_size, len(stream)), "never the whole message in memory"


def test_a_line_over_the_limit_is_skipped_and_its_message_kept(caplog):
    stream = b"Event: UserEvent\r\nJunk: " + b"x" * (2 * MAX_LINE) + b"\r\nUserEvent: kept\r\n\r\n"
    for read_size in (5000, MAX_LINE, len(stream)):
        caplog.clear()
        items = framed(*(stream[i:i + read_size] for i in range(0, len(stream), read_size)))
        assert [Message(lines).headers for lines, _ in items] == [{"Event": "UserEvent", "UserEvent": "kept"}]
        assert caplog.text.count("dropped a line longer than") == 1


def test_messages_in_lf_crlf_and_a_mix_arrive_whole_and_a_response_after_them_is_matched(simulator):
    events = []
    connection = connected(simulator.config(), on_event=events.append)
    simulator.inject_raw(MIXED + PLAIN)
    wait_for(lambda: sum(e.get("Event") == "Newstate" for e in events) == 2)
    assert [e["Event"] for e in events if e["Event"] != "FullyBooted"] == ["Newchannel", "Newstate", "UserEvent", "Hangup", "Newchannel", "VarSet", "Hangup", *["UserEvent"] * 5, "Newstate"]
    assert connection.ping().get_header("Ping") == "Pong"
    connection.close()
