from django.contrib import admin

from abonent.core.admin import AuditedAdmin

from .models import SubscriberGroup


@admin.register(SubscriberGroup)
class SubscriberGroupAdmin(AuditedAdmin):
    list_display = ("name", "description")
    search_fields = ("name",)
