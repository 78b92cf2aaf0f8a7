from django import template

from clients.phones import phone_display

register = template.Library()


@register.filter
def phone(e164) -> str:
    """"+74957894561" → "+7 495 789-45-61"."""
    return phone_display(e164 or "")
