"""The simulator's manager.conf permissions (`read_classes`, `write_classes`), as Asterisk applies them."""

import threading

from telephony.ami import AMIConnection
from tests.helpers import wait_for
from tests.telephony.conftest import running_simulator


def logged_in(simulator, events: list | None = None, **login) -> AMIConnection:
    connection = AMIConnection(simulator.config(), on_event=events.append if events is not None else None)
    connection.connect()
    connection.send_action({"Action": "Login", "Username": simulator.simulator.username, "Secret": simulator.simulator.secret, **login})
    return connection


def test_an_action_of_a_class_the_user_may_not_write_is_denied_before_its_headers_are_read():
    with running_simulator(time_scale=0.01, write_classes="reporting") as limited:
        events = []
        ami = logged_in(limited, events)
        full = {"Action": "Originate", "Channel": "Local/100@from-internal", "Context": "from-internal", "Exten": "84951234567", "Priority": "1", "Async": "true"}
        assert ami.send_action(full).get_header("Message") == "Permission denied"
        assert ami.send_action({"Action": "Originate"}).get_header("Message") == "Permission denied"
        assert ami.send_action({"Action": "SimCall"}).get_header("Message") == "Permission denied"
        assert ami.send_action({"Action": "Ping"}).get_header("Response") == "Success", "Ping needs no class"
        assert ami.send_action({"Action": "CoreShowChannels"}, listing=True).get_header("EventList") == "Complete"
        assert not limited.simulator.pbx.channels and not [event for event in events if event.get("Event") == "Newchannel"]
        ami.close()


def test_a_user_who_may_originate_gets_the_originates_own_error_for_a_missing_channel():
    with running_simulator(time_scale=0.01, write_classes="originate") as allowed:
        ami = logged_in(allowed)
        assert ami.send_action({"Action": "Originate"}).get_header("Message") == "Channel not specified"
        assert ami.send_action({"Action": "CoreShowChannels"}, listing=True).get_header("Message") == "Permission denied"
        ami.close()


def test_list_commands_shows_only_what_the_user_may_run():
    with running_simulator(time_scale=0.01, write_classes="reporting") as limited:
        ami = logged_in(limited)
        listing = ami.send_action({"Action": "ListCommands"})
        assert listing.get_header("CoreShowChannels") and listing.get_header("Ping")
        assert listing.get_header("Originate") is None and listing.get_header("SimCall") is None
        ami.close()


def test_events_of_a_class_the_user_may_not_read_never_come_whatever_the_login_asks():
    with running_simulator(time_scale=0.01, read_classes="call", write_classes="originate") as limited:
        events = []
        ami = logged_in(limited, events, Events="on")
        ami.send_action({"Action": "Events", "EventMask": "call,dialplan,system"})
        done = threading.Event()
        ami.add_event_callback(lambda event: event.get("Event") == "Hangup" and done.set())
        linkedid = ami.send_action({"Action": "SimCall", "Scenario": "inbound_answered", "Ring": "0.1", "Talk": "0.1"}).get_header("Linkedid")
        wait_for(lambda: done.is_set() and not limited.simulator.pbx.channels)
        ami.close()

    assert linkedid and any(event.get("Event") == "Newchannel" for event in events)
    assert {event.get("Privilege") for event in events} == {"call,all"}, "no dialplan (Newexten) and no system (FullyBooted)"
