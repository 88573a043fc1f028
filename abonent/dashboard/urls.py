"""The dashboard under ``/staff/dashboard/``: the console's home page."""

from django.urls import path

from . import views

app_name = "dashboard"
urlpatterns = [
    path("", views.home, name="home"),
    path("widgets/", views.widgets, name="widgets"),
]
