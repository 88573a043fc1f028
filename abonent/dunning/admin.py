"""Read-only views of dunning's tables for administrators; changes go through the console (audited actions)."""

from django.contrib import admin

from .models import AccessState, AccessTransition, DunningRule, Exemption


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AccessState)
class AccessStateAdmin(ReadOnlyAdmin):
    list_display = ("subscriber", "state", "since", "owed", "runout_on", "exempt")
    list_filter = ("state", "exempt")
    raw_id_fields = ("subscriber",)
    search_fields = ("subscriber__account_number",)


@admin.register(AccessTransition)
class AccessTransitionAdmin(ReadOnlyAdmin):
    list_display = ("subscriber", "from_state", "to_state", "at", "cause", "actor")
    list_filter = ("to_state", "cause")
    raw_id_fields = ("subscriber",)
    search_fields = ("subscriber__account_number",)


@admin.register(Exemption)
class ExemptionAdmin(ReadOnlyAdmin):
    list_display = ("reason", "subscriber", "group", "starts_on", "expires_on", "revoked_at")
    raw_id_fields = ("subscriber",)


@admin.register(DunningRule)
class DunningRuleAdmin(ReadOnlyAdmin):
    list_display = ("name", "group", "plan", "warn_days", "suspend_after_days")
