"""Realistic made-up clients: Russian names, phones typed the many ways front desks type them."""

import random
from collections.abc import Iterator

MALE = [("Иванов", "Иван", "Петрович"), ("Смирнов", "Алексей", "Сергеевич"), ("Кузнецов", "Дмитрий", "Олегович"),
        ("Попов", "Михаил", "Андреевич"), ("Васильев", "Николай", "Игоревич"), ("Соколов", "Артём", "Денисович"),
        ("Михайлов", "Павел", "Викторович"), ("Новиков", "Егор", "Алексеевич"), ("Фёдоров", "Сергей", "Николаевич"),
        ("Морозов", "Андрей", "Юрьевич"), ("Волков", "Константин", "Ильич"), ("Лебедев", "Роман", "Максимович")]
FEMALE = [("Савицкая", "Наталья", "Геннадьевна"), ("Иванова", "Ольга", "Владимировна"), ("Смирнова", "Елена", "Павловна"),
          ("Кузнецова", "Анна", "Сергеевна"), ("Попова", "Мария", "Александровна"), ("Соколова", "Татьяна", "Игоревна"),
          ("Новикова", "Ирина", "Дмитриевна"), ("Морозова", "Светлана", "Олеговна"), ("Волкова", "Юлия", "Андреевна"),
          ("Лебедева", "Ксения", "Романовна"), ("Козлова", "Дарья", "Евгеньевна"), ("Орлова", "Виктория", "Михайловна")]
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


def fake_clients(count: int, *, seed: int = 1, card_prefix: str = "") -> Iterator[dict[str, str]]:
    """`count` clients as CSV-like dicts of strings (the import format), each with a unique mobile number."""
    rng = random.Random(seed)
    for index in range(count):
        sex = rng.choice("mf")
        last, first, middle = rng.choice(MALE if sex == "m" else FEMALE)
        row = {
            "last_name": last, "first_name": first, "middle_name": middle, "sex": sex,
            "birth_day": str(rng.randint(1, 28)), "birth_month": str(rng.randint(1, 12)), "birth_year": str(rng.randint(1950, 2005)),
            "phone_mobile": phone_typed(rng, mobile_digits(index)),
            "phone_home": phone_typed(rng, f"495{rng.randint(2000000, 9999999)}") if rng.random() < 0.3 else "",
            "phone_work": phone_typed(rng, f"499{rng.randint(2000000, 9999999)}") if rng.random() < 0.2 else "",
            "email": f"client{index}@example.ru" if rng.random() < 0.5 else "",
            "no_sms": rng.choice(["0", "0", "0", "1"]),
            "city": rng.choice(CITIES), "postcode": f"1{rng.randint(10000, 99999)}", "street": rng.choice(STREETS),
            "house": str(rng.randint(1, 120)), "building": "", "flat": str(rng.randint(1, 300)),
            "card_number": f"{card_prefix}{index + 1:06d}",
            "comment": "",
        }
        yield row
