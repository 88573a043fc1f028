"""The console's pricing page, under ``/staff/pricing/``."""

from django.urls import path

from . import views

app_name = "pricing"
urlpatterns = [
    path("", views.page, name="page"),
    path("group-prices/", views.add_group_price, name="add_group_price"),
    path("group-prices/<int:override_id>/end/", views.end_group_price, name="end_group_price"),
    path("promotions/", views.add_promotion, name="add_promotion"),
    path("promotions/<int:promotion_id>/end/", views.end_promotion, name="end_promotion"),
    path("bundles/", views.add_bundle, name="add_bundle"),
]
