"""The portal's home page, ``/my/``: balance, how long it lasts, the next charge, access and what to do about it,
the plans and the connection. Read by ``home_data.home_of`` (a pinned number of queries, tests/portal)."""

from django.shortcuts import render
from django.urls import path

from ..home_data import home_of


def home(request):
    return render(request, "portal/home.html", {"home": home_of(request.subscriber)})


urlpatterns = [path("", home, name="home")]
