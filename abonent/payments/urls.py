"""The payments pages of the staff console, under ``/staff/payments/``."""

from django.urls import path

from .views import gateway, receipts

app_name = "payments"
urlpatterns: list = [
    path("gateways/", gateway.gateways_page, name="gateways"),
    path("receipts/", receipts.receipt_list, name="receipts"),
    path("receipts/<int:pk>/retry/", receipts.receipt_retry, name="receipt_retry"),
]
