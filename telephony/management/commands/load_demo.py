import csv
import datetime
import io
import random
import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from clients.demo import fake_clients
from clients.importer import COLUMNS, client_import_csv
from clients.models import AdSource, CardType
from telephony.models import Operator

OPERATORS = [("operator1", "100", "Анна", "Администраторова"), ("operator2", "101", "Борис", "Регистраторов")]


def demo_rows() -> list[dict[str, str]]:
    """About fifty clients, with the manual's own example and a family sharing a home phone."""
    rng = random.Random(2016)
    card_types = list(CardType.objects.filter(is_active=True).values_list("name", flat=True))
    ad_sources = list(AdSource.objects.filter(is_active=True).values_list("name", flat=True))
    rows = list(fake_clients(47, seed=2016, card_prefix="D"))
    for row in rows:
        row["card_type"] = rng.choice(card_types)
        row["ad_source"] = rng.choice(ad_sources)
    rows.append({
        "last_name": "Савицкая", "first_name": "Наталья", "middle_name": "Геннадьевна", "sex": "ж",
        "birth_day": "8", "birth_month": "8", "birth_year": "1964", "phone_mobile": "+7 (495) 789-45-61",
        "card_number": "D000100", "card_type": "Золотая", "ad_source": "Без рекламы", "blacklisted": "да",
        "call_back_on": (datetime.date.today() + datetime.timedelta(days=3)).strftime("%d.%m.%Y"), "importance": "3",
    })
    shared_home = "8 (499) 369-04-39"
    rows.append({"last_name": "Орлов", "first_name": "Пётр", "sex": "м", "phone_home": shared_home, "phone_mobile": "+7 916 671-57-40", "card_number": "D000101"})
    rows.append({"last_name": "Орлова", "first_name": "Вера", "sex": "ж", "phone_home": shared_home, "card_number": "D000102"})
    return rows


class Command(BaseCommand):
    help = "Load the demo: dictionaries, about fifty clients, operators operator1 (ext 100) and operator2 (ext 101), and an admin."

    @transaction.atomic
    def handle(self, *args, **options):
        call_command("loaddata", "dictionaries", verbosity=0)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(demo_rows())
        buffer.seek(0)
        report = client_import_csv(buffer)
        self.stdout.write(f"Demo clients: {report.created} created, {report.updated + report.unchanged} already there.")
        self.stdout.write("Demo users (passwords are new on every run):")
        User = get_user_model()
        for username, extension, first, last in OPERATORS:
            user, _ = User.objects.get_or_create(username=username, defaults={"first_name": first, "last_name": last})
            Operator.objects.update_or_create(user=user, defaults={"extension": extension, "channel": f"PJSIP/{extension}"})
            self.stdout.write(f"  {username:<10} {self.reset_password(user)}   extension {extension}")
        admin, _ = User.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
        self.stdout.write(f"  {'admin':<10} {self.reset_password(admin)}   dictionaries and operators at /admin/")

    def reset_password(self, user) -> str:
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.save()
        return password
