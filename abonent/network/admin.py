"""The network models in Django's admin at /staff/admin/.

NAS and IP pools are reference data and may be edited here (audited by ``AuditedAdmin``). Logins are
subscriber data and go through the console's actions (which also feed the RADIUS processes' policy-change
feed); sessions, traffic, authentication attempts, CoA requests and RADIUS processes are written by the
RADIUS server and the worker. Those are read-only here.

Secrets are never shown: the NAS shared secret is write-only (blank on edit keeps it), and the encrypted
columns are not in any form or list.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from abonent.core.admin import AuditedAdmin, ReadOnlyAdmin

from .actions import MIN_SECRET_LENGTH, note_policy_change
from .models import AuthAttempt, CoaRequest, IpPool, Login, Nas, RadiusNode, Session, UsageDay


class NasAdminForm(forms.ModelForm):
    new_secret = forms.CharField(
        label=_("Shared secret"),
        required=False,
        strip=False,
        min_length=MIN_SECRET_LENGTH,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Leave empty to keep the current secret. It is never shown."),
    )

    class Meta:
        model = Nas
        fields = (
            "name",
            "ip_address",
            "vendor",
            "new_secret",
            "require_message_authenticator",
            "coa_port",
            "interim_interval",
            "debtor_address_list",
            "debtor_pool",
            "is_active",
        )

    def clean(self):
        data = super().clean()
        if not self.instance.pk and not data.get("new_secret"):
            self.add_error("new_secret", _("A new NAS needs a shared secret."))
        return data

    def save(self, commit=True):
        if self.cleaned_data.get("new_secret"):
            self.instance.set_secret(self.cleaned_data["new_secret"])
        return super().save(commit)


@admin.register(Nas)
class NasAdmin(AuditedAdmin):
    form = NasAdminForm
    list_display = ("name", "ip_address", "vendor", "require_message_authenticator", "is_active")
    list_filter = ("vendor", "is_active", "require_message_authenticator")
    search_fields = ("name", "ip_address")


@admin.register(IpPool)
class IpPoolAdmin(AuditedAdmin):
    list_display = ("name", "network", "kind")
    list_filter = ("kind",)
    search_fields = ("name", "network")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change:
            # The pool's name is part of each login's RADIUS policy (Framed-Pool).
            note_policy_change(Login.objects.filter(pool=obj).values_list("subscriber_id", flat=True))


@admin.register(Login)
class LoginAdmin(ReadOnlyAdmin):
    list_display = ("username", "kind", "subscriber", "static_ip", "pool", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("username", "static_ip", "subscriber__account_number")
    list_select_related = ("subscriber", "pool")
    raw_id_fields = ("subscriber", "subscription")
    exclude = ("password_encrypted",)


@admin.register(Session)
class SessionAdmin(ReadOnlyAdmin):
    list_display = ("username", "nas", "framed_ip", "calling_station_id", "status", "started_at", "stopped_at")
    list_filter = ("status", "nas")
    search_fields = ("username", "framed_ip", "calling_station_id", "acct_session_id")
    list_select_related = ("nas",)
    raw_id_fields = ("login", "subscriber")
    date_hierarchy = "started_at"
    show_full_result_count = False  # COUNT(*) over every session ever is not cheap


@admin.register(UsageDay)
class UsageDayAdmin(ReadOnlyAdmin):
    list_display = ("subscriber", "day", "input_octets", "output_octets")
    raw_id_fields = ("subscriber",)
    date_hierarchy = "day"
    show_full_result_count = False


@admin.register(AuthAttempt)
class AuthAttemptAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "username", "nas", "outcome", "reason", "calling_station_id")
    list_filter = ("outcome", "reason", "nas")
    search_fields = ("username", "calling_station_id")
    list_select_related = ("nas",)
    raw_id_fields = ("subscriber",)
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(CoaRequest)
class CoaRequestAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "nas", "kind", "reason", "status", "attempts", "error_cause", "finished_at")
    list_filter = ("status", "kind", "reason", "nas")
    list_select_related = ("nas",)
    raw_id_fields = ("session", "subscriber")
    date_hierarchy = "created_at"


@admin.register(RadiusNode)
class RadiusNodeAdmin(ReadOnlyAdmin):
    list_display = ("node", "started_at", "updated_at", "accounting_queue", "spool_backlog")
