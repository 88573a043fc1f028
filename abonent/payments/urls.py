"""The payments pages of the staff console, under ``/staff/payments/``."""

from django.urls import path

from .views import gateway

app_name = "payments"
urlpatterns: list = [
    path("gateways/", gateway.gateways_page, name="gateways"),
]
