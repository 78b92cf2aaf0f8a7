from django import template

from telephony.models import RouteDecision

register = template.Library()


@register.inclusion_tag("telephony/route_decisions.html")
def route_decisions(call) -> dict:
    """What smart transfer told the dialplan for this call (matched by its linkedid), oldest first."""
    decisions = RouteDecision.objects.filter(linkedid=call.linkedid).select_related("client").order_by("created_at", "pk") if call.linkedid else []
    return {"decisions": decisions}
