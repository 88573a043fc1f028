"""The subscriber list's export and bulk actions, under ``/staff/bulk/``."""

from django.urls import path

from . import views

app_name = "bulk"
urlpatterns = [
    path("subscribers/export/", views.export, name="export"),
    path("subscribers/", views.subscribers, name="subscribers"),
    path("<int:pk>/", views.action, name="action"),
]
