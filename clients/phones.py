"""Phone numbers in any national or international form → E.164, the one form we store and match."""

import functools
import re

import phonenumbers
from django.conf import settings

TYPING = re.compile(r"[\s().-]")


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


def phone_parse(raw: str, *, region: str | None = None, strict: bool = False) -> phonenumbers.PhoneNumber | None:
    """The parsed number, or None when `raw` cannot be a phone number (with `strict`, a valid one) in `region`."""
    if not raw or not any(ch.isdigit() for ch in raw):
        return None
    region = region or settings.PHONE_REGION
    number = common_form(raw, region)
    if number is not None:
        return number
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    usable = phonenumbers.is_valid_number(number) if strict else phonenumbers.is_possible_number(number)
    return number if usable else None


def phone_normalize(raw: str, *, region: str | None = None) -> str:
    """E.164 ("+74957894561") for any caller-ID form, or "" when it is not a phone number."""
    number = phone_parse(raw, region=region)
    if number is None:
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_display(e164: str) -> str:
    """How a stored number is shown to a person: "+7 495 789-45-61"."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(str(e164), None)
    except phonenumbers.NumberParseException:
        return str(e164)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
