"""The console's documents pages."""

app_name = "documents"

urlpatterns: list = []
