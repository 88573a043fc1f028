"""The network console under ``/staff/network/``, and the forms of the subscriber card's network panel."""

from django.urls import path
from django.views.generic import RedirectView

from .views import nas, panel, pools, sessions, traffic

app_name = "network"
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="network:nas_list", permanent=False)),
    path("nas/", nas.nas_list, name="nas_list"),
    path("nas/export/", nas.nas_export, name="nas_export"),
    path("nas/new/", nas.nas_create, name="nas_create"),
    path("nas/<int:pk>/", nas.nas_card, name="nas_card"),
    path("nas/<int:pk>/edit/", nas.nas_edit, name="nas_edit"),
    path("sessions/", sessions.session_list, name="sessions"),
    path("sessions/export/", sessions.session_export, name="sessions_export"),
    path("sessions/<int:pk>/disconnect/", sessions.session_disconnect, name="session_disconnect_one"),
    path("sessions/<int:pk>/coa/", sessions.session_coa, name="session_coa"),
    path("coa/<int:pk>/", sessions.coa_status, name="coa_status"),
    path("pools/", pools.pool_list, name="pool_list"),
    path("pools/new/", pools.pool_create, name="pool_create"),
    path("traffic/", traffic.traffic, name="traffic"),
    path("subscribers/<int:pk>/logins/", panel.login_add, name="login_add"),
    path("subscribers/<int:pk>/logins/<int:login_pk>/password/", panel.login_password, name="login_password"),
    path("subscribers/<int:pk>/logins/<int:login_pk>/active/", panel.login_active, name="login_active"),
    path(
        "subscribers/<int:pk>/sessions/<int:session_pk>/disconnect/",
        panel.session_disconnect,
        name="session_disconnect",
    ),
]
