"""The payments pages of the staff console, under ``/staff/payments/``."""

from django.urls import path

from .views import autopay

app_name = "payments"
urlpatterns: list = [
    path("subscribers/<int:pk>/autopay/", autopay.autopay, name="autopay"),
    path("subscribers/<int:pk>/autopay/off/", autopay.autopay_off, name="autopay_off"),
    path("subscribers/<int:pk>/methods/<int:mid>/unlink/", autopay.unlink_method, name="unlink_method"),
]
