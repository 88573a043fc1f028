"""The console's prepaid cards pages."""

from .views import urlpatterns  # noqa: F401

app_name = "vouchers"
