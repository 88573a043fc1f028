"""Public endpoints of the notifications app, under ``/notifications/``: the unsubscribe link of e-mails and the
Telegram bot's webhook."""

from django.urls import path

from . import views_public

app_name = "notifications_public"
urlpatterns: list = [
    path("unsubscribe/<str:token>/", views_public.unsubscribe, name="unsubscribe"),
    path("telegram/webhook", views_public.telegram_webhook, name="telegram_webhook"),
]
