"""The helpdesk's reference data in the Django admin: queues, SLA policies, working calendars and holidays. Tickets
themselves change only through the console (audited actions); their SLA events are read-only here."""

from django.contrib import admin

from .models import Holiday, Queue, SlaEvent, SlaPolicy, WorkingCalendar, WorkingHours


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ("name", "supervisor")
    filter_horizontal = ("members",)


class WorkingHoursInline(admin.TabularInline):
    model = WorkingHours
    extra = 0
    max_num = 7


@admin.register(WorkingCalendar)
class WorkingCalendarAdmin(admin.ModelAdmin):
    list_display = ("name", "around_the_clock")
    inlines = [WorkingHoursInline]


@admin.register(Holiday)
class HolidayAdmin(admin.ModelAdmin):
    list_display = ("date", "name")
    date_hierarchy = "date"


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = ("category", "priority", "first_response_minutes", "resolution_minutes", "calendar")
    list_filter = ("priority",)


@admin.register(SlaEvent)
class SlaEventAdmin(admin.ModelAdmin):
    list_display = ("ticket", "kind", "recipient", "created_at")
    list_filter = ("kind",)
    raw_id_fields = ("ticket",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
