"""What payment channels call from outside, under ``/pay/``: terminal agents' ``check``/``pay``, gateways'
notifications, the fiscal-receipt service's callback. No staff session, no CSRF: each endpoint authenticates
its caller by the channel's own means (agent credentials and address, the provider's networks, or by asking
the provider again what the notice claims: gateway notifications, the ATOL callback)."""

from django.urls import path

from .views import gateway, receipts
from .views.terminals import agent_protocol

app_name = "pay"
urlpatterns: list = [
    # Terminal networks and bank apps (the check/pay protocol): https://<host>/pay/agents/<code>/
    path("agents/<str:code>/", agent_protocol, name="agent"),
    path("atol/callback", receipts.atol_callback, name="atol_callback"),
    # YooKassa: https://<host>/pay/yookassa/notifications, entered in the shop's "HTTP notifications" settings.
    path("<slug:provider>/notifications", gateway.notification, name="gateway_notification"),
]
