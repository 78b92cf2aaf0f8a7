import re

import pytest
from django.urls import reverse

from clients.models import Client

pytestmark = pytest.mark.django_db


def card(operator_client, **fields) -> str:
    client = Client.objects.create(last_name="Савицкая", **fields)
    return operator_client.get(reverse("clients:detail", args=[client.pk])).content.decode()


def birthday(page: str) -> str:
    return re.search(r"<dt>День рождения</dt><dd>(.*?)</dd>", page).group(1)


def test_the_calls_heading_is_capitalised(operator_client):
    assert '<h2 class="section">Звонки</h2>' in card(operator_client)


@pytest.mark.parametrize(("day", "month", "year", "shown"), [
    (8, 8, 1964, "08.08.1964"),
    (25, 12, 1990, "25.12.1990"),
    (8, 8, None, "08.08"),
    (None, None, 1964, "1964"),
    (None, 3, 1964, "03.1964"),
    (None, None, None, ""),
])
def test_the_birthday_reads_dd_mm_yyyy_or_whatever_part_is_known(operator_client, day, month, year, shown):
    page = card(operator_client, birth_day=day, birth_month=month, birth_year=year)
    assert birthday(page) == shown
