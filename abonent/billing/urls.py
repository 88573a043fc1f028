"""Billing on the subscriber card, under ``/staff/subscribers/<pk>/billing/``."""

from django.urls import path

from . import views

app_name = "billing"
urlpatterns = [
    path("adjustments/", views.adjust, name="adjust"),
    path("ledger/", views.ledger_panel, name="ledger_panel"),
    path("credit-limit/", views.set_credit_limit, name="credit_limit"),
    path("promised-payments/", views.take_promised_payment, name="promised_payment"),
    path("promised-payments/preview/", views.promised_preview, name="promised_preview"),
    path("subscriptions/", views.activate, name="activate"),
    path("subscriptions/<int:sid>/plan-change/preview/", views.plan_change_preview, name="plan_change_preview"),
    path("subscriptions/<int:sid>/plan-change/", views.change_plan, name="plan_change"),
    path("subscriptions/<int:sid>/freeze/preview/", views.freeze_preview, name="freeze_preview"),
    path("subscriptions/<int:sid>/freeze/", views.freeze, name="freeze"),
    path("subscriptions/<int:sid>/unfreeze/", views.unfreeze, name="unfreeze"),
    path("subscriptions/<int:sid>/terminate/", views.terminate, name="terminate"),
    path("subscriptions/<int:sid>/turbo/", views.turbo, name="turbo"),
    path("subscriptions/<int:sid>/turbo/end/", views.turbo_end, name="turbo_end"),
    path("subscriptions/<int:sid>/time-package/", views.time_package, name="time_package"),
    path("subscriptions/<int:sid>/price/", views.price_override, name="price_override"),
    path("subscriptions/<int:sid>/price/end/", views.price_override_end, name="price_override_end"),
    path("subscriptions/<int:sid>/charges/", views.charges, name="charges"),
    path("subscriptions/<int:sid>/charges/<int:cid>/reversal/", views.reverse_charge, name="reverse_charge"),
]
