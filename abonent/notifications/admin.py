"""Notifications in Django's admin: read only. Templates are edited in the console (checked and audited there)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from abonent.core.admin import ReadOnlyAdmin

from .calculations import shown_text
from .models import BulkMessage, Message, Template


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "event", "channel", "status", "subscriber", "attempts", "error")
    list_filter = ("status", "channel", "event")
    search_fields = ("dedup_key", "subscriber__account_number")
    date_hierarchy = "created_at"
    raw_id_fields = ("subscriber", "bulk")
    # A portal login code is hidden here as in the console (calculations.shown_text).
    exclude = ("subject", "body")
    readonly_fields = ("shown_subject", "shown_body")

    @admin.display(description=_("subject"))
    def shown_subject(self, message):
        return shown_text(message.event, message.subject)

    @admin.display(description=_("text"))
    def shown_body(self, message):
        return shown_text(message.event, message.body)


@admin.register(Template)
class TemplateAdmin(ReadOnlyAdmin):
    list_display = ("event", "channel", "language", "is_active", "updated_at", "updated_by")
    list_filter = ("event", "channel", "language", "is_active")


@admin.register(BulkMessage)
class BulkMessageAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "audience", "audience_label", "channel", "status", "recipients", "created_by")
    list_filter = ("status", "channel")
