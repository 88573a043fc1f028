from django.urls import path

from . import audit_views, views

app_name = "staff"
urlpatterns = [
    path("", views.login_view, name="login"),
    path("login/", views.login_view, name="login_page"),
    path("login/code/", views.login_code_view, name="login_code"),
    path("logout/", views.logout_view, name="logout"),
    path("two-factor/", views.two_factor_view, name="two_factor"),
    path("two-factor/setup/", views.two_factor_setup_view, name="two_factor_setup"),
    path("two-factor/disable/", views.two_factor_disable_view, name="two_factor_disable"),
    path("audit/", audit_views.audit_list, name="audit"),
    path("audit/export/", audit_views.audit_export, name="audit_export"),
    path("two-factor/recovery-codes/", views.two_factor_recovery_codes_view, name="two_factor_recovery_codes"),
]
