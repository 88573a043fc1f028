"""(filled by its area)"""

from django.shortcuts import render
from django.urls import path

from ..middleware import public


def placeholder(request):
    return render(request, "portal/base.html", {})


urlpatterns = [path("manifest.webmanifest", public(placeholder), name="manifest")]
