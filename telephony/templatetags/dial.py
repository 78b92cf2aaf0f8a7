from django import template
from django.utils.html import format_html
from django.utils.translation import gettext as _

from clients.phones import phone_display

register = template.Library()


@register.simple_tag(takes_context=True)
def dial(context, phone, client=None) -> str:
    """The phone as shown, and for an operator a «Позвонить» button that click-to-calls it (operator.js)."""
    if not phone:
        return ""
    shown = phone_display(phone)
    user = context.get("user")
    if user is None or getattr(user, "operator", None) is None:
        return format_html('<span class="phone">{}</span>', shown)
    label = _("Call %(phone)s") % {"phone": shown}
    return format_html(
        '<span class="phone">{}</span> <button type="button" class="dial" data-dial="{}" data-shown="{}" data-client="{}" title="{}" aria-label="{}">☎</button>',
        shown, phone, shown, getattr(client, "pk", client) or "", label, label,
    )
