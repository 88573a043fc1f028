"""Reference data managed by administrators in Django's admin at /staff/admin/.

Subscriber data is never edited here: those writes go through the actions and the console. What is
here (branches, groups, staff users) is still audited, by ``AuditedAdmin``.
"""

from django.apps import apps
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from . import audit
from .models import AuditEvent, Branch


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows only written by the application (sessions, the audit log, service marks): shown, never edited here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AuditedAdmin(admin.ModelAdmin):
    def save_model(self, request, obj, form, change):
        before = audit.snapshot(type(obj).objects.get(pk=obj.pk)) if change else {}
        super().save_model(request, obj, form, change)
        # Both sides as stored: the form's values differ in form, not in value (a date-time typed in the local zone
        # against the same moment read back in UTC), and would show as a change.
        old, new = audit.diff(before, audit.snapshot(type(obj).objects.get(pk=obj.pk)))
        label = obj._meta.model_name
        audit.record(
            actor=request.user,
            action=f"admin.{label}_{'changed' if change else 'created'}",
            obj=obj,
            before=old,
            after=new,
        )

    def save_related(self, request, form, formsets, change):
        # Many-to-many fields (a user's branches) are saved here, after save_model: audit their change too.
        obj = form.instance
        names = [f.name for f in obj._meta.many_to_many if f.name in form.cleaned_data]
        before = {n: sorted(getattr(obj, n).values_list("pk", flat=True)) for n in names} if change else {}
        super().save_related(request, form, formsets, change)
        after = {n: sorted(getattr(obj, n).values_list("pk", flat=True)) for n in names}
        old, new = audit.diff(before, after) if change else ({}, after)
        if new and (old or any(new.values())):
            audit.record(
                actor=request.user,
                action=f"admin.{obj._meta.model_name}_relations_changed",
                obj=obj,
                before=old,
                after=new,
            )

    def delete_model(self, request, obj):
        audit.record(
            actor=request.user, action=f"admin.{obj._meta.model_name}_deleted", obj=obj, before=audit.snapshot(obj)
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(Branch)
class BranchAdmin(AuditedAdmin):
    list_display = ("name", "code", "is_active")
    search_fields = ("name", "code")


class ActionFilter(admin.SimpleListFilter):
    """The audit list's filter by action, each named for people (``audit.action_label``), not by its code."""

    title = _("action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        visible = AuditEvent.objects.exclude(audit.sealed_for(request.user))
        actions = visible.order_by().values_list("action", flat=True).distinct()
        return sorted(((a, audit.action_label(a)) for a in actions), key=lambda choice: choice[1])

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_label", "action_name", "object_name", "object_repr")
    list_filter = (ActionFilter,)
    search_fields = ("actor_label", "object_repr", "object_id", "reason")

    @admin.display(description=_("action"), ordering="action")
    def action_name(self, event: AuditEvent) -> str:
        return audit.action_label(event.action)

    @admin.display(description=_("object type"), ordering="object_type")
    def object_name(self, event: AuditEvent) -> str:
        try:
            return str(apps.get_model(event.object_type)._meta.verbose_name)
        except (LookupError, ValueError):
            return event.object_type

    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(audit.sealed_for(request.user))
