"""Phone numbers in any national or international form → E.164, the one form we store and match."""

import phonenumbers
from django.conf import settings


def phone_parse(raw: str, *, region: str | None = None) -> phonenumbers.PhoneNumber | None:
    """The parsed number, or None when `raw` cannot be a phone number in `region`."""
    if not raw or not any(ch.isdigit() for ch in raw):
        return None
    try:
        number = phonenumbers.parse(raw, region or settings.PHONE_REGION)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_possible_number(number) else None


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
