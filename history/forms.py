from django import forms
from django.utils.translation import gettext_lazy as _


class CallFilterForm(forms.Form):
    since = forms.DateField(label=_("Show from"), required=False, widget=forms.DateInput(attrs={"placeholder": "дд.мм.гггг"}))
