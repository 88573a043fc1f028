"""The incident pages of the staff console, under ``/staff/incidents/``."""

from django.urls import path

from . import views

app_name = "incidents"
urlpatterns = [
    path("", views.incident_list, name="list"),
    path("new/", views.incident_new, name="new"),
    path("<int:pk>/", views.incident_detail, name="detail"),
    path("<int:pk>/edit/", views.incident_edit, name="edit"),
    path("<int:pk>/resolve/", views.incident_resolve, name="resolve"),
    path("<int:pk>/message/", views.incident_message, name="message"),
    path("<int:pk>/compensate/", views.incident_compensate, name="compensate"),
]
