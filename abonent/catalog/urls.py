from django.urls import path
from django.views.generic import RedirectView

from . import views

app_name = "catalog"
urlpatterns = [
    path("", RedirectView.as_view(pattern_name="catalog:plans", permanent=False)),
    path("plans/", views.plan_list, name="plans"),
    path("plans/export/", views.plan_list_export, name="plans_export"),
    path("plans/new/", views.plan_create, name="plan_create"),
    path("plans/<int:pk>/", views.plan_detail, name="plan"),
    path("plans/<int:pk>/prices/", views.price_add, name="price_add"),
    path("turbos/", views.turbo_list, name="turbos"),
    path("turbos/new/", views.turbo_create, name="turbo_create"),
    path("turbos/<int:pk>/edit/", views.turbo_edit, name="turbo_edit"),
    path("services/", views.service_list, name="services"),
]
