from django.conf import settings
from django.utils.translation import gettext_lazy as _

CALL_TEXTS = {
    "ringing": _("ringing"), "answered": _("answered"), "no_answer": _("no answer"), "busy": _("busy"), "failed": _("failed"),
    "ended": _("call ended"), "seconds": _("s"), "unknown": _("number unknown"), "register": _("Register"),
    "incoming": _("Incoming call"), "queued": _("Calls waiting: %s"), "taken": _("%s took this call"),
}


def call_texts(request):
    """Words the pop-up script shows, in the page's language, and whether the demo control is on."""
    return {"call_texts": {key: str(value) for key, value in CALL_TEXTS.items()}, "demo": settings.DEMO}
