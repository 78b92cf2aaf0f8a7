from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from clients.models import Client
from simplecalls.admin import RussianNamesMixin
from telephony.health import pbx_check
from telephony.models import Operator, RouteDecision, RouteFallback
from telephony.presence import operator_present
from telephony.transfer import route_decide


@admin.register(Operator)
class OperatorAdmin(RussianNamesMixin, admin.ModelAdmin):
    name_accusative = pgettext_lazy("accusative", "operator")
    list_display = ["extension", "user", "channel", "available", "page_open"]
    list_editable = ["available"]
    search_fields = ["extension", "user__username", "user__last_name"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]

    @admin.display(boolean=True, description=_("operator page open"))
    def page_open(self, operator):
        return operator_present(operator.user_id)

    def get_urls(self):
        check_view = self.admin_site.admin_view(self.pbx_check_view)
        return [path("check/", check_view, name="telephony_operator_check"), *super().get_urls()]

    def pbx_check_view(self, request):
        """The setup self-test of `pbx_check`; a POST also rings the chosen operator's phone (needs the right to change operators)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        may_ring = self.has_change_permission(request)
        form = TestOriginateForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and not may_ring:
            raise PermissionDenied
        ring = form.cleaned_data["operator"] if form.is_valid() else None
        verdicts = list(pbx_check(originate_to=ring.user.get_username() if ring else None))
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": _("PBX check"), "verdicts": verdicts,
            "failed": sum(verdict.failed for verdict in verdicts), "form": form if may_ring else None,
        }
        return TemplateResponse(request, "admin/telephony/operator/pbx_check.html", context)


class TestOriginateForm(forms.Form):
    operator = forms.ModelChoiceField(Operator.objects.select_related("user"), label=_("Operator"), help_text=_("Their desk phone rings; whoever picks up hears a test message."))


class RouteTryForm(forms.Form):
    number = forms.CharField(label=_("Caller's number"), max_length=64)
    did = forms.CharField(label=_("Number dialled (DID)"), max_length=40, required=False)
    attempt = forms.IntegerField(label=_("Attempt"), min_value=0, max_value=20, initial=0, required=False, help_text=_("0 for the dialplan's first ask, 1 after that extension did not answer, and so on."))


@admin.register(RouteFallback)
class RouteFallbackAdmin(RussianNamesMixin, admin.ModelAdmin):
    """The fallback chain, and a page that shows what the route would answer for a number (written down nowhere)."""

    name_accusative = pgettext_lazy("accusative", "fallback step")
    list_display = ["extension", "description", "is_active", "position"]
    list_editable = ["is_active", "position"]
    list_display_links = ["extension"]

    def get_urls(self):
        try_view = self.admin_site.admin_view(self.try_number)
        return [path("try/", try_view, name="telephony_routefallback_try"), *super().get_urls()]

    def try_number(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = RouteTryForm(request.GET or None)
        decision = None
        if form.is_valid():
            data = form.cleaned_data
            decision = route_decide(
                number=data["number"], did=data["did"], attempt=data["attempt"] or 0, budget_ms=settings.DIALPLAN_BUDGET_MS, store=False,
            )
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": _("Try a number"), "form": form,
            "decision": decision, "budget_ms": settings.DIALPLAN_BUDGET_MS,
            "client": Client.objects.filter(pk=decision.client_id).first() if decision and decision.client_id else None,
        }
        return TemplateResponse(request, "admin/telephony/routefallback/try.html", context)


@admin.register(RouteDecision)
class RouteDecisionAdmin(RussianNamesMixin, admin.ModelAdmin):
    """What the dialplan was told and why: an audit log, read only."""

    name_accusative = pgettext_lazy("accusative", "smart transfer decision")
    list_display = ["created_at", "number", "did", "client", "extension", "why", "elapsed_ms", "linkedid"]
    list_filter = ["reason", "created_at"]
    search_fields = ["number", "linkedid", "extension"]
    date_hierarchy = "created_at"
    list_select_related = ["client"]
    raw_id_fields = ["client"]

    @admin.display(description=_("reason"))
    def why(self, decision):
        return decision.why

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
