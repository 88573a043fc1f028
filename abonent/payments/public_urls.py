"""What payment channels call from outside, under ``/pay/``: terminal agents' ``check``/``pay``, gateways'
notifications, the fiscal-receipt service's callback. No staff session, no CSRF: each endpoint authenticates
its caller by the channel's own means (agent credentials and address, the provider's networks)."""

from django.urls import path

from .views.terminals import agent_protocol

app_name = "pay"
urlpatterns: list = [
    path("agents/<str:code>/", agent_protocol, name="agent"),
]
