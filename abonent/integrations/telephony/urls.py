from django.urls import path

from . import views

app_name = "telephony"

urlpatterns = [
    path("events/", views.pop_events, name="events"),
    path("calls/<int:pk>/recording/", views.recording, name="recording"),
    path("kpis/", views.kpis, name="kpis"),
    path("extensions/", views.extensions, name="extensions"),
]
