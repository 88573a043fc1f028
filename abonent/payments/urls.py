"""The payments pages of the staff console, under ``/staff/payments/``."""

from django.urls import path  # noqa: F401

app_name = "payments"
urlpatterns: list = []
