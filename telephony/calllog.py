"""The journal an administrator reads: one line for each change in a call's state.

    call 1733400000.17 in from +749*******61: ringing 100, 101
    call 1733400000.17: answered at 101
    call 1733400000.17: ended answered, 45 s talk, 52 s in all
    call sc-4f0c…: click-to-call by 100 to +790*******67: operator_ringing
    call sc-4f0c…: ended busy, 0 s talk, 9 s in all

Only the listener that writes logs them, as it writes the change. A caller's number is personal data:
it is masked (its first four and last two characters kept) unless the logger `telephony.calls` is at
DEBUG, which LOG_LEVEL=DEBUG sets.
"""

import logging

log = logging.getLogger("telephony.calls")

SHORT = 6  # extensions and service numbers: not a person's, written whole


def masked(number: str) -> str:
    if len(number) <= SHORT or log.isEnabledFor(logging.DEBUG):
        return number
    head = 4 if len(number) >= 10 else 0
    return number[:head] + "*" * (len(number) - head - 2) + number[-2:]


def ringing(linkedid: str, direction: str, phone: str, extensions: list[str], *, first: bool) -> None:
    if first:
        side = "from" if direction == "in" else "to"
        log.info("call %s %s %s %s: ringing %s", linkedid, direction, side, masked(phone) or "an unknown number", ", ".join(extensions))
    else:
        log.info("call %s: ringing %s too", linkedid, ", ".join(extensions))


def answered(linkedid: str, extension: str) -> None:
    log.info("call %s: answered at %s", linkedid, extension or "an unknown phone")


def ended(linkedid: str, disposition: str, billsec: int, duration: int) -> None:
    log.info("call %s: ended %s, %d s talk, %d s in all", linkedid, disposition, billsec, duration)


def click_to_call(linkedid: str, stage: str, *, extension: str, phone: str, first: bool) -> None:
    if first:  # the number is the row's, which the PBX may not have repeated yet
        log.info("call %s: click-to-call by %s%s: %s", linkedid, extension, f" to {masked(phone)}" if phone else "", stage)
    else:
        log.info("call %s: %s", linkedid, stage)
