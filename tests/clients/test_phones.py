import random
import subprocess
import sys
from pathlib import Path

import phonenumbers
import pytest

from clients import phones
from clients.phones import common_form, number_valid, phone_display, phone_normalize, phone_parse, phone_valid_e164
from telephony.events import normalize_phone

TYPED = [
    "+{cc}{n}", "{cc}{n}", "{p}{n}", "{n}", "+{cc} ({a}) {b}-{c}-{d}", "{p} ({a}) {b}-{c}-{d}", "+{cc} {a} {b} {c} {d}", "{p}-{a}-{b}-{c}{d}",
]


def typed_forms(region, national):
    code = str(phonenumbers.country_code_for_region(region))
    prefix = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix or ""
    parts = {"a": national[:3], "b": national[3:6], "c": national[6:8], "d": national[8:]}
    return [form.format(cc=code, p=prefix, n=national, **parts) for form in TYPED]


@pytest.mark.parametrize("region", ["RU", "BY", "KZ", "DE", "GB", "US", "IT"])
def test_the_quick_reading_agrees_with_phonenumbers_on_every_typed_form(region):
    rng = random.Random(region)
    for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
        example = phonenumbers.example_number_for_type(region, kind)
        national = str(example.national_number)
        for _ in range(40):
            mutated = national[:-4] + f"{rng.randrange(10000):04d}"
            for raw in typed_forms(region, mutated):
                quick = common_form(raw, region)
                if quick is None:
                    continue  # the full parse decides
                full = phonenumbers.parse(raw, region)
                assert phonenumbers.format_number(quick, 0) == phonenumbers.format_number(full, 0), raw


def test_an_invalid_number_is_left_to_the_full_parse():
    assert common_form("89999999999999", "RU") is None
    assert phone_parse("12345", region="RU", strict=True) is None


def test_a_foreign_number_in_international_form_is_kept():
    assert phone_normalize("+375 29 123-45-67") == "+375291234567"
    assert phone_normalize("810 44 20 7946 0958") == "+442079460958"


def test_display_groups_the_digits():
    assert phone_display("+74957894561") == "+7 495 789-45-61"
    assert phone_display("") == ""


def test_warming_up_reads_the_regions_metadata_before_the_first_caller():
    # A fresh interpreter: this one may have read it already. The library keeps what it read by region.
    script = (
        "from phonenumbers.phonemetadata import PhoneMetadata as m\n"
        "from clients import phones\n"
        "assert 'DE' not in m._region_metadata\n"
        "phones.warm_up('DE'); phones.warm_up('ZZ')\n"
        "assert 'DE' in m._region_metadata\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).resolve().parents[2])


CALLER_IDS = [
    "84957894561", "74957894561", "+74957894561", "4957894561", "8 (495) 789-45-61", " +7 495 789-45-61 ",
    "810 44 20 7946 0958", "+4930123456", "<unknown>", "anonymous", "Private", "", "100", "s", "trunk",
    "1" * 40, "+7 495 abc", "0612345678", "+31 20 123 4567", "020 123 4567",
]


@pytest.mark.parametrize("region", ["RU", "NL"])
def test_the_client_base_reads_every_caller_id_as_the_reducer_does(settings, region):
    settings.PHONE_REGION = region
    for raw in CALLER_IDS:
        assert phone_normalize(raw) == normalize_phone(raw, region), raw


def test_the_reducers_phone_numbers_need_no_django():
    code = "import sys, telephony.events; print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def mutations(national: str, rng: random.Random, lengths=()):
    """The number, each of its digits changed, one digit more or fewer, and its beginnings with random
    tails of every length in `lengths`: valid and invalid numbers alike, near the patterns' edges."""
    yield national
    for position in range(len(national)):
        for digit in "0123456789":
            yield national[:position] + digit + national[position + 1:]
    yield national[:-1]
    yield national + "5"
    for keep in range(1, len(national)):
        for length in {*lengths, len(national)}:
            if length > keep:
                yield national[:keep] + "".join(rng.choice("0123456789") for _ in range(length - keep))


def example_nationals(region: str | None, code: int | None = None):
    for kind in phonenumbers.PhoneNumberType.values():
        example = (phonenumbers.example_number_for_type(region, kind) if region
                   else phonenumbers.example_number_for_non_geo_entity(code))
        if example is not None:
            yield str(example.national_number)


def test_number_valid_agrees_with_phonenumbers_for_every_region():
    rng = random.Random(11)
    checked = valid = 0
    places = [(region, phonenumbers.country_code_for_region(region)) for region in sorted(phonenumbers.SUPPORTED_REGIONS)]
    places += [(None, code) for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)]
    by_code: dict[int, dict[str, bool]] = {}
    for region, code in places:
        lengths = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region or "001").general_desc.possible_length
        # Sorted, so that a seed gives the same numbers; with the country code in front too, as people type it.
        for national in sorted({*example_nationals(region, code), *(f"{code}{national}" for national in example_nationals(region, code))}):
            for mutated in mutations(national, rng, lengths):
                if not mutated or mutated.startswith("0"):
                    continue  # leading zeros are phonenumbers' own business (common_form never asks)
                expected = phonenumbers.is_valid_number(phonenumbers.PhoneNumber(country_code=code, national_number=int(mutated)))
                assert number_valid(code, mutated) == expected, (region, code, mutated)
                checked, valid = checked + 1, valid + expected
                by_code.setdefault(code, {})[mutated] = expected
    assert checked > 150_000 and valid > checked // 10, (checked, valid)
    for code, verdicts in by_code.items():  # and all of a country code's numbers at once, as the importer reads them
        assert phones.nationals_valid(code, set(verdicts)) == {national for national, expected in verdicts.items() if expected}, code


@pytest.mark.parametrize("region", ["RU", "BY", "KZ", "UA", "DE", "GB", "US", "IT", "NL", "FR"])
def test_the_importers_reading_is_what_phonenumbers_validity_gives_on_many_typed_forms(region, monkeypatch):
    rng = random.Random(region)
    forms = [
        raw for national in sorted(set(example_nationals(region))) for mutated in mutations(national, rng)
        for raw in [*typed_forms(region, mutated), f"+{mutated}", f"00{mutated}", f"{mutated} доб. 12", f"８{mutated}", f"8²{mutated}"]
    ]
    fast = [phone_valid_e164(raw, region) for raw in forms]
    assert phones.phones_valid_e164(forms, region) == fast
    monkeypatch.setattr(phones, "number_valid", lambda code, national: phonenumbers.is_valid_number(
        phonenumbers.PhoneNumber(country_code=code, national_number=int(national))))
    assert fast == [phone_valid_e164(raw, region) for raw in forms]
    strict = [phone_parse(raw, region=region, strict=True) for raw in forms]
    assert fast == [phonenumbers.format_number(number, 0) if number else "" for number in strict]
    assert sum(map(bool, fast)) > len(forms) // 10, "valid numbers are well represented"


def test_what_is_typed_between_digits_is_every_whitespace_bracket_dot_and_dash():
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    assert every.translate(phones.TYPING_DELETED) == phones.TYPING.sub("", every)
