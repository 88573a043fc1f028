from django.urls import path

from . import views

app_name = "setup"
urlpatterns = [
    path("", views.index, name="index"),
    path("company/", views.company, name="company"),
    path("taxes/", views.taxes, name="taxes"),
    path("region/", views.region, name="region"),
    path("branches/", views.branches, name="branches"),
    path("branches/next/", views.branches_next, name="branches_next"),
    path("nas/", views.nas, name="nas"),
    path("nas/next/", views.nas_next, name="nas_next"),
    path("plans/", views.plans, name="plans"),
    path("plans/next/", views.plans_next, name="plans_next"),
    path("payments/", views.payments, name="payments"),
    path("done/", views.done_page, name="done"),
    path("banner/", views.banner, name="banner"),
]
