import datetime

from django import forms
from django.utils.translation import gettext_lazy as _

from clients.models import AdSource, CardType, Client


def active_choices(model, current_id):
    """Active entries, plus the one already on the record even if it was since deactivated."""
    return model.objects.filter(is_active=True) | model.objects.filter(pk=current_id)


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
        self.fields["ad_source"].queryset = active_choices(AdSource, self.instance.ad_source_id)
        self.fields["card_type"].queryset = active_choices(CardType, self.instance.card_type_id)

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
