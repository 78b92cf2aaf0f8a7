"""Reads and writes of the client base; views, importers and the listener call these."""

from django.db.models import Q, QuerySet

from clients.models import Client
from clients.phones import phone_normalize




def phone_condition(e164: str) -> Q:
    """One OR over the three indexed phone columns: the planner answers it from their indexes."""
    return Q(phone_mobile=e164) | Q(phone_home=e164) | Q(phone_work=e164)


def clients_with_phone(e164: str) -> QuerySet[Client]:
    # Unordered: sorting by name would tempt the planner to walk the name index instead.
    return Client.objects.filter(phone_condition(e164)).order_by().select_related("card_type", "ad_source")


def client_find_by_phone(raw: str) -> list[Client]:
    """Every client with this number in any of their phones, whatever form the caller ID takes."""
    e164 = phone_normalize(raw)
    if not e164:
        return []
    return sorted(clients_with_phone(e164), key=lambda client: (client.full_name, client.pk))


def client_search(query: str) -> QuerySet[Client]:
    """Clients whose name, phone or card number matches what an operator typed."""
    query = query.strip()
    clients = Client.objects.select_related("card_type")
    if not query:
        return clients
    condition = Q(card_number__iexact=query)
    if sum(ch.isdigit() for ch in query) >= 5:
        e164 = phone_normalize(query)
        if e164:
            condition |= phone_condition(e164)
    name = Q()
    for word in query.split():
        name &= Q(search_name__contains=word.casefold())
    return clients.filter(condition | name)


def clients_by_phones(e164s: set[str]) -> dict[str, list[Client]]:
    """For each number, the clients who have it: one query for a whole batch of callers."""
    found: dict[str, list[Client]] = {phone: [] for phone in e164s}
    if not found:
        return found
    condition = Q(phone_mobile__in=e164s) | Q(phone_home__in=e164s) | Q(phone_work__in=e164s)
    for client in Client.objects.filter(condition).order_by().select_related("card_type", "ad_source"):
        for phone in set(client.phones) & found.keys():
            found[phone].append(client)
    for clients in found.values():
        clients.sort(key=lambda client: (client.full_name, client.pk))
    return found
