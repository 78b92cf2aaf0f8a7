from django.contrib import admin
from django.utils.translation import pgettext_lazy

from clients.forms import ClientForm
from clients.models import AdSource, CardType, Client
from simplecalls.admin import RussianNamesMixin


class DictionaryAdmin(RussianNamesMixin, admin.ModelAdmin):
    list_display = ["name", "is_active", "position"]
    list_editable = ["is_active", "position"]
    list_filter = ["is_active"]
    search_fields = ["name"]


@admin.register(AdSource)
class AdSourceAdmin(DictionaryAdmin):
    name_accusative = pgettext_lazy("accusative", "advertising source")


@admin.register(CardType)
class CardTypeAdmin(DictionaryAdmin):
    name_accusative = pgettext_lazy("accusative", "card type")


@admin.register(Client)
class ClientAdmin(RussianNamesMixin, admin.ModelAdmin):
    name_accusative = pgettext_lazy("accusative", "client")
    form = ClientForm
    list_display = ["__str__", "phone_mobile", "card_number", "card_type", "blacklisted", "call_back_on"]
    list_filter = ["blacklisted", "card_type", "status", "importance"]
    search_fields = ["last_name", "first_name", "card_number", "phone_mobile", "phone_home", "phone_work"]
    list_select_related = ["card_type"]
    autocomplete_fields = ["manager"]
