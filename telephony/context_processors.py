from django.conf import settings
from django.utils.translation import gettext_lazy as _

CALL_TEXTS = {
    "ringing": _("ringing"), "answered": _("answered"), "no_answer": _("no answer"), "busy": _("busy"), "failed": _("failed"),
    "ended": _("call ended"), "seconds": _("s"), "unknown": _("number unknown"), "register": _("Register"),
    "incoming": _("Incoming call"), "queued": _("Calls waiting: %s"), "taken": _("%s took this call"),
    "call": _("Call"), "saved": _("Call registered."),
    "saveEmpty": _("Nothing is chosen or typed in the form. Register the call anyway?"),
    "discard": _("Close the form? What you typed will be lost."),
    "clearPending": _("Close every call in this list without registering it?"),
}
# How a call ended, in «Calls while you were away».
OUTCOME_TEXTS = {
    "answered": _("answered"), "outgoing": _("outgoing"), "missed": _("missed"), "unanswered": _("not answered"),
    "busy": _("busy"), "failed": _("failed"),
}
# A click-to-call's stages and failures (telephony.events.outgoing_stage, services.call_originate_failed).
ORIGINATE_TEXTS = {
    "dialling": _("Connecting…"), "operator_ringing": _("Your phone is ringing: pick it up"),
    "calling": _("Calling the client…"), "connected": _("Connected"), "ended": _("Call ended"),
    "no_answer": _("The client did not answer"), "busy": _("The client's line is busy"),
    "failed": _("The call could not go through"), "operator_no_answer": _("Your phone did not answer"),
    "operator_busy": _("Your phone is busy"), "operator_failed": _("Your phone cannot be reached"),
    "unreachable": _("The PBX cannot be reached"), "refused": _("The PBX refused the call"),
    "failure": _("Could not start the call"),
}


def call_texts(request):
    """Words the pop-up script shows, in the page's language, and whether the demo control is on."""
    texts = {key: str(value) for key, value in CALL_TEXTS.items()}
    texts["originate"] = {key: str(value) for key, value in ORIGINATE_TEXTS.items()}
    texts["outcomes"] = {key: str(value) for key, value in OUTCOME_TEXTS.items()}
    return {"call_texts": texts, "demo": settings.DEMO}
