"""Phone numbers in any national or international form → E.164, the one form stored and matched.

The one phone-number module of the project: the client base uses it, and so does the call reducer
(`telephony/events.py`, as `normalize_phone`), which must stay free of Django. So only
`phone_normalize` and `phone_region` read settings, and only when called.
"""

import functools
import re

import phonenumbers

TYPING = re.compile(r"[\s().-]")
# What a PBX puts where there is no caller ID (docs/pbx.md §8).
NO_NUMBER = frozenset({"", "<unknown>", "unknown", "anonymous", "private", "restricted"})
CALLER_ID = re.compile(r"\+?[\d\s().\-]+")


@functools.cache
def region_shape(region: str) -> tuple[str, str, frozenset[int]]:
    """The region's country code, trunk prefix and national number lengths, from phonenumbers' metadata."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return str(metadata.country_code), metadata.national_prefix or "", frozenset(metadata.general_desc.possible_length)


def common_form(raw: str, region: str) -> phonenumbers.PhoneNumber | None:
    """The usual ways a number is typed (8…, 7…, +7…, bare national digits), read without a full parse.

    phonenumbers.parse costs about 10 µs; imports read hundreds of thousands of numbers. Anything less
    common, or not valid, returns None and goes through the full parse.
    """
    digits = TYPING.sub("", raw)
    plus = digits.startswith("+")
    if plus:
        digits = digits[1:]
    if not digits.isdigit():
        return None
    code, prefix, lengths = region_shape(region)
    if plus:
        national = digits[len(code):] if digits.startswith(code) else ""
    elif len(digits) in lengths:
        national = digits
    elif prefix and digits.startswith(prefix) and len(digits) - len(prefix) in lengths:
        national = digits[len(prefix):]
    elif digits.startswith(code) and len(digits) - len(code) in lengths:
        national = digits[len(code):]
    else:
        return None
    if not national or national.startswith("0"):
        return None  # leading zeros need phonenumbers' own handling
    number = phonenumbers.PhoneNumber(country_code=int(code), national_number=int(national))
    return number if phonenumbers.is_valid_number(number) else None


def phone_parse(raw: str, *, region: str, strict: bool = False) -> phonenumbers.PhoneNumber | None:
    """The parsed number, or None when `raw` cannot be a phone number (with `strict`, a valid one) in `region`."""
    if not raw or not any(ch.isdigit() for ch in raw):
        return None
    number = common_form(raw, region)
    if number is not None:
        return number
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    # "Possible" (the length fits) unless told otherwise: a range missing from the library's
    # metadata is still a caller to call back.
    usable = phonenumbers.is_valid_number(number) if strict else phonenumbers.is_possible_number(number)
    return number if usable else None


@functools.lru_cache(maxsize=8192)
def phone_e164(raw: str, region: str) -> str:
    """E.164 ("+74957894561") for any caller-ID form, or "" when it is not a phone number.

    Pure and cached: the call reducer runs it for every channel it sees.
    """
    raw = raw.strip()
    if raw.lower() in NO_NUMBER or len(raw) > 32 or not CALLER_ID.fullmatch(raw):
        return ""
    number = phone_parse(raw, region=region)
    if number is None:
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_region() -> str:
    """The region national numbers are read in (`PHONE_REGION`)."""
    from django.conf import settings  # here, not at the top: the reducer imports this module without Django

    return settings.PHONE_REGION


def phone_normalize(raw: str, *, region: str | None = None) -> str:
    """`phone_e164` in the installation's region unless another is given."""
    return phone_e164(raw, region or phone_region())


def phone_display(e164: str) -> str:
    """How a stored number is shown to a person: "+7 495 789-45-61"."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(str(e164), None)
    except phonenumbers.NumberParseException:
        return str(e164)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
