import logging
import socket
import threading

import pytest

from telephony.ami import AMIAuthError, AMIConfig, AMIConnectError, AMIConnection, AMITimeout, connect_with_retry, dial_number, header_value, shared_connection
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
