"""The console's bonuses pages."""

from .views import urlpatterns  # noqa: F401

app_name = "bonuses"
