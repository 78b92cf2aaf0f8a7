"""What the trunk dials for a number an operator clicked or typed: dial rules and extension numbers.

A number is read in any form the client base accepts, kept in E.164, and turned into what the
trunk dials by the first dial rule (`DIAL_RULES`) whose prefix it starts with (`+7=8`:
+74993690439 → 84993690439).
An extension typed after it ("доб. 123", "ext. 123", "x123", "#123") is kept apart, to be sent as
DTMF once the client answers. Only digits, with at most a leading +, ever come out of here: nothing
typed into a phone field can reach an AMI header otherwise.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.translation import gettext as _

from clients.phones import phone_e164

EXTENSION = re.compile(r"[\s,;]*(?:доб(?:авочный)?\.?|ext(?:ension)?\.?|x|#)\s*([0-9]{1,8})\s*$", re.IGNORECASE)
DIALLABLE = re.compile(r"\+?\d{3,20}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# A click-to-call's linkedid (the Originate's ChannelId and ActionID) starts so: the listener tells its operator how it goes.
CLICK_TO_CALL = "sc-"

DialRules = Sequence[tuple[str, str]]


class NotDiallable(ValueError):
    """The text is not a number that can be dialled; the message says why, for the operator."""


@dataclass(frozen=True)
class DialTarget:
    number: str     # E.164, as the call is logged
    dial: str       # what the trunk dials
    extension: str  # digits to send once the client answers, or ""


def dial_target(raw: str, *, region: str, rules: DialRules) -> DialTarget:
    """The number, what to dial and the extension, or NotDiallable with the reason."""
    text = raw.strip()
    if CONTROL.search(raw):
        raise NotDiallable(_("A phone number cannot contain control characters."))
    extension = ""
    if match := EXTENSION.search(text):
        extension, text = match[1], text[:match.start()]
    number = phone_e164(text, region)
    dial = next((replacement + number[len(prefix):] for prefix, replacement in rules if number.startswith(prefix)), number)
    if not number or not DIALLABLE.fullmatch(dial):
        raise NotDiallable(_("“%(phone)s” is not a phone number that can be dialled.") % {"phone": raw.strip()[:40]})
    return DialTarget(number=number, dial=dial, extension=extension)
