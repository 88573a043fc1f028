"""The notifications pages of the staff console, under ``/staff/notifications/``."""

from django.urls import path  # noqa: F401

app_name = "notifications"
urlpatterns: list = []
