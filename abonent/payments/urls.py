"""The payments pages of the staff console, under ``/staff/payments/``."""

from django.urls import path

from .views import agents

app_name = "payments"
urlpatterns: list = [
    path("agents/", agents.agent_list, name="agents"),
    path("agents/new/", agents.agent_create, name="agent_create"),
    path("agents/<int:pk>/", agents.agent_edit, name="agent_edit"),
    path("agents/<int:pk>/secret/", agents.agent_rotate_secret, name="agent_secret"),
    path("agents/<int:pk>/report/", agents.agent_report, name="agent_report"),
    path("agents/<int:pk>/report.csv", agents.agent_report_csv, name="agent_report_csv"),
    path("agents/<int:pk>/register/", agents.agent_register, name="agent_register"),
]
