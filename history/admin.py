from django.contrib import admin
from django.utils.translation import pgettext_lazy

from clients.admin import DictionaryAdmin
from history.models import Call, CallReason, CallResult, ContactReason, Recording, RecordingListen
from simplecalls.admin import RussianNamesMixin


@admin.register(CallReason)
class CallReasonAdmin(DictionaryAdmin):
    name_accusative = pgettext_lazy("accusative", "call reason")


@admin.register(CallResult)
class CallResultAdmin(DictionaryAdmin):
    name_accusative = pgettext_lazy("accusative", "call result")


@admin.register(ContactReason)
class ContactReasonAdmin(DictionaryAdmin):
    name_accusative = pgettext_lazy("accusative", "reason for contacting")


class RecordingInline(admin.TabularInline):
    model = Recording
    extra = 0


@admin.register(Call)
class CallAdmin(RussianNamesMixin, admin.ModelAdmin):
    name_accusative = pgettext_lazy("accusative", "call")
    list_display = ["started_at", "direction", "disposition", "phone", "extension", "operator", "client", "registered_at"]
    list_filter = ["direction", "disposition", "source"]
    search_fields = ["phone", "linkedid", "client__last_name"]
    date_hierarchy = "started_at"
    list_select_related = ["operator", "client"]
    raw_id_fields = ["client", "operator"]
    inlines = [RecordingInline]


@admin.register(RecordingListen)
class RecordingListenAdmin(RussianNamesMixin, admin.ModelAdmin):
    """Who listened to which recording: an audit log, read only, for whoever may view it."""

    name_accusative = pgettext_lazy("accusative", "recording listen")

    list_display = ["user", "file", "listened_at", "address"]
    list_filter = ["listened_at", ("user", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["file", "user__username", "user__last_name"]
    date_hierarchy = "listened_at"
    list_select_related = ["user"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
