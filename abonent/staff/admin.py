from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

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

    def clean_is_service_account(self):
        value = self.cleaned_data.get("is_service_account")
        # api.auth.TokenAuth looks for RADIUS tokens on service accounts only: unticked, the account's
        # FreeRADIUS token would open the whole API with its role. Revoke the token first.
        if (
            self.instance.is_service_account
            and not value
            and ApiToken.objects.filter(
                user_id=self.instance.pk, revoked_at__isnull=True, radius_only__isnull=False
            ).exists()
        ):
            raise ValidationError(
                _("This account holds a RADIUS token: revoke it before the account stops being a service account."),
                code="holds_radius_token",
            )
        return value


@admin.register(StaffUser)
class StaffUserAdmin(AuditedAdmin, UserAdmin):
    form = StaffUserChangeForm
    add_form = StaffUserCreationForm
    list_display = (
        "username",
        "full_name",
        "role",
        "is_active",
        "is_service_account",
        "two_factor_enabled",
        "last_login",
    )
    list_filter = ("role", "is_active", "is_service_account", "two_factor_enabled", "branches")
    search_fields = ("username", "full_name", "email")
    ordering = ("username",)
    filter_horizontal = ("branches",)
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Person"), {"fields": ("full_name", "email")}),
        (_("Access"), {"fields": ("role", "branches", "is_active", "is_service_account", "two_factor_enabled")}),
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
    readonly_fields = ("last_login", "date_joined", "two_factor_enabled")
    actions = ["reset_two_factor"]

    @admin.action(description=_("Reset two-factor authentication (lost phone)"))
    def reset_two_factor(self, request, queryset):
        from .two_factor import do_reset_two_factor

        reset = 0
        for user in queryset:
            reset += do_reset_two_factor(
                user, acting_user=request.user, reason=str(_("Reset in the administration site"))
            )
        self.message_user(
            request,
            ngettext(
                "Two-factor authentication was reset for %(count)d user: they set it up again at the next login "
                "if their role requires it.",
                "Two-factor authentication was reset for %(count)d users: they set it up again at the next login "
                "if their role requires it.",
                reset,
            )
            % {"count": reset},
        )

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            from abonent.core import audit

            user = StaffUser.objects.get(pk=id)
            audit.record(actor=request.user, action="admin.staffuser_password_changed", obj=user)
        return response


@admin.register(ApiToken)
class ApiTokenAdmin(AuditedAdmin):
    """Tokens are created with ``abonent create_api_token`` (the plaintext is shown once); here they are revoked.

    Every save is audited with the fields before and after: clearing "revoked" brings a token back to life, and
    moving "expires" lengthens one, both silently before (issue 11).
    """

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


# Authenticators and recovery codes change only through the audited actions in ``two_factor`` (which keep
# ``StaffUser.two_factor_enabled`` in step): the device pages django-otp adds would also show the secrets.
for _model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
