from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from clients.fields import PhoneField
from clients.phones import phone_normalize

PHONE_FIELDS = ("phone_mobile", "phone_home", "phone_work")
FOREIGN_KEYS = ("ad_source", "card_type", "manager")


def fold(text: str) -> str:
    """Text as search compares it: any case, ё as е."""
    return text.casefold().replace("ё", "е")


def search_name(*parts: str) -> str:
    return fold(" ".join(part for part in parts if part))


def digits_reversed(phone: str | None) -> str | None:
    """A phone's digits last first: its last digits become a prefix, which a plain index finds."""
    if not phone:
        return None
    if phone[0] == "+" and phone[1:].isascii() and phone[1:].isdigit():  # E.164, nearly always
        return phone[:0:-1]
    return "".join(ch for ch in reversed(phone) if ch in "0123456789") or None


# Stored search keys, derived from the fields in `search_columns`; every write fills them. Keys of
# empty phones and cards are NULL, left out of their (partial) indexes.
SEARCH_COLUMNS = ("search_name", "search_first_name", *(f"{name}_reversed" for name in PHONE_FIELDS), "search_card", "search_card_reversed")


def search_columns(values) -> dict:
    """The search keys for a client's field values (a mapping: a model's __dict__, an import row)."""
    get = values.get
    card = fold(get("card_number") or "") or None
    return {
        "search_name": search_name(get("last_name"), get("first_name"), get("middle_name")),
        "search_first_name": fold(get("first_name") or ""),
        "phone_mobile_reversed": digits_reversed(get("phone_mobile")),
        "phone_home_reversed": digits_reversed(get("phone_home")),
        "phone_work_reversed": digits_reversed(get("phone_work")),
        "search_card": card,
        "search_card_reversed": card and card[::-1],
    }


def search_columns_of(columns: dict[str, list], count: int) -> dict[str, list]:
    """`search_columns` for `count` rows given column by column (None or "" for an empty value): each key folded in
    one call over the whole column."""
    empty = [""] * count
    first_names = fold_all(columns.get("first_name", empty))
    names = fold_all([" ".join(filter(None, parts)) for parts in zip(*(columns.get(name, empty) for name in ("last_name", "first_name", "middle_name")))])
    cards = [card or None for card in fold_all(columns.get("card_number", empty))]
    keys = {"search_name": names, "search_first_name": first_names}
    for name in PHONE_FIELDS:
        keys[f"{name}_reversed"] = digits_reversed_all(columns.get(name, empty))
    keys["search_card"] = cards
    keys["search_card_reversed"] = [card and card[::-1] for card in cards]
    return keys


def digits_reversed_all(phones: list) -> list[str | None]:
    """`digits_reversed` of each phone (None or "" for none): for a column of E.164 numbers, as the importer reads them,
    the whole column reversed at once."""
    joined = "\x00".join([phone or "" for phone in phones])
    numbers = len(phones) - phones.count(None) - phones.count("")
    digits = joined.replace("+", "").replace("\x00", "")
    separated = joined.count("\x00") == max(len(phones) - 1, 0)  # no NUL of a phone's own
    if separated and joined.isascii() and digits.isdecimal() and joined.count("+") == ("\x00" + joined).count("\x00+") == numbers:  # "+" then digits
        return [key or None for key in reversed(joined[::-1].replace("+", "").split("\x00"))]
    reversed_phones = {phone: digits_reversed(phone) for phone in set(phones)}
    return list(map(reversed_phones.__getitem__, phones))


def fold_all(texts: list) -> list[str]:
    """`fold` of each text (None as ""), in one pass: NUL cannot be in the texts, nor appear by folding."""
    return "\x00".join([text or "" for text in texts]).casefold().replace("ё", "е").split("\x00") if texts else []


def prefix_index(name: str, *fields: str, **kwargs) -> models.Index:
    """A btree that answers `prefix` lookups: PostgreSQL's LIKE needs the pattern operator class whatever the collation."""
    return models.Index(fields=list(fields), name=name, opclasses=["varchar_pattern_ops"] * len(fields), **kwargs)


