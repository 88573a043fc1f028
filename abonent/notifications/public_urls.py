"""Public endpoints of the notifications app, under ``/notifications/``: the unsubscribe link of e-mails and the
Telegram bot's webhook."""

from django.urls import path  # noqa: F401

app_name = "notifications_public"
urlpatterns: list = []
