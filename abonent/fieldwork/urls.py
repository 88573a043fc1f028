"""The field-work pages of the staff console, under ``/staff/fieldwork/``."""

from django.urls import path

from . import views

app_name = "fieldwork"
urlpatterns = [
    path("stock/", views.stock, name="stock"),
    path("stock/models/", views.model_create, name="model_create"),
    path("stock/receive/", views.receive, name="receive"),
    path("stock/devices/<int:pk>/", views.device, name="device"),
    path("stock/devices/<int:pk>/<str:move>/", views.device_move, name="device_move"),
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/new/", views.job_create, name="job_create"),
    path("jobs/checklists/", views.checklists, name="checklists"),
    path("jobs/<int:pk>/", views.job, name="job"),
    path("jobs/<int:pk>/issue/", views.job_issue, name="job_issue"),
    path("jobs/<int:pk>/reschedule/", views.job_reschedule, name="job_reschedule"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("jobs/<int:pk>/close/", views.job_close, name="job_close"),
    path("my-day/", views.my_day, name="my_day"),
]
