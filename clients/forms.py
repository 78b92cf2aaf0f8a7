import datetime

from django import forms
from django.db import connection
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from clients.models import AdSource, CardType, Client, DictionaryEntry

ENTRY_FIELDS = ("id", "name", "is_active", "position")


class ListedChoices(forms.models.ModelChoiceIterator):
    """A dictionary's choices as `offer_active` read them, with the form's other dictionaries, for the form's life.

    Django's own iterator reads them with `.iterator()`, which on PostgreSQL opens a server-side cursor
    (DECLARE, FETCH, CLOSE) each time the select is rendered: three round trips for a handful of rows.
    """

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for entry in self.field.listed:
            yield self.choice(entry)

    def __len__(self):
        return len(self.field.listed) + (self.field.empty_label is not None)


def offer_active(form, dictionaries: dict[str, type[DictionaryEntry]]) -> None:
    """Let each of these fields offer its dictionary's active entries, plus the one already on the record even if it
    was since deactivated; the entries of every dictionary in one plain query, as a pop-up's form is on the hot path."""
    selects, params = [], []
    for number, (name, model) in enumerate(dictionaries.items()):
        current = getattr(form.instance, f"{name}_id")
        field = form.fields[name]
        field.iterator = ListedChoices  # before the queryset: setting it hands the widget its choices
        field.queryset = model.objects.filter(Q(is_active=True) | Q(pk=current))  # what a submitted choice is checked against
        field.listed = []
        selects.append(f"SELECT {number}, id, name, is_active, position FROM {connection.ops.quote_name(model._meta.db_table)} WHERE is_active OR id = %s")
        params.append(current)
    if not selects:
        return
    fields = [(form.fields[name], model) for name, model in dictionaries.items()]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(selects) + " ORDER BY 1, 5, 3", params)  # each dictionary as its Meta.ordering says
        for number, *values in cursor.fetchall():
            field, model = fields[number]
            field.listed.append(model(**dict(zip(ENTRY_FIELDS, values))))


class ClientForm(forms.ModelForm):
    class Meta:
        model = Client
        fields = [
            "last_name", "first_name", "middle_name", "sex",
            "birth_day", "birth_month", "birth_year",
            "phone_mobile", "phone_home", "phone_work", "email", "no_sms",
            "city", "postcode", "street", "house", "building", "flat",
            "ad_source", "card_number", "card_type",
            "importance", "status", "blacklisted", "call_back_on", "manager", "comment",
        ]
        widgets = {
            "call_back_on": forms.DateInput(attrs={"placeholder": "дд.мм.гггг"}),
            "comment": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        attrs = {"birth_day": {"min": 1, "max": 31}, "birth_month": {"min": 1, "max": 12}}
        attrs |= dict.fromkeys(("phone_mobile", "phone_home", "phone_work"), {"placeholder": "+7 495 789-45-61"})
        for name, field in self.fields.items():
            field.widget.attrs.update(attrs.get(name, {}))
        offer_active(self, {name: model for name, model in (("ad_source", AdSource), ("card_type", CardType)) if name in self.fields})

    def clean(self):
        cleaned = super().clean()
        day, month, year = cleaned.get("birth_day"), cleaned.get("birth_month"), cleaned.get("birth_year")
        if day is not None and not 1 <= day <= 31:
            self.add_error("birth_day", _("A day is a number from 1 to 31."))
        if month is not None and not 1 <= month <= 12:
            self.add_error("birth_month", _("A month is a number from 1 to 12."))
        if year is not None and not 1900 <= year <= datetime.date.today().year:
            self.add_error("birth_year", _("Enter a year between 1900 and this year."))
        if day and month and not self.errors:
            try:
                datetime.date(year or 2000, month, day)
            except ValueError:
                self.add_error("birth_day", _("There is no such day in that month."))
        if not any(cleaned.get(name) for name in ("last_name", "first_name", "phone_mobile", "phone_home", "phone_work", "card_number")):
            raise forms.ValidationError(_("Enter at least a name, a phone number or a card number."))
        return cleaned
