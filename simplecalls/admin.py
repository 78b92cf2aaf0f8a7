"""The admin speaks correct Russian: a verb takes the model's name in the accusative.

Django's admin builds «Добавить %s», «Изменить %s», «Выберите %s для изменения» with the
nominative verbose name («Добавить причина звонка»). `RussianNamesMixin` puts `name_accusative`
there instead («Добавить причину звонка»); templates/admin/ uses it for the add button and the
breadcrumbs. Its msgids carry the context "accusative", so English keeps the plain name.
"""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.utils.translation import gettext, pgettext_lazy


class RussianNamesMixin:
    """For a ModelAdmin: `name_accusative = pgettext_lazy("accusative", "<verbose name>")`."""

    name_accusative = None

    def accusative(self) -> str:
        return str(self.name_accusative or self.opts.verbose_name)

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"name_accusative": self.accusative(), **(extra_context or {})})

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        if changelist.is_popup:
            title = gettext("Select %s")
        elif self.has_change_permission(request):
            title = gettext("Select %s to change")
        else:
            title = gettext("Select %s to view")
        changelist.title = title % self.accusative()
        return changelist

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if add:
            title = gettext("Add %s")
        elif self.has_change_permission(request, obj):
            title = gettext("Change %s")
        else:
            title = gettext("View %s")
        context.update(title=title % self.accusative(), name_accusative=self.accusative())
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def render_delete_form(self, request, context):
        if context.get("perms_lacking") or context.get("protected"):
            # The page then says «Удаление %(object_name)s …», which wants the genitive: left as Django has it.
            context["title"] = gettext("Cannot delete %(name)s") % {"name": self.accusative()}
        else:
            context["object_name"] = self.accusative()
        return super().render_delete_form(request, context)


# Django's own users and groups, with the same grammar.
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class SimpleCallsUserAdmin(RussianNamesMixin, UserAdmin):
    name_accusative = pgettext_lazy("accusative", "user")


@admin.register(Group)
class SimpleCallsGroupAdmin(RussianNamesMixin, GroupAdmin):
    name_accusative = pgettext_lazy("accusative", "group")
