from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HistoryConfig(AppConfig):
    name = "history"
    verbose_name = _("Call history")

    def ready(self):
        from clients.signals import phones_changed

        phones_changed.connect(attach_calls, dispatch_uid="history.attach_calls")


def attach_calls(sender, *, phones, **kwargs) -> None:
    """Late binding, whenever clients gain or lose numbers (clients cannot import history)."""
    from history.services import calls_attach_by_phones

    calls_attach_by_phones(phones)
