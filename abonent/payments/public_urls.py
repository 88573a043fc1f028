"""What payment channels call from outside, under ``/pay/``: terminal agents' ``check``/``pay``, gateways'
notifications, the fiscal-receipt service's callback. No staff session, no CSRF: each endpoint authenticates
its caller by the channel's own means (agent credentials and address, the provider's networks)."""

from django.urls import path  # noqa: F401

app_name = "pay"
urlpatterns: list = []
