"""Payments in Django's admin: read only. Money moves through the actions and the console, never here."""

from django.contrib import admin

from abonent.core.admin import ReadOnlyAdmin

from .models import CashDay, Payment, PaymentConflict, Refund


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "channel", "external_id", "method", "amount", "status", "subscriber", "taken_by")
    list_filter = ("status", "method", "channel")
    search_fields = ("external_id", "account_ref", "payer", "subscriber__account_number")
    date_hierarchy = "received_at"
    list_select_related = ("subscriber", "taken_by")
    raw_id_fields = ("subscriber", "taken_by", "transaction", "assign_transaction", "cancel_transaction")


@admin.register(PaymentConflict)
class PaymentConflictAdmin(ReadOnlyAdmin):
    list_display = ("payment", "amount", "account_ref", "times", "last_at", "resolved_at")
    list_filter = ("resolved_at",)
    raw_id_fields = ("payment", "resolved_by")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "payment", "amount", "status", "reason", "created_by")
    list_filter = ("status",)
    raw_id_fields = ("payment", "transaction", "reversal_transaction", "created_by")


@admin.register(CashDay)
class CashDayAdmin(ReadOnlyAdmin):
    list_display = ("date", "cashier", "closed_at", "payments_total", "cancelled_total", "refunds_total", "net_total")
    list_filter = ("date",)
    list_select_related = ("cashier",)
