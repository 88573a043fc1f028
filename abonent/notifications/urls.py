"""The notifications pages of the staff console, under ``/staff/notifications/``."""

from django.urls import path

from . import views_telegram

app_name = "notifications"
urlpatterns: list = [
    path("subscribers/<int:pk>/telegram-link/", views_telegram.telegram_link, name="telegram_link"),
]
