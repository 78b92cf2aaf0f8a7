from django.db.models import QuerySet

from history.models import Call


def call_visible_to(user) -> QuerySet[Call]:
    """Operators see their own calls; staff see every call."""
    calls = Call.objects.select_related("operator", "client", "reason", "result")
    return calls if user.is_staff else calls.filter(operator=user)
