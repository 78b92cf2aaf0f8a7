from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _

from history.recordings import recording_path

register = template.Library()


@register.simple_tag(takes_context=True)
def recording_player(context, recording) -> str:
    """An inline player for the recording, for a user allowed to listen; otherwise why there is none."""
    user = context.get("user")
    if user is None or not user.has_perm("history.listen_recording"):
        return format_html('<span class="muted">{}</span>', _("No access"))
    if recording_path(recording) is None:
        return format_html('<span class="muted recording-missing">{}</span>', _("recording unavailable"))
    return format_html(
        '<audio controls preload="none" src="{}" aria-label="{}" style="width: 9.5rem; height: 2rem"></audio>',
        reverse("history:recording_audio", args=[recording.pk]), _("Listen to the recording"),
    )
