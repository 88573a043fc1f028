"""``/staff/portal/``: the staff's side of the portal login (the card panel's buttons)."""

from django.urls import path

from .staff_views import end_sessions, send_code

app_name = "portal_staff"
urlpatterns = [
    path("subscribers/<int:pk>/send-code/", send_code, name="send_code"),
    path("subscribers/<int:pk>/end-sessions/", end_sessions, name="end_sessions"),
]
