from django import template

register = template.Library()


@register.filter
def hms(seconds) -> str:
    """A duration in seconds as HH:MM:SS: 75 → "00:01:15"."""
    seconds = int(seconds or 0)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
