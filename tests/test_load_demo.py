import io

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from clients.models import Client
from clients.services import client_find_by_phone
from telephony.models import Operator

pytestmark = pytest.mark.django_db


def test_the_demo_has_clients_operators_and_working_printed_passwords():
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    assert 45 <= Client.objects.count() <= 60
    assert dict(Operator.objects.values_list("user__username", "extension")) == {"operator1": "100", "operator2": "101"}
    for line in out.getvalue().splitlines():
        if line.strip().startswith(("operator1", "operator2", "admin")):
            username, password = line.split()[:2]
            assert authenticate(username=username, password=password) is not None
    assert [c.last_name for c in client_find_by_phone("84957894561")] == ["Савицкая"]
    assert len(client_find_by_phone("74993690439")) == 2


def test_loading_the_demo_twice_adds_nobody():
    call_command("load_demo", stdout=io.StringIO())
    call_command("load_demo", stdout=io.StringIO())
    assert Client.objects.count() == 50
