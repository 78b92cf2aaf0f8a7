"""Phone inputs take a number typed with brackets, spaces and dashes: the client form and the pop-up's caller form."""

import pytest

from clients.forms import ClientForm
from telephony.forms import CallerForm

pytestmark = pytest.mark.django_db

TYPED = ["8 (903) 123-45-67", "+7 (903) 123-45-67", "+7 903 123 45 67"]


@pytest.mark.parametrize("form_class", [ClientForm, CallerForm])
@pytest.mark.parametrize("typed", TYPED)
def test_the_input_lets_the_whole_number_be_typed_and_the_form_takes_it(form_class, typed):
    form = form_class({"last_name": "Новикова", "phone_mobile": typed, "phone_home": typed, "phone_work": typed})
    for name in ("phone_mobile", "phone_home", "phone_work"):
        # The browser cuts typing at maxlength: "+7 (903) 123-45-67" is 18 characters, E.164 only 12.
        assert int(form.fields[name].widget.attrs["maxlength"]) >= len(typed)
    assert form.is_valid(), form.errors
    assert {str(form.cleaned_data[name]) for name in ("phone_mobile", "phone_home", "phone_work")} == {"+79031234567"}


@pytest.mark.parametrize("form_class", [ClientForm, CallerForm])
def test_a_number_too_long_to_be_one_is_refused_with_a_message(form_class):
    form = form_class({"last_name": "Новикова", "phone_mobile": "8 (903) 123-45-67 8 (903) 123-45-67"})
    assert not form.is_valid() and form.errors["phone_mobile"]
