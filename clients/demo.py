"""Realistic made-up clients: Russian names, phones typed the many ways front desks type them."""

import random
from collections.abc import Iterator

# Surnames and patronymics as (his, hers); a name is one of each with a first name of the same sex.
# Савицкая and Орлов/Орлова are left out: the demo adds them as the manual's example and a family.
SURNAMES = [("Иванов", "Иванова"), ("Смирнов", "Смирнова"), ("Кузнецов", "Кузнецова"), ("Попов", "Попова"),
            ("Васильев", "Васильева"), ("Соколов", "Соколова"), ("Михайлов", "Михайлова"), ("Новиков", "Новикова"),
            ("Фёдоров", "Фёдорова"), ("Морозов", "Морозова"), ("Волков", "Волкова"), ("Лебедев", "Лебедева"),
            ("Козлов", "Козлова"), ("Егоров", "Егорова"), ("Павлов", "Павлова"), ("Степанов", "Степанова"),
            ("Николаев", "Николаева"), ("Захаров", "Захарова"), ("Зайцев", "Зайцева"), ("Белов", "Белова"),
            ("Тарасов", "Тарасова"), ("Комаров", "Комарова"), ("Виноградов", "Виноградова"), ("Богданов", "Богданова"),
            ("Яковлев", "Яковлева"), ("Григорьев", "Григорьева"), ("Романов", "Романова"), ("Киселёв", "Киселёва"),
            ("Макаров", "Макарова"), ("Андреев", "Андреева"), ("Ковалёв", "Ковалёва"), ("Ильин", "Ильина"),
            ("Гусев", "Гусева"), ("Титов", "Титова"), ("Кудрявцев", "Кудрявцева"), ("Баранов", "Баранова"),
            ("Куликов", "Куликова"), ("Алексеев", "Алексеева"), ("Сорокин", "Сорокина"), ("Никитин", "Никитина")]
MALE_NAMES = ["Иван", "Алексей", "Дмитрий", "Михаил", "Николай", "Артём", "Павел", "Егор", "Сергей", "Андрей",
              "Константин", "Роман", "Максим", "Владимир", "Юрий", "Олег", "Игорь", "Евгений", "Виктор", "Григорий"]
FEMALE_NAMES = ["Ольга", "Елена", "Анна", "Мария", "Татьяна", "Ирина", "Светлана", "Юлия", "Ксения", "Дарья",
                "Виктория", "Наталья", "Екатерина", "Людмила", "Галина", "Марина", "Алина", "Полина", "Вера", "Софья"]
PATRONYMICS = [("Петрович", "Петровна"), ("Сергеевич", "Сергеевна"), ("Олегович", "Олеговна"), ("Андреевич", "Андреевна"),
               ("Игоревич", "Игоревна"), ("Денисович", "Денисовна"), ("Викторович", "Викторовна"), ("Алексеевич", "Алексеевна"),
               ("Николаевич", "Николаевна"), ("Юрьевич", "Юрьевна"), ("Ильич", "Ильинична"), ("Максимович", "Максимовна"),
               ("Владимирович", "Владимировна"), ("Павлович", "Павловна"), ("Дмитриевич", "Дмитриевна"), ("Романович", "Романовна"),
               ("Евгеньевич", "Евгеньевна"), ("Михайлович", "Михайловна"), ("Геннадьевич", "Геннадьевна"), ("Борисович", "Борисовна")]
MALE = [(his, first, middle) for his, _ in SURNAMES for first in MALE_NAMES for middle, _ in PATRONYMICS]
FEMALE = [(hers, first, middle) for _, hers in SURNAMES for first in FEMALE_NAMES for _, middle in PATRONYMICS]
CITIES = ["Москва", "Санкт-Петербург", "Казань", "Екатеринбург", "Новосибирск", "Химки", "Подольск"]
STREETS = ["ул. Ленина", "Тверская ул.", "пр-т Мира", "ул. Гагарина", "Садовая ул.", "Ленинградский пр-т", "ул. Пушкина"]
MOBILE_PREFIXES = ["903", "905", "906", "909", "910", "915", "916", "917", "925", "926", "929", "964", "965", "977", "985", "999"]


def phone_typed(rng: random.Random, digits: str) -> str:
    """The 10 national digits written as a person might: 8…, 7…, +7 (…) …-..-.., or bare."""
    area, rest = digits[:3], digits[3:]
    return rng.choice([
        f"8{digits}", f"7{digits}", f"+7{digits}", f"+7 ({area}) {rest[:3]}-{rest[3:5]}-{rest[5:]}",
        f"8 ({area}) {rest[:3]}-{rest[3:5]}-{rest[5:]}", f"+7 {area} {rest[:3]} {rest[3:5]} {rest[5:]}", digits,
    ])


def mobile_digits(index: int) -> str:
    """A valid Russian mobile number's ten national digits, different for every index."""
    return f"{MOBILE_PREFIXES[index % len(MOBILE_PREFIXES)]}{index // len(MOBILE_PREFIXES):07d}"


def names_in_turn(names: list[tuple[str, str, str]], rng: random.Random) -> Iterator[tuple[str, str, str]]:
    """Every name once, in a shuffled order, before any comes again."""
    while True:
        yield from rng.sample(names, len(names))


def other_digits(area: str, index: int, step: int) -> str:
    """Ten national digits in `area`, different for every index below 8,000,000 (`step` is coprime to it)."""
    return f"{area}{2_000_000 + index * step % 8_000_000:07d}"


def fake_clients(count: int, *, seed: int = 1, card_prefix: str = "") -> Iterator[dict[str, str]]:
    """`count` clients as CSV-like dicts of strings (the import format), the same for the same seed.

    Full names differ until all 16,000 of a sex are used, and every phone number is its own.
    """
    rng = random.Random(seed)
    names = {"m": names_in_turn(MALE, rng), "f": names_in_turn(FEMALE, rng)}
    for index in range(count):
        sex = rng.choice("mf")
        last, first, middle = next(names[sex])
        row = {
            "last_name": last, "first_name": first, "middle_name": middle, "sex": sex,
            "birth_day": str(rng.randint(1, 28)), "birth_month": str(rng.randint(1, 12)), "birth_year": str(rng.randint(1950, 2005)),
            "phone_mobile": phone_typed(rng, mobile_digits(index)),
            "phone_home": phone_typed(rng, other_digits("495", index, 104_729)) if rng.random() < 0.3 else "",
            "phone_work": phone_typed(rng, other_digits("499", index, 130_363)) if rng.random() < 0.2 else "",
            "email": f"client{index}@example.ru" if rng.random() < 0.5 else "",
            "no_sms": rng.choice(["0", "0", "0", "1"]),
            "city": rng.choice(CITIES), "postcode": f"1{rng.randint(10000, 99999)}", "street": rng.choice(STREETS),
            "house": str(rng.randint(1, 120)), "building": "", "flat": str(rng.randint(1, 300)),
            "card_number": f"{card_prefix}{index + 1:06d}",
            "comment": "",
        }
        yield row
