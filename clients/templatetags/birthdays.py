from django import template

register = template.Library()


@register.filter
def birthday(client) -> str:
    """The known parts of a birthday as dd.mm.yyyy: "08.08.1964", "08.08" (no year), "1964" (year only)."""
    parts = [f"{client.birth_day:02d}" if client.birth_day else "", f"{client.birth_month:02d}" if client.birth_month else "",
             str(client.birth_year) if client.birth_year else ""]
    return ".".join(part for part in parts if part)
