"""The finance pages under ``/staff/reports/``."""

from django.urls import path

from . import debtors_views, views

app_name = "reports"
urlpatterns = [
    path("receivables/", views.receivables_page, name="receivables"),
    path("receivables/export/", views.receivables_export, name="receivables_export"),
    path("billing-runs/", views.billing_runs, name="billing_runs"),
    path("billing-runs/export/", views.billing_runs_export, name="billing_runs_export"),
    path("billing-runs/<int:pk>/", views.billing_run, name="billing_run"),
    path("ledger/", views.ledger, name="ledger"),
    path("ledger/verify/", views.ledger_verify, name="ledger_verify"),
    path("debtors/", debtors_views.debtors_page, name="debtors"),
    path("debtors/export/", debtors_views.debtors_export, name="debtors_export"),
    # The business reports (pages.py): one page and one export for each registered report.
    path("r/<slug:slug>/", views.report_page, name="report"),
    path("r/<slug:slug>/export/", views.report_export, name="report_export"),
]
