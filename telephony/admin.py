from django.contrib import admin

from telephony.models import Operator


@admin.register(Operator)
class OperatorAdmin(admin.ModelAdmin):
    list_display = ["extension", "user", "channel"]
    search_fields = ["extension", "user__username", "user__last_name"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
