from django.contrib import admin

from clients.forms import ClientForm
from clients.models import AdSource, CardType, Client


class DictionaryAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "position"]
    list_editable = ["is_active", "position"]
    list_filter = ["is_active"]
    search_fields = ["name"]


admin.site.register(AdSource, DictionaryAdmin)
admin.site.register(CardType, DictionaryAdmin)


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    form = ClientForm
    list_display = ["__str__", "phone_mobile", "card_number", "card_type", "blacklisted", "call_back_on"]
    list_filter = ["blacklisted", "card_type", "status", "importance"]
    search_fields = ["last_name", "first_name", "card_number", "phone_mobile", "phone_home", "phone_work"]
    list_select_related = ["card_type"]
    autocomplete_fields = ["manager"]
