"""The caller's name as a desk phone shows it: «Савицкая Н.Г.», in Latin letters for phones without Cyrillic.

Transliteration follows the table of Russian international passports (Order 889 of the Ministry of
the Interior, 2014, the ICAO Doc 9303 one): «Савицкая Наталья» → "Savitskaia Natalia". It uses
letters only — no apostrophes or backticks, which GOST 7.79's system B needs and a SIP header or a
dialplan would stumble on.
"""

import re
import unicodedata

PASSPORT = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z", "и": "i",
    "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "ie", "ы": "y",
    "ь": "", "э": "e", "ю": "iu", "я": "ia",
    # Ukrainian and Belarusian letters Russian names are also written with.
    "і": "i", "ї": "i", "є": "ie", "ґ": "g", "ў": "u",
}
# Quotes, backslashes, separators of dialplan arguments and SIP headers; control and format
# characters (a right-to-left override included) are dropped by category below.
UNSAFE = re.compile(r"[\"'`\\,;|<>]")
SPACES = re.compile(r"\s+")


def short_name(last_name: str, first_name: str, middle_name: str) -> str:
    """Last name and initials, «Савицкая Н.Г.»; the first name alone when there is no last name."""
    last_name, first_name, middle_name = (part.strip() for part in (last_name, first_name, middle_name))
    if not last_name:
        return " ".join(part for part in (first_name, middle_name) if part)
    initials = "".join(f"{part[0].upper()}." for part in (first_name, middle_name) if part)
    return f"{last_name} {initials}".strip()


def transliterate(text: str) -> str:
    """Russian letters in Latin ones (the passport table); other letters lose their accents, anything else non-ASCII goes."""
    out = []
    for index, char in enumerate(text):
        lower = char.lower()
        latin = PASSPORT.get(lower)
        if latin is None:
            out.append(char)
        elif char == lower or not latin:
            out.append(latin)
        else:
            # Ж → "Zh" in a name, "ZH" inside a word written in capitals.
            following = text[index + 1:index + 2]
            out.append(latin.upper() if following.isupper() else latin.capitalize())
    plain = unicodedata.normalize("NFKD", "".join(out))
    return plain.encode("ascii", "ignore").decode("ascii")


def callerid_safe(text: str, *, max_length: int) -> str:
    """Without what could break a dialplan or a SIP header, spaces collapsed, cut to `max_length`."""
    kept = "".join(char for char in text if unicodedata.category(char)[0] != "C" or char in "\t\n")
    kept = SPACES.sub(" ", UNSAFE.sub("", kept)).strip()
    return kept[:max_length].rstrip()


def callerid_name(last_name: str, first_name: str, middle_name: str, *, ascii: bool, max_length: int) -> str:
    name = short_name(last_name, first_name, middle_name)
    if ascii:
        name = transliterate(name)
    return callerid_safe(name, max_length=max_length)
