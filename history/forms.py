import datetime

from django import forms
from django.contrib.auth import get_user_model
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from history.models import Call

DATE_PLACEHOLDER = {"placeholder": "дд.мм.гггг"}


def with_defaults(query: QueryDict, defaults: dict[str, str]) -> QueryDict:
    """The query string with every missing or empty filter set to its default, so the form shows what is applied."""
    data = query.copy()
    for name, value in defaults.items():
        if not data.get(name, "").strip():
            data[name] = value
    return data


def shown(day: datetime.date) -> str:
    return day.strftime("%d.%m.%Y")


def year_before(day: datetime.date) -> datetime.date:
    """The same date a year earlier; 29 February becomes the 28th."""
    if (day.month, day.day) == (2, 29):
        day = day.replace(day=28)
    return day.replace(year=day.year - 1)


class OperatorChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, user):
        return user.get_full_name() or user.get_username()


class CallFilterForm(forms.Form):
    """The all-calls list's filters; `operator` only for those who see every operator's calls."""

    PERIOD_DAYS = 30
    OUTCOMES = [("", _("Any outcome")), ("answered", _("Answered")), ("missed", _("Missed: no answer, busy, failed"))]

    since = forms.DateField(label=_("Period from"), required=False, widget=forms.DateInput(attrs=DATE_PLACEHOLDER))
    until = forms.DateField(label=_("to"), required=False, widget=forms.DateInput(attrs=DATE_PLACEHOLDER))
    operator = OperatorChoiceField(label=_("Operator"), queryset=None, required=False, empty_label=_("All operators"))
    direction = forms.ChoiceField(label=_("Call type"), choices=[("", _("Any type")), *Call.Direction.choices], required=False)
    outcome = forms.ChoiceField(label=_("Outcome"), choices=OUTCOMES, required=False)
    party = forms.CharField(label=_("Phone or client"), required=False, max_length=100)

    def __init__(self, query: QueryDict, *, choose_operator: bool):
        today = timezone.localdate()
        self.defaults = {"since": today - datetime.timedelta(days=self.PERIOD_DAYS), "until": today}
        super().__init__(with_defaults(query, {name: shown(day) for name, day in self.defaults.items()}))
        if choose_operator:
            users = get_user_model().objects.filter(is_active=True).order_by("last_name", "first_name", "username")
            self.fields["operator"].queryset = users
        else:
            del self.fields["operator"]

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end of the period is before its start."))
        return cleaned

    def filters(self) -> dict:
        """The valid filters as `calls_filter` takes them; a field typed wrong falls back to its default."""
        self.is_valid()
        data = self.cleaned_data
        operator = data.get("operator")
        return {
            "since": data.get("since") or self.defaults["since"],
            "until": data.get("until") or self.defaults["until"],
            "operator_id": operator.pk if operator else None,
            "direction": data.get("direction", ""),
            "outcome": data.get("outcome", ""),
            "party": data.get("party", ""),
        }


class ClientHistoryForm(forms.Form):
    """«Отображать с» and «Отображать все звонки» of the client's service history."""

    since = forms.DateField(label=_("Show from"), required=False, widget=forms.DateInput(attrs=DATE_PLACEHOLDER))
    all = forms.BooleanField(label=_("Show all calls"), required=False)

    def __init__(self, query: QueryDict):
        self.default_since = year_before(timezone.localdate())
        super().__init__(with_defaults(query, {"since": shown(self.default_since)}))

    def filters(self) -> dict:
        self.is_valid()
        return {"since": self.cleaned_data.get("since") or self.default_since, "everything": self.cleaned_data.get("all", False)}
