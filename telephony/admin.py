from django.contrib import admin
from django.utils.translation import pgettext_lazy

from simplecalls.admin import RussianNamesMixin
from telephony.models import Operator


@admin.register(Operator)
class OperatorAdmin(RussianNamesMixin, admin.ModelAdmin):
    name_accusative = pgettext_lazy("accusative", "operator")
    list_display = ["extension", "user", "channel"]
    search_fields = ["extension", "user__username", "user__last_name"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
