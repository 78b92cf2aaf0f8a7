from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

extension_validator = RegexValidator(r"^\d{2,6}$", _("An extension is 2 to 6 digits."))
channel_validator = RegexValidator(r"^[A-Za-z0-9_-]+/[A-Za-z0-9_.@-]+$", _("A channel looks like PJSIP/100."))


class Operator(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, models.CASCADE, verbose_name=_("user"), related_name="operator")
    extension = models.CharField(_("extension"), max_length=6, unique=True, validators=[extension_validator])
    channel = models.CharField(_("channel"), max_length=80, validators=[channel_validator], help_text=_("The desk phone's channel, e.g. PJSIP/100."))
    available = models.BooleanField(
        _("marked available"), default=False,
        help_text=_("Smart transfer rings this operator's clients here even when no operator page is open."),
    )

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


dialplan_extension_validator = RegexValidator(
    r"^[0-9A-Za-z*#_-]{1,20}$", _("An extension the dialplan can dial: up to 20 digits, letters, *, #, _ or -."),
)


class RouteFallback(models.Model):
    """A step of smart transfer's fallback chain: where a known client's call goes when their manager is away."""

    position = models.PositiveIntegerField(_("position"), default=0)
    extension = models.CharField(_("extension"), max_length=20, validators=[dialplan_extension_validator], help_text=_("An extension or a group the dialplan dials, e.g. 600."))
    is_active = models.BooleanField(_("active"), default=True)
    description = models.CharField(_("description"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("fallback step")
        verbose_name_plural = _("smart transfer fallback chain")
        ordering = ["position", "pk"]

    def __str__(self):
        return f"{self.extension} {self.description}".strip()


class RouteDecision(models.Model):
    """What the dialplan was told for one incoming call, and why (GET /telephony/dialplan/route)."""

    class Reason(models.TextChoices):
        MANAGER = "manager", _("the manager is available")
        MANAGER_AWAY = "manager_away", _("the manager is away: fallback step")
        NEXT_STEP = "next_step", _("next attempt: fallback step")
        CHAIN_END = "chain_end", _("no fallback step left")
        NO_MANAGER = "no_manager", _("the client has no manager")
        SEVERAL = "several", _("several clients with different managers")
        UNKNOWN = "unknown", _("unknown number")
        ERROR = "error", _("error")
        SLOW = "slow", _("too slow")

    linkedid = models.CharField(_("PBX call ID"), max_length=150, blank=True, db_index=True)
    number = models.CharField(_("phone"), max_length=40)
    did = models.CharField(_("number dialled"), max_length=40, blank=True)
    # No constraint in the database: writing a decision down never waits on the client table (a lock there is why it was slow).
    client = models.ForeignKey(
        "clients.Client", models.SET_NULL, verbose_name=_("client"), null=True, blank=True, related_name="+", db_constraint=False,
    )
    attempt = models.PositiveSmallIntegerField(_("attempt"), default=0)
    extension = models.CharField(_("extension"), max_length=20, blank=True)
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    step = models.PositiveSmallIntegerField(_("fallback step"), null=True, blank=True)
    elapsed_ms = models.FloatField(_("time, ms"))
    created_at = models.DateTimeField(_("decided at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("smart transfer decision")
        verbose_name_plural = _("smart transfer decisions")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.number} → {self.extension or '—'} ({self.get_reason_display()})"

    @property
    def why(self) -> str:
        """The reason as a sentence, with the fallback step's number where there is one."""
        reason = self.get_reason_display()
        return f"{reason} {self.step}" if self.step else str(reason)
