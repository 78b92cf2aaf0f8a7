from django.contrib import admin

from clients.admin import DictionaryAdmin
from history.models import Call, CallReason, CallResult, ContactReason, Recording

admin.site.register(CallReason, DictionaryAdmin)
admin.site.register(CallResult, DictionaryAdmin)
admin.site.register(ContactReason, DictionaryAdmin)


class RecordingInline(admin.TabularInline):
    model = Recording
    extra = 0


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = ["started_at", "direction", "disposition", "phone", "extension", "operator", "client", "registered_at"]
    list_filter = ["direction", "disposition", "source"]
    search_fields = ["phone", "linkedid", "client__last_name"]
    date_hierarchy = "started_at"
    list_select_related = ["operator", "client"]
    raw_id_fields = ["client", "operator"]
    inlines = [RecordingInline]
