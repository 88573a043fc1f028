"""The console's prepaid cards pages."""

app_name = "vouchers"

urlpatterns: list = []
