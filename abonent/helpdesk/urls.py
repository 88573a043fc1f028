"""The helpdesk pages of the staff console, under ``/staff/helpdesk/``."""

from django.urls import path

from . import views, views_sla

app_name = "helpdesk"
urlpatterns = [
    path("", views.ticket_list, name="list"),
    path("export/", views.ticket_export, name="export"),
    path("<int:pk>/", views.ticket_detail, name="ticket"),
    path("<int:pk>/reply/", views.ticket_reply, name="reply"),
    path("<int:pk>/status/", views.ticket_status, name="status"),
    path("subscribers/<int:pk>/open/", views.ticket_open, name="open"),
    path("<int:pk>/route/", views_sla.ticket_route, name="route"),
    path("attachments/<int:pk>/", views_sla.attachment_download, name="attachment"),
    path("sla/", views_sla.sla_report, name="sla_report"),
]
