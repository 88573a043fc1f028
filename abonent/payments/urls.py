"""The payments pages of the staff console, under ``/staff/payments/``."""

from django.urls import path

from .views import agents, autopay, cashdesk, gateway, journal, receipts, statements

app_name = "payments"
urlpatterns = [
    path("agents/", agents.agent_list, name="agents"),
    path("agents/new/", agents.agent_create, name="agent_create"),
    path("agents/<int:pk>/", agents.agent_edit, name="agent_edit"),
    path("agents/<int:pk>/secret/", agents.agent_rotate_secret, name="agent_secret"),
    path("agents/<int:pk>/report/", agents.agent_report, name="agent_report"),
    path("agents/<int:pk>/report.csv", agents.agent_report_csv, name="agent_report_csv"),
    path("agents/<int:pk>/register/", agents.agent_register, name="agent_register"),
    path("subscribers/<int:pk>/autopay/", autopay.autopay, name="autopay"),
    path("subscribers/<int:pk>/autopay/off/", autopay.autopay_off, name="autopay_off"),
    path("subscribers/<int:pk>/methods/<int:mid>/unlink/", autopay.unlink_method, name="unlink_method"),
    path("gateways/", gateway.gateways_page, name="gateways"),
    path("receipts/", receipts.receipt_list, name="receipts"),
    path("receipts/<int:pk>/retry/", receipts.receipt_retry, name="receipt_retry"),
    path("statements/", statements.statement_list, name="statements"),
    path("statements/<int:pk>/", statements.statement_detail, name="statement"),
    path("statements/<int:pk>/lines/<int:line_id>/assign/", statements.assign_line, name="assign_line"),
    path("", journal.journal, name="journal"),
    path("export/", journal.journal_export, name="journal_export"),
    # The address the journal's CSV had before the XLSX export: kept for bookmarks and scripts.
    path("export.csv", journal.journal_csv, name="journal_csv"),
    path("<int:pk>/", journal.payment_card, name="card"),
    path("<int:pk>/refund/", journal.refund, name="refund"),
    path("<int:pk>/cancel/", journal.cancel, name="cancel"),
    path("<int:pk>/assign/", journal.assign, name="assign"),
    path("<int:pk>/return/", journal.return_payment, name="return"),
    path("<int:pk>/receipt/", cashdesk.receipt, name="receipt"),
    path("suspense/", journal.suspense, name="suspense"),
    path("conflicts/", journal.conflicts, name="conflicts"),
    path("conflicts/<int:pk>/resolve/", journal.resolve_conflict, name="resolve_conflict"),
    path("cashdesk/", cashdesk.cashdesk, name="cashdesk"),
    path("cashdesk/take/<int:subscriber_pk>/", cashdesk.take, name="take"),
    path("cashdesk/day/", cashdesk.my_day, name="my_day"),
    path("cashdesk/day/close/", cashdesk.close_day, name="close_day"),
    path("cash-reports/", cashdesk.cash_reports, name="cash_reports"),
    path("cash-reports/<int:cashier_pk>/<str:date>/", cashdesk.cash_report, name="cash_report"),
]
