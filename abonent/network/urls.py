"""The network console under ``/staff/network/``, and the forms of the subscriber card's network panel."""

from django.urls import path
from django.views.generic import RedirectView

from . import views

app_name = "network"
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="network:nas_list", permanent=False)),
    path("nas/", views.nas_list, name="nas_list"),
    path("nas/new/", views.nas_create, name="nas_create"),
    path("nas/<int:pk>/", views.nas_edit, name="nas_edit"),
    path("sessions/", views.session_list, name="sessions"),
    path("pools/", views.pool_list, name="pool_list"),
    path("pools/new/", views.pool_create, name="pool_create"),
    path("subscribers/<int:pk>/logins/", views.login_add, name="login_add"),
    path("subscribers/<int:pk>/logins/<int:login_pk>/password/", views.login_password, name="login_password"),
    path("subscribers/<int:pk>/logins/<int:login_pk>/active/", views.login_active, name="login_active"),
    path(
        "subscribers/<int:pk>/sessions/<int:session_pk>/disconnect/",
        views.session_disconnect,
        name="session_disconnect",
    ),
]
