from django import forms
from django.conf import settings
from django.db import models
from phonenumber_field.formfields import PhoneNumberField as PhoneNumberFormField


TYPED_MAX_LENGTH = 32  # as clients.phones.phone_e164 accepts


class PhoneField(models.CharField):
    """A phone number stored as a plain E.164 string; its form field accepts any national form.

    Plain strings keep lookups and bulk imports free of per-row parsing; numbers are normalised where
    they come in (forms, the importer, caller IDs) by clients.phones.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 16)
        super().__init__(*args, **kwargs)

    def formfield(self, **kwargs):
        # A plain input shows back exactly what was typed when the form has an error.
        widget = forms.TextInput(attrs={"type": "tel"})
        # The column's 16 characters hold E.164; what people type ("+7 (903) 123-45-67") is longer.
        return super().formfield(**{
            "form_class": PhoneNumberFormField, "region": settings.PHONE_REGION, "widget": widget, "max_length": TYPED_MAX_LENGTH, **kwargs,
        })

    def to_python(self, value):
        # A form hands over a PhoneNumber; str() of it is E.164 (PHONENUMBER_DEFAULT_FORMAT).
        return value if value is None else str(value)
