import csv
import datetime
import io
import os
import random
import secrets
import string
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from clients.demo import fake_clients
from clients.importer import COLUMNS, client_import_csv
from clients.models import AdSource, CardType, Client
from history.models import CallReason, CallResult, ContactReason
from telephony.models import Operator

PASSWORD_CHARACTERS = string.ascii_letters + string.digits  # nothing to misread or to need quoting in a shell
OPERATORS = [("operator1", "100", "Анна", "Администраторова"), ("operator2", "101", "Борис", "Регистраторов")]
DICTIONARIES = [CallReason, CallResult, ContactReason, AdSource, CardType]


def demo_rows() -> list[dict[str, str]]:
    """Fifty clients, with the manual's own example and a family sharing a home phone."""
    rng = random.Random(2016)
    card_types = list(CardType.objects.filter(is_active=True).values_list("name", flat=True))
    ad_sources = list(AdSource.objects.filter(is_active=True).values_list("name", flat=True))
    rows = list(fake_clients(47, seed=2016, card_prefix="D"))
    for row in rows:
        row["card_type"] = rng.choice(card_types) if card_types else ""
        row["ad_source"] = rng.choice(ad_sources) if ad_sources else ""
    rows.append({
        "last_name": "Савицкая", "first_name": "Наталья", "middle_name": "Геннадьевна", "sex": "ж",
        "birth_day": "8", "birth_month": "8", "birth_year": "1964", "phone_mobile": "+7 (495) 789-45-61",
        "card_number": "D000100", "card_type": "Золотая", "ad_source": "Без рекламы", "blacklisted": "да",
        "call_back_on": (datetime.date.today() + datetime.timedelta(days=3)).strftime("%d.%m.%Y"), "importance": "3",
    })
    shared_home = "8 (499) 369-04-39"
    rows.append({"last_name": "Орлов", "first_name": "Пётр", "middle_name": "Сергеевич", "sex": "м", "phone_home": shared_home,
                 "phone_mobile": "+7 916 671-57-40", "card_number": "D000101"})
    rows.append({"last_name": "Орлова", "first_name": "Вера", "middle_name": "Николаевна", "sex": "ж", "phone_home": shared_home,
                 "card_number": "D000102"})
    return rows


def passwords_read(path: Path) -> dict[str, str] | None:
    """The kept passwords by user name; None when there is no file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    lines = (line.strip() for line in text.splitlines())
    return dict(line.split(maxsplit=1) for line in lines if line and not line.startswith("#") and " " in line)


def passwords_write(path: Path, passwords: dict[str, str]) -> None:
    """Replace the file in one step, readable by its owner only (mkstemp creates it 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write("# The demo users' passwords, kept by `manage.py load_demo`. Delete this file for new ones.\n")
        file.writelines(f"{username} {password}\n" for username, password in passwords.items())
    os.replace(temporary, path)


def shown(path: Path) -> str:
    return str(path.relative_to(settings.BASE_DIR)) if path.is_relative_to(settings.BASE_DIR) else str(path)


class Command(BaseCommand):
    help = (
        "Load the demo: dictionaries, fifty clients, operators operator1 (ext 100) and operator2 (ext 101), and an admin. "
        "Running it again changes nothing and prints the same passwords."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--passwords", type=Path, default=settings.VAR_DIR / "demo-passwords",
            help="the file that keeps the demo users' passwords from one run to the next (default: var/demo-passwords)",
        )

    @transaction.atomic
    def handle(self, *args, passwords: Path, **options):
        if not any(model.objects.exists() for model in DICTIONARIES):
            call_command("loaddata", "dictionaries", verbosity=0)
        created, there = self.load_clients()
        self.stdout.write(f"Demo clients: {created} created, {there} already there.")

        passwords = Path(passwords)  # call_command passes it as given
        kept = passwords_read(passwords)
        User = get_user_model()
        users = []
        for username, extension, first, last in OPERATORS:
            user, new = User.objects.get_or_create(username=username, defaults={"first_name": first, "last_name": last})
            Operator.objects.get_or_create(user=user, defaults={"extension": extension, "channel": f"PJSIP/{extension}"})
            users.append((user, new, f"extension {extension}"))
        admin, new = User.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
        users.append((admin, new, "dictionaries and operators at /admin/"))

        logins, renewed = {}, []
        for user, new, _ in users:
            logins[user.username], fresh = self.password(user, new, (kept or {}).get(user.username))
            if fresh and not new:
                renewed.append(user.username)
        passwords_write(passwords, logins)

        if renewed:
            why = "was missing" if kept is None else "had none that still worked for them"
            self.stdout.write(f"Set new passwords for {', '.join(renewed)}: {shown(passwords)} {why}.")
        self.stdout.write(f"Demo users (passwords kept in {shown(passwords)}, the same on every run):")
        for user, _, what in users:
            self.stdout.write(f"  {user.username:<10} {logins[user.username]:<14} {what}")

    def load_clients(self) -> tuple[int, int]:
        """Import the demo clients not there yet (by card number); those already there keep any edits."""
        rows = demo_rows()
        there = set(Client.objects.filter(card_number__in=[row["card_number"] for row in rows]).values_list("card_number", flat=True))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(row for row in rows if row["card_number"] not in there)
        buffer.seek(0)
        return client_import_csv(buffer).created, len(there)

    def password(self, user, new: bool, kept: str | None) -> tuple[str, bool]:
        """The kept password if it logs the user in (or the user is new), else a fresh one; True when fresh."""
        if kept and (new or user.check_password(kept)):
            if new:
                user.set_password(kept)
                user.save(update_fields=["password"])
            return kept, False
        password = "".join(secrets.choice(PASSWORD_CHARACTERS) for _ in range(12))
        user.set_password(password)
        user.save(update_fields=["password"])
        return password, True
