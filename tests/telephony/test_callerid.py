"""The caller's name for a desk phone: short, transliterated on request, and safe in a dialplan and a SIP header."""

import pytest

from telephony.callerid import callerid_name, callerid_safe, short_name, transliterate


@pytest.mark.parametrize("parts, expected", [
    (("Савицкая", "Наталья", "Геннадьевна"), "Савицкая Н.Г."),
    (("Орлов", "пётр", ""), "Орлов П."),
    (("Орлов", "", ""), "Орлов"),
    (("", "Наталья", "Геннадьевна"), "Наталья Геннадьевна"),
    ((" Ёлкина ", " ", ""), "Ёлкина"),
])
def test_the_short_name_is_the_last_name_and_initials(parts, expected):
    assert short_name(*parts) == expected


@pytest.mark.parametrize("russian, latin", [
    ("Савицкая Наталья", "Savitskaia Natalia"),
    ("Щукин Жуков Хохлов Цой Чехов Шишкин", "Shchukin Zhukov Khokhlov Tsoi Chekhov Shishkin"),
    ("Юлия Яковлева Эдуард Ёлкин Ильин Подъячев Крылов", "Iuliia Iakovleva Eduard Elkin Ilin Podieiachev Krylov"),
    ("ЖУКОВ Щ.", "ZHUKOV Shch."),
    ("Müller Žofia", "Muller Zofia"),
    ("李 Анна", " Anna"),
])
def test_transliteration_follows_the_passport_table(russian, latin):
    assert transliterate(russian) == latin


def test_unsafe_characters_go_and_the_name_is_cut():
    assert callerid_safe('O\'Brien "Jr", \\x; a|b <c>\x00\x1b[31m\u202e\u200b', max_length=80) == "OBrien Jr x ab c[31m"
    assert callerid_safe("Константинопольская", max_length=10) == "Константин"
    assert callerid_safe("Ан  на\tи\nЯ", max_length=6) == "Ан на"


def test_the_name_for_a_phone_without_cyrillic_is_ascii():
    name = callerid_name("Щербакова-Добровольская", "Юлия", "Эдуардовна", ascii=True, max_length=20)
    assert name == "Shcherbakova-Dobrovo" and name.isascii()
