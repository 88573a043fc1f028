"""The notifications pages of the staff console, under ``/staff/notifications/``."""

from django.urls import path

from . import views_telegram
from .views import bulk, card, outbox, templates

app_name = "notifications"
urlpatterns = [
    path("", outbox.outbox, name="outbox"),
    path("subscriber/<int:subscriber_pk>/", outbox.outbox, name="subscriber_log"),
    path("messages/<int:pk>/retry/", outbox.retry, name="retry"),
    path("templates/", templates.template_list, name="templates"),
    path("templates/preview/", templates.template_preview, name="template_preview"),
    path("templates/<str:event>/<str:channel>/<str:language>/", templates.template_edit, name="template_edit"),
    path("templates/<str:event>/<str:channel>/<str:language>/reset/", templates.template_reset, name="template_reset"),
    path("bulk/", bulk.bulk_list, name="bulk_list"),
    path("bulk/new/", bulk.bulk_new, name="bulk_new"),
    path("bulk/<int:pk>/cancel/", bulk.bulk_cancel, name="bulk_cancel"),
    path("subscriber/<int:pk>/preferences/", card.preferences, name="preferences"),
    path("subscribers/<int:pk>/telegram-link/", views_telegram.telegram_link, name="telegram_link"),
]
