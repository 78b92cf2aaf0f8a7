from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from clients.models import Client, DictionaryEntry


class CallReason(DictionaryEntry):
    class Meta(DictionaryEntry.Meta):
        verbose_name = _("call reason")
        verbose_name_plural = _("call reasons")


class CallResult(DictionaryEntry):
    class Meta(DictionaryEntry.Meta):
        verbose_name = _("call result")
        verbose_name_plural = _("call results")


class ContactReason(DictionaryEntry):
    class Meta(DictionaryEntry.Meta):
        verbose_name = _("reason for contacting")
        verbose_name_plural = _("reasons for contacting")


class Call(models.Model):
    class Direction(models.TextChoices):
        IN = "in", _("Incoming")
        OUT = "out", _("Outgoing")

    class Disposition(models.TextChoices):
        RINGING = "ringing", _("ringing")
        ANSWERED = "answered", _("answered")
        NO_ANSWER = "no_answer", _("no answer")
        BUSY = "busy", _("busy")
        FAILED = "failed", _("failed")

    class CallerKind(models.TextChoices):
        NEW = "new", _("New client")
        REGULAR = "regular", _("Regular client")
        OTHER = "other", _("Other")

    class Source(models.TextChoices):
        AMI = "ami", "AMI"
        CDR = "cdr", "CDR"

    linkedid = models.CharField(max_length=150, unique=True)
    direction = models.CharField(_("call type"), max_length=3, choices=Direction.choices)
    disposition = models.CharField(_("disposition"), max_length=10, choices=Disposition.choices, default=Disposition.RINGING)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    extension = models.CharField(_("extension"), max_length=32, blank=True)
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, verbose_name=_("operator"), null=True, blank=True, related_name="calls"
    )
    client = models.ForeignKey(Client, models.SET_NULL, verbose_name=_("client"), null=True, blank=True, related_name="calls")
    # Every operator whose phone rang (a ring group, a queue): each was shown the call; `operator` took it.
    rung = models.ManyToManyField(settings.AUTH_USER_MODEL, verbose_name=_("operators rung"), blank=True, related_name="calls_rung")
    caller_kind = models.CharField(_("caller kind"), max_length=10, choices=CallerKind.choices, blank=True)
    started_at = models.DateTimeField(_("started"), db_index=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    duration = models.PositiveIntegerField(_("duration"), default=0)
    billsec = models.PositiveIntegerField(_("billable seconds"), default=0)
    reason = models.ForeignKey(CallReason, models.PROTECT, verbose_name=_("call reason"), null=True, blank=True)
    result = models.ForeignKey(CallResult, models.PROTECT, verbose_name=_("call result"), null=True, blank=True)
    contact_reason = models.ForeignKey(ContactReason, models.PROTECT, verbose_name=_("reason for contacting"), null=True, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    reminder_on = models.DateField(_("personal reminder"), null=True, blank=True)
    registered_at = models.DateTimeField(_("registered"), null=True, blank=True)
    # Set when the operator closed the call's form without registering it: it is no longer "pending".
    dismissed_at = models.DateTimeField(_("dismissed"), null=True, blank=True)
    source = models.CharField(max_length=3, choices=Source.choices, default=Source.AMI)

    class Meta:
        verbose_name = _("call")
        verbose_name_plural = _("calls")
        ordering = ["-started_at"]
        permissions = [
            ("listen_recording", _("Can listen to call recordings")),
            ("view_all_calls", _("Can see every operator's calls")),
        ]
        indexes = [
            models.Index(fields=["phone"], name="call_phone_idx"),
            models.Index(fields=["client", "-started_at"], name="call_client_started_idx"),
            models.Index(fields=["operator", "-started_at"], name="call_operator_started_idx"),
        ]

    def __str__(self):
        return f"{self.get_direction_display()} {self.phone} {self.started_at:%d.%m.%Y %H:%M:%S}"


class Recording(models.Model):
    call = models.ForeignKey(Call, models.CASCADE, verbose_name=_("call"), related_name="recordings")
    file = models.CharField(_("file"), max_length=500)
    duration = models.PositiveIntegerField(_("duration"), default=0)

    class Meta:
        verbose_name = _("recording")
        verbose_name_plural = _("recordings")

    def __str__(self):
        return self.file


class RecordingListen(models.Model):
    """Who listened to which recording, and when: one row per listen, kept when the recording goes."""

    recording = models.ForeignKey(Recording, models.SET_NULL, verbose_name=_("recording"), null=True, related_name="listens")
    file = models.CharField(_("file"), max_length=500)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, verbose_name=_("user"), null=True, related_name="+")
    address = models.GenericIPAddressField(_("address"), null=True, blank=True)
    listened_at = models.DateTimeField(_("listened"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("recording listen")
        verbose_name_plural = _("recording listens")
        ordering = ["-listened_at"]

    def __str__(self):
        return f"{self.user} {self.file} {self.listened_at:%d.%m.%Y %H:%M:%S}"
