"""The dunning pages of the staff console, under ``/staff/dunning/``."""

from django.urls import path  # noqa: F401

app_name = "dunning"
urlpatterns: list = []
