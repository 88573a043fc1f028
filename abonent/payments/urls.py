"""The payments pages of the staff console, under ``/staff/payments/``."""

from django.urls import path

from .views import gateway, receipts, statements

app_name = "payments"
urlpatterns: list = [
    path("gateways/", gateway.gateways_page, name="gateways"),
    path("receipts/", receipts.receipt_list, name="receipts"),
    path("receipts/<int:pk>/retry/", receipts.receipt_retry, name="receipt_retry"),
    path("statements/", statements.statement_list, name="statements"),
    path("statements/<int:pk>/", statements.statement_detail, name="statement"),
    path("statements/<int:pk>/lines/<int:line_id>/assign/", statements.assign_line, name="assign_line"),
]