class DictionaryEntry(models.Model):
    """An administrator-managed list item: hidden from forms when inactive, kept on old records."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    is_active = models.BooleanField(_("active"), default=True)
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        abstract = True
        ordering = ["position", "name"]

    def __str__(self):
        return self.name


class AdSource(DictionaryEntry):
    class Meta(DictionaryEntry.Meta):
        verbose_name = _("advertising source")
        verbose_name_plural = _("advertising sources")


class CardType(DictionaryEntry):
    class Meta(DictionaryEntry.Meta):
        verbose_name = _("card type")
        verbose_name_plural = _("card types")


class ClientQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for client in objs:
            client.prepare_for_save()
        return super().bulk_create(objs, *args, **kwargs)


class Client(models.Model):
    class Sex(models.TextChoices):
        MALE = "m", _("male")
        FEMALE = "f", _("female")

    class Importance(models.IntegerChoices):
        LOW = 1, _("low")
        NORMAL = 2, _("normal")
        HIGH = 3, _("high")
        VIP = 4, _("VIP")

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        POTENTIAL = "potential", _("potential")
        INACTIVE = "inactive", _("inactive")

    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    middle_name = models.CharField(_("patronymic"), max_length=100, blank=True)
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices, blank=True)
    birth_day = models.PositiveSmallIntegerField(_("birthday"), null=True, blank=True)
    birth_month = models.PositiveSmallIntegerField(_("birth month"), null=True, blank=True)
    birth_year = models.PositiveSmallIntegerField(_("birth year"), null=True, blank=True)
    phone_mobile = PhoneField(_("mobile phone"), null=True, blank=True)
    phone_home = PhoneField(_("home phone"), null=True, blank=True)
    phone_work = PhoneField(_("work phone"), null=True, blank=True)
    email = models.EmailField(_("email"), blank=True)
    no_sms = models.BooleanField(_("do not send SMS"), default=False)
    city = models.CharField(_("city"), max_length=100, blank=True)
    postcode = models.CharField(_("postcode"), max_length=20, blank=True)
    street = models.CharField(_("street"), max_length=200, blank=True)
    house = models.CharField(_("house"), max_length=20, blank=True)
    building = models.CharField(_("building"), max_length=20, blank=True)
    flat = models.CharField(_("flat"), max_length=20, blank=True)
    # Foreign keys are indexed by the partial indexes in Meta: most clients have none, and an import pays for every entry.
    ad_source = models.ForeignKey(AdSource, models.PROTECT, verbose_name=_("advertising source"), null=True, blank=True, db_index=False)
    card_number = models.CharField(_("card number"), max_length=50, blank=True)
    card_type = models.ForeignKey(CardType, models.PROTECT, verbose_name=_("card type"), null=True, blank=True, db_index=False)
    importance = models.PositiveSmallIntegerField(_("importance"), choices=Importance.choices, null=True, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, blank=True)
    blacklisted = models.BooleanField(_("client is blacklisted"), default=False)
    call_back_on = models.DateField(_("call back on"), null=True, blank=True)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, verbose_name=_("responsible manager"), null=True, blank=True, related_name="managed_clients",
        db_index=False,
    )
    comment = models.TextField(_("comment"), blank=True)
    # Search keys (clients.services.client_search), folded here because SQLite's LOWER and LIKE fold only ASCII.
    search_name = models.CharField(max_length=310, blank=True, editable=False)
    search_first_name = models.CharField(max_length=100, blank=True, editable=False)
    phone_mobile_reversed = models.CharField(max_length=16, null=True, blank=True, editable=False)
    phone_home_reversed = models.CharField(max_length=16, null=True, blank=True, editable=False)
    phone_work_reversed = models.CharField(max_length=16, null=True, blank=True, editable=False)
    search_card = models.CharField(max_length=50, null=True, blank=True, editable=False)
    search_card_reversed = models.CharField(max_length=50, null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ClientQuerySet.as_manager()

    class Meta:
        verbose_name = _("client")
        verbose_name_plural = _("clients")
        ordering = ["last_name", "first_name", "middle_name", "id"]
        # Empty phones, cards and foreign keys are NULL and left out of the partial indexes: a lookup reads only
        # real values, and an import writes no entry for them. A card number is found through search_card, a whole
        # phone number through its reversed digits (clients.services.phone_condition).
        indexes = [
            models.Index(fields=["last_name", "first_name"], name="client_name_idx"),
            *(models.Index(fields=[name], name=f"client_{name}_idx", condition=models.Q(**{f"{name}__isnull": False}))
              for name in FOREIGN_KEYS),
            prefix_index("client_search_name_idx", "search_name"),
            prefix_index("client_search_first_name_idx", "search_first_name"),
            *(prefix_index(f"client_{name.removeprefix('phone_')}_rev_idx", f"{name}_reversed",
                           condition=models.Q(**{f"{name}_reversed__isnull": False}))
              for name in PHONE_FIELDS),
            prefix_index("client_search_card_idx", "search_card", condition=models.Q(search_card__isnull=False)),
            prefix_index("client_search_card_rev_idx", "search_card_reversed", condition=models.Q(search_card_reversed__isnull=False)),
        ]

    def save(self, *args, **kwargs):
        self.prepare_for_save()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], *SEARCH_COLUMNS}
        super().save(*args, **kwargs)

    def prepare_for_save(self) -> None:
        """Phones to E.164 (as typed if they cannot be parsed) and the search keys, before any write."""
        for name in PHONE_FIELDS:
            value = getattr(self, name)
            if value and not (value.startswith("+") and value[1:].isdigit()):
                setattr(self, name, phone_normalize(value) or value)
        for name, value in search_columns(self.__dict__).items():
            setattr(self, name, value)

    def __str__(self):
        return self.full_name or str(self.phones[0] if self.phones else _("client #%(id)s") % {"id": self.pk})

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.last_name, self.first_name, self.middle_name) if part)

    @property
    def phones(self) -> list:
        return [phone for phone in (self.phone_mobile, self.phone_home, self.phone_work) if phone]
