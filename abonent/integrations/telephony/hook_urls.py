from django.urls import path

from . import webhook

app_name = "telephony_hooks"

urlpatterns = [path("", webhook.telephony_hook, name="hook")]
