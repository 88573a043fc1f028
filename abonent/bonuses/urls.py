"""The console's bonuses pages."""

app_name = "bonuses"

urlpatterns: list = []
