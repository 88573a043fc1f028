from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from abonent.core.admin import ReadOnlyAdmin
from abonent.staff.models import ApiToken

from .actions import check_radius_account, do_bind_api_token_to_nas, do_unbind_api_token_from_nas
from .models import ApiTokenNas, RadiusToken


class ApiTokenNasForm(forms.ModelForm):
    class Meta:
        model = ApiTokenNas
        fields = ("token", "nas")

    def clean(self):
        cleaned = super().clean()
        token = cleaned.get("token")
        if token is not None:
            try:
                check_radius_account(token.user)
            except ValidationError as exc:
                self.add_error("token", exc)
        return cleaned


@admin.register(ApiTokenNas)
class ApiTokenNasAdmin(admin.ModelAdmin):
    """Which NAS each RADIUS service token speaks for. A new token comes from ``abonent create_radius_token``
    (its plaintext is shown once); here a NAS is added to or taken from an existing one. Writes go through
    the actions, which check the account and leave an audit row."""

    form = ApiTokenNasForm
    list_display = ("token", "token_user", "nas", "nas_address", "created_at")
    list_filter = ("nas",)
    list_select_related = ("token__user", "nas")
    search_fields = ("token__name", "token__prefix", "token__user__username", "nas__name", "nas__ip_address")

    @admin.display(description=_("service account"))
    def token_user(self, obj):
        return obj.token.user

    @admin.display(description=_("IP address"))
    def nas_address(self, obj):
        return obj.nas.ip_address

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "token":
            # Live tokens of service accounts: a person's token never speaks for a NAS.
            kwargs["queryset"] = ApiToken.objects.filter(
                revoked_at__isnull=True, user__is_service_account=True, user__is_active=True
            ).select_related("user")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        # A binding is added or removed, never moved to another token or NAS in place.
        return False

    def save_model(self, request, obj, form, change):
        binding = do_bind_api_token_to_nas(obj.token, nas=obj.nas, acting_user=request.user)
        obj.pk, obj.created_at = binding.pk, binding.created_at

    def delete_model(self, request, obj):
        do_unbind_api_token_from_nas(obj, acting_user=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(RadiusToken)
class RadiusTokenAdmin(ReadOnlyAdmin):
    """Which tokens are RADIUS front-ends' (read-only). The mark is set when a token is first bound to a NAS and
    never removed (that would give an unbound token its account's role again): without a NAS such a token opens
    nothing (``auth.TokenAuth``); revoke it in *API tokens*."""

    list_display = ("token", "token_user", "created_at", "token_revoked_at")
    list_select_related = ("token__user",)
    search_fields = ("token__name", "token__prefix", "token__user__username")

    @admin.display(description=_("service account"))
    def token_user(self, obj):
        return obj.token.user

    @admin.display(description=_("revoked"))
    def token_revoked_at(self, obj):
        return obj.token.revoked_at
