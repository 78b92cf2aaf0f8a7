from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

extension_validator = RegexValidator(r"^\d{2,6}$", _("An extension is 2 to 6 digits."))
channel_validator = RegexValidator(r"^[A-Za-z0-9_-]+/[A-Za-z0-9_.@-]+$", _("A channel looks like PJSIP/100."))


class Operator(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, models.CASCADE, verbose_name=_("user"), related_name="operator")
    extension = models.CharField(_("extension"), max_length=6, unique=True, validators=[extension_validator])
    channel = models.CharField(_("channel"), max_length=80, validators=[channel_validator], help_text=_("The desk phone's channel, e.g. PJSIP/100."))

    class Meta:
        verbose_name = _("operator")
        verbose_name_plural = _("operators")
        ordering = ["extension"]

    def __str__(self):
        return f"{self.user.get_full_name() or self.user.get_username()} ({self.extension})"


class ListenerLease(models.Model):
    """Which `pbx_listen` writes for a PBX. Every write checks the epoch in its own transaction."""

    name = models.CharField(max_length=200, primary_key=True)
    holder = models.CharField(max_length=200, blank=True)
    epoch = models.BigIntegerField(default=0)
    expires_at = models.DateTimeField()
    taken_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("listener lease")
        verbose_name_plural = _("listener leases")

    def __str__(self):
        return f"{self.name}: {self.holder} (epoch {self.epoch})"
