"""(filled by its area)"""

from django.shortcuts import render
from django.urls import path


def placeholder(request):
    return render(request, "portal/base.html", {})


urlpatterns = [path("requests/", placeholder, name="requests")]
