"""Phone numbers in any national or international form → E.164, the one form stored and matched.

The one phone-number module of the project: the client base uses it, and so does the call reducer
(`telephony/events.py`, as `normalize_phone`), which must stay free of Django. So only
`phone_normalize` and `phone_region` read settings, and only when called.
"""

import functools
import re

import phonenumbers

TYPING = re.compile(r"[\s().-]")  # what people type between a number's digits
# The same characters (every whitespace character is below U+3001), to delete with str.translate: over a whole column
# of numbers, 40 times cheaper than TYPING's substitution; over one number, no cheaper.
TYPING_DELETED = str.maketrans(dict.fromkeys([*"().-", *(chr(code) for code in range(0x3001) if chr(code).isspace())]))
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
    e164 = common_e164(raw, region)
    if e164 is None:
        return None
    code = region_shape(region)[0]
    return phonenumbers.PhoneNumber(country_code=int(code), national_number=int(e164[1 + len(code):]))


def common_e164(raw: str, region: str) -> str | None:
    """`common_form` as E.164, for the importer: no PhoneNumber object on the way."""
    national = common_national(TYPING.sub("", raw), region)
    if national is None:
        return None
    code = region_shape(region)[0]
    return f"+{code}{national}" if number_valid(int(code), national) else None


def phones_valid_e164(raws: list[str], region: str) -> list[str]:
    """`phone_valid_e164` of each of `raws`, the usual forms read together: each expression makes one pass over
    all of them, where one call a number costs the importer more than the rest of the number's row."""
    joined = "\x00".join(raws)
    if joined.count("\x00") != len(raws) - 1:  # a number with a NUL of its own
        return [phone_valid_e164(raw, region) for raw in raws]
    code = region_shape(region)[0]
    nationals = [common_national(digits, region) for digits in joined.translate(TYPING_DELETED).split("\x00")] if raws else []
    valid = nationals_valid(int(code), {national for national in nationals if national})
    return [f"+{code}{national}" if national in valid else phone_valid_e164(raw, region) for raw, national in zip(raws, nationals)]


def common_national(digits: str, region: str) -> str | None:
    """The national number in a typed number stripped of its spaces, brackets and dashes, if it takes a usual form."""
    plus = digits.startswith("+")
    if plus:
        digits = digits[1:]
    if not (digits.isascii() and digits.isdigit()):  # other scripts' digits go to phonenumbers, which reads them
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
    return national


# The number types phonenumbers' is_valid_number accepts; mobile only where its pattern is not fixed_line's.
VALID_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail", "fixed_line", "mobile")


def number_valid(code: int, national: str) -> bool:
    """phonenumbers.is_valid_number for a number without leading zeros, its patterns compiled once: ~2 µs, not ~7.

    The same steps: a country code several regions share goes to the first whose leading digits
    begin the number (or, lacking them, whose patterns it matches); then the number must match the
    region's general pattern and one of its types' (tests/clients/test_phones.py compares the two).
    """
    rules = code_rules(code)
    if len(rules) == 1:
        return national_valid(rules[0][1], national)
    for leading, by_length in rules:
        if leading.match(national) if leading else national_valid(by_length, national):
            return national_valid(by_length, national)
    return False


def nationals_valid(code: int, nationals: set[str]) -> set[str]:
    """Those of `nationals` that `number_valid` takes, in the same steps, each expression run over all at once."""
    rules = code_rules(code)
    if len(rules) == 1:
        return valid_among(rules[0][1], nationals)
    valid, undecided = set(), set(nationals)
    for leading, by_length in rules:
        if leading:
            decided = {national for national in undecided if leading.match(national)}
            valid |= valid_among(by_length, decided)
        else:
            decided = valid_among(by_length, undecided)
            valid |= decided
        undecided -= decided
    return valid


def national_valid(by_length: dict, national: str) -> bool:
    patterns = by_length.get(len(national))
    return patterns is not None and patterns[0].fullmatch(national) is not None


def valid_among(by_length: dict, nationals: set[str]) -> set[str]:
    """`national_valid` of many numbers: one search a length over the numbers of that length, a line each."""
    by_size: dict[int, list[str]] = {}
    for national in nationals:
        by_size.setdefault(len(national), []).append(national)
    valid = set()
    for size, group in by_size.items():
        if size in by_length:
            valid.update(match.group() for match in by_length[size][1].finditer("\n".join(group)))
    return valid


@functools.cache
def code_rules(code: int) -> tuple[tuple[re.Pattern | None, dict], ...]:
    """`region_rules` of each region sharing the country code, in phonenumbers' order."""
    return tuple(region_rules(region, code) for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ()))


@functools.cache
def region_rules(region: str, code: int) -> tuple[re.Pattern | None, dict[int, tuple[re.Pattern, re.Pattern]]]:
    """A region's leading digits (which of a shared country code's numbers are its) and its validity expressions by
    the national number's length: one for a number alone, one for numbers a line each (`valid_among`)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    general = metadata and metadata.general_desc
    if general is None or not general.national_number_pattern:
        return None, {}
    names = VALID_TYPES[:-1] if metadata.same_mobile_and_fixed_line_pattern else VALID_TYPES
    types = [desc for desc in (getattr(metadata, name) for name in names) if desc is not None and desc.national_number_pattern]
    # A type's pattern applies to the lengths it lists, or to every length when it lists none. One expression a
    # length: the general pattern as a lookahead over the whole number, then the types'. The patterns match digits
    # only, so a line's match never reaches into the next.
    by_length = {}
    for length in range(1, 18):
        patterns = [desc.national_number_pattern for desc in types if not desc.possible_length or length in desc.possible_length]
        if patterns and (not general.possible_length or length in general.possible_length):
            alternatives = "|".join(f"(?:{pattern})" for pattern in patterns)
            by_length[length] = (re.compile(f"(?=(?:{general.national_number_pattern})\\Z)(?:{alternatives})"),
                                 re.compile(f"^(?=(?:{general.national_number_pattern})$)(?:{alternatives})$", re.MULTILINE))
    leading = re.compile(metadata.leading_digits) if metadata.leading_digits is not None else None
    return leading, by_length


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


def phone_valid_e164(raw: str, region: str) -> str:
    """E.164 of a valid number in any form, or "" (`phone_parse` with `strict`, as a string)."""
    e164 = common_e164(raw, region)
    if e164 is not None:
        return e164
    number = phone_parse(raw, region=region, strict=True)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if number is not None else ""


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


@functools.lru_cache(maxsize=8192)
def phone_display(e164: str) -> str:
    """How a stored number is shown to a person: "+7 495 789-45-61" (cached: every live message about a call shows it)."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(str(e164), None)
    except phonenumbers.NumberParseException:
        return str(e164)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def warm_up(region: str) -> None:
    """Have the library read the region's metadata now: it does on first use, a few milliseconds the first caller would wait."""
    example = phonenumbers.example_number(region)
    if example is not None:
        phone_display(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
        phone_e164(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL), region)
