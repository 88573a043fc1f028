from django.urls import path

from . import views

app_name = "telephony"

urlpatterns = [
    path("events/", views.pop_events, name="events"),
    path("calls/<int:pk>/recording/", views.recording, name="recording"),
    path("calls/<int:pk>/ticket/", views.link_ticket, name="link_ticket"),
    path("kpis/", views.kpis, name="kpis"),
    path("extensions/", views.extensions, name="extensions"),
]
