from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from abonent.api.errors import not_found_view
from abonent.api.urls import api
from abonent.core.metrics import metrics_view
from abonent.core.views import healthz
from abonent.staff.views import admin_login_view

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard:home", permanent=False)),
    # The admin's own login form has no rate limiting: send everyone through the console's login (and those signed
    # in whom the admin refused to the 403 page, not round in circles).
    path("staff/admin/login/", admin_login_view),
    path("staff/admin/", admin.site.urls),
    path("staff/", include("abonent.staff.urls")),
    path("staff/subscribers/", include("abonent.subscribers.urls")),
    path("staff/subscribers/<int:pk>/billing/", include("abonent.billing.urls")),
    path("staff/catalog/", include("abonent.catalog.urls")),
    path("staff/pricing/", include("abonent.billing.pricing.urls")),
    path("staff/network/", include("abonent.network.urls")),
    path("staff/payments/", include("abonent.payments.urls")),
    path("staff/dunning/", include("abonent.dunning.urls")),
    path("staff/notifications/", include("abonent.notifications.urls")),
    path("staff/helpdesk/", include("abonent.helpdesk.urls")),
    path("staff/incidents/", include("abonent.helpdesk.incidents.urls")),
    path("staff/fieldwork/", include("abonent.fieldwork.urls")),
    path("staff/vouchers/", include("abonent.vouchers.urls")),
    path("staff/bonuses/", include("abonent.bonuses.urls")),
    path("staff/documents/", include("abonent.documents.urls")),
    path("staff/reports/", include("abonent.reports.urls")),
    path("staff/bulk/", include("abonent.bulk.urls")),
    path("staff/imports/", include("abonent.imports.urls")),
    path("staff/dashboard/", include("abonent.dashboard.urls")),
    path("staff/setup/", include("abonent.setup.urls")),
    path("staff/integrations/", include("abonent.integrations.webhooks.urls")),
    path("staff/telephony/", include("abonent.integrations.telephony.urls")),
    path("staff/lawful/", include("abonent.integrations.lawful.urls")),
    path("hooks/telephony/", include("abonent.integrations.telephony.hook_urls")),
    path("notifications/", include("abonent.notifications.public_urls")),
    path("pay/", include("abonent.payments.public_urls")),
    path("staff/portal/", include("abonent.portal.staff_urls")),
    path("my/", include("abonent.portal.urls")),
    path("api/v1/", api.urls),
    path("api/docs", RedirectView.as_view(url="/api/v1/docs", permanent=False)),
    re_path(r"^api/", not_found_view),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
]

# The console's own 403 page: which permission is missing and which roles hold it (templates/403.html).
handler403 = "abonent.staff.views.permission_denied"

admin.site.site_header = "Abonent"
admin.site.site_title = "Abonent"
admin.site.site_url = "/staff/dashboard/"
