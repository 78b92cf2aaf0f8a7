from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from clients.forms import ClientForm, offer_active
from clients.models import Client
from history.models import Call, CallReason, CallResult, ContactReason

DICTIONARIES = {"contact_reason": ContactReason, "reason": CallReason, "result": CallResult}


class RegistrationForm(forms.ModelForm):
    """The call registration (M6): what the operator says about the call."""

    class Meta:
        model = Call
        fields = ["caller_kind", "contact_reason", "reason", "result", "comment", "reminder_on"]
        widgets = {
            "caller_kind": forms.RadioSelect,
            "comment": forms.Textarea(attrs={"rows": 2}),
            "reminder_on": forms.DateInput(attrs={"placeholder": "дд.мм.гггг"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["caller_kind"].choices = Call.CallerKind.choices
        offer_active(self, DICTIONARIES)
        self.empty_dictionaries = [self.fields[name].label for name in DICTIONARIES if not self.fields[name].listed]

    def clean_reminder_on(self):
        day = self.cleaned_data["reminder_on"]
        if day and day < timezone.localdate():
            raise forms.ValidationError(_("A reminder cannot be in the past."))
        return day


class CallerForm(ClientForm):
    """The caller's details, for creating a client from an unknown number."""

    class Meta(ClientForm.Meta):
        fields = ["last_name", "first_name", "middle_name", "sex", "phone_mobile", "phone_home", "phone_work", "card_number", "card_type", "ad_source"]

    def has_details(self) -> bool:
        """Did the operator type anything beyond the number the call brought?"""
        return any(self.data.get(self.add_prefix(name), "").strip() for name in ("last_name", "first_name", "middle_name", "card_number"))


class ChosenClientForm(forms.Form):
    """The client the operator picked for the call: an id that is not a client's is refused, not a server error."""

    client = forms.ModelChoiceField(queryset=Client.objects.all())


class OriginateForm(forms.Form):
    """POST /telephony/originate/: the phone as shown or typed, and the client it belongs to, if known."""

    phone = forms.CharField(max_length=100, strip=False)
    client = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
