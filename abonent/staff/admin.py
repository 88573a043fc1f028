from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.utils.translation import gettext_lazy as _

from abonent.core.admin import AuditedAdmin

from .models import ApiToken, StaffUser


class StaffUserCreationForm(AdminUserCreationForm):
    class Meta:
        model = StaffUser
        fields = ("username", "full_name", "role")


class StaffUserChangeForm(UserChangeForm):
    class Meta:
        model = StaffUser
        fields = "__all__"


@admin.register(StaffUser)
class StaffUserAdmin(AuditedAdmin, UserAdmin):
    form = StaffUserChangeForm
    add_form = StaffUserCreationForm
    list_display = ("username", "full_name", "role", "is_active", "is_service_account", "last_login")
    list_filter = ("role", "is_active", "is_service_account", "branches")
    search_fields = ("username", "full_name", "email")
    ordering = ("username",)
    filter_horizontal = ("branches",)
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Person"), {"fields": ("full_name", "email")}),
        (_("Access"), {"fields": ("role", "branches", "is_active", "is_service_account")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "full_name", "role", "usable_password", "password1", "password2"),
            },
        ),
    )
    readonly_fields = ("last_login", "date_joined")

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            from abonent.core import audit

            user = StaffUser.objects.get(pk=id)
            audit.record(actor=request.user, action="admin.staffuser_password_changed", obj=user)
        return response


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created with ``abonent create_api_token`` (the plaintext is shown once); here they are revoked."""

    list_display = ("name", "user", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("revoked_at",)
    readonly_fields = ("user", "name", "prefix", "created_at", "last_used_at")
    exclude = ("token_hash",)
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request, queryset):
        from .actions import do_revoke_api_token

        for token in queryset:
            do_revoke_api_token(
                token=token, acting_user=request.user, reason=str(_("Revoked in the administration site"))
            )
