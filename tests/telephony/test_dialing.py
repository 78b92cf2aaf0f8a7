"""Dial rules and extension numbers: what reaches the trunk for what an operator clicked or typed."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from simplecalls.env import dial_rules_from_env
from telephony.dialing import NotDiallable, dial_target

RU = dial_rules_from_env({}, "RU")


@pytest.mark.parametrize("raw, dial", [
    ("+7 (499) 369-04-39", "84993690439"), ("+7 499 671 57 40", "84996715740"), ("84993690439", "84993690439"),
    ("4993690439", "84993690439"), ("+49 30 1234567", "81049301234567"),
])
def test_russian_numbers_are_dialled_with_8_and_foreign_ones_with_810(raw, dial):
    assert dial_target(raw, region="RU", rules=RU).dial == dial


@pytest.mark.parametrize("raw, number, extension", [
    ("+7 495 123-45-67 доб. 123", "+74951234567", "123"), ("+7 495 123-45-67, доб 45", "+74951234567", "45"),
    ("84951234567 ext. 7", "+74951234567", "7"), ("84951234567 x123", "+74951234567", "123"),
    ("84951234567#123", "+74951234567", "123"), ("8 (495) 123-45-67 Доб.0042", "+74951234567", "0042"),
    ("84951234567", "+74951234567", ""),
])
def test_an_extension_after_the_number_is_kept_apart_for_dtmf(raw, number, extension):
    target = dial_target(raw, region="RU", rules=RU)

    assert (target.number, target.dial, target.extension) == (number, "84951234567", extension)


@pytest.mark.parametrize("raw", [
    "", "абв", "100", "+7 495 123\r\nAction: Hangup", "84951234567\r\n", "84951234567\x00", "84951234567 доб. 12a",
    "Channel: SIP/100", "+7 495 123-45-67 доб. 123456789",
])
def test_anything_that_is_not_a_diallable_number_is_refused_with_a_reason(raw):
    with pytest.raises(NotDiallable) as refused:
        dial_target(raw, region="RU", rules=RU)

    assert str(refused.value)


def test_without_rules_the_number_is_dialled_in_e164_and_other_regions_read_their_own_numbers():
    rules = dial_rules_from_env({}, "NL")

    assert rules == [] and dial_target("020 123 4567", region="NL", rules=rules).dial == "+31201234567"
    assert dial_target("020 123 4567", region="NL", rules=dial_rules_from_env({"DIAL_RULES": "+31=0,+=00"}, "NL")).dial == "0201234567"


@pytest.mark.parametrize("text", ["7=8", "+7", "+7=8a", "+x=1", "+7=8;+=810"])
def test_a_malformed_dial_rule_stops_the_start_naming_the_variable(text):
    with pytest.raises(ImproperlyConfigured, match="DIAL_RULES"):
        dial_rules_from_env({"DIAL_RULES": text}, "RU")


def test_the_reason_is_given_in_russian_by_default():
    from django.utils import translation

    with translation.override("ru"), pytest.raises(NotDiallable, match="не номер телефона"):
        dial_target("абв", region="RU", rules=RU)
