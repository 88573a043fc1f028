"""The console's import wizard, under ``/staff/imports/``."""

from django.urls import path

from . import views

app_name = "imports"
urlpatterns = [
    path("", views.jobs, name="jobs"),
    path("new/", views.upload, name="upload"),
    path("<int:pk>/", views.job, name="job"),
    path("<int:pk>/mapping/", views.mapping, name="mapping"),
    path("<int:pk>/options/", views.options, name="options"),
    path("<int:pk>/progress/", views.progress, name="progress"),
    path("<int:pk>/report/", views.report, name="report"),
    path("<int:pk>/run/", views.confirm, name="confirm"),
    path("<int:pk>/result/", views.result, name="result"),
    path("<int:pk>/problems/", views.problems_export, name="problems_export"),
    path("<int:pk>/subscribers/", views.subscribers, name="subscribers"),
]
