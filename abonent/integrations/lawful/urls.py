"""The lawful-interception pages of the staff console, under ``/staff/lawful/``."""

from django.urls import path

from . import views

app_name = "lawful"
urlpatterns = [
    path("", views.requests, name="requests"),
    path("new/", views.create, name="create"),
    path("<int:pk>/download/", views.download, name="download"),
]
