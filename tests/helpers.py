"""Plain helpers shared by the test modules; fixtures live in the conftest files."""

import itertools
import time
from pathlib import Path

from django.utils import timezone

from history.models import Call
from telephony.events import parse_transcript

AMI_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
CDR_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cdr"
_linkedids = itertools.count(1)


def wait_for(condition, timeout: float = 10.0, interval: float = 0.02) -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(interval)


def transcript(name: str) -> list[dict[str, str]]:
    """The messages of a recorded AMI transcript in fixtures/ami/ (`inbound__answered.txt`)."""
    # Binary junk is decoded the way the AMI clients do it: never fatally.
    return parse_transcript((AMI_FIXTURES / name).read_bytes().decode("utf-8", errors="replace"))


def transcript_events(name: str) -> list[dict[str, str]]:
    """The transcript's events, without the action responses around them."""
    return [message for message in transcript(name) if "Event" in message]


def renumbered(messages, suffix) -> list[dict[str, str]]:
    """The same call again under other Uniqueids and Linkedid."""
    return [{key: f"{value}-{suffix}" if key.lower().endswith(("uniqueid", "linkedid")) else value
             for key, value in message.items()} for message in messages]


def make_call(operator, **fields) -> Call:
    """An incoming call the operator took, as the listener writes it; `fields` override the defaults."""
    operator_row = getattr(operator, "operator", None)
    defaults = {
        "linkedid": f"test.{next(_linkedids)}", "direction": "in", "phone": "+74957894561",
        "extension": operator_row.extension if operator_row else "", "operator": operator, "started_at": timezone.now(),
    }
    return Call.objects.create(**(defaults | fields))
