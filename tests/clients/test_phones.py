import random
import subprocess
import sys
from pathlib import Path

import phonenumbers
import pytest

from clients.phones import common_form, phone_display, phone_normalize, phone_parse
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
