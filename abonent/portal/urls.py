"""``/my/``: the subscriber's cabinet. Each area's views module lists its own routes."""

from .views import (
    auth,
    bonuses,
    cards,
    documents,
    home,
    pay,
    plans,
    profile,
    pwa,
    requests,
    services,
    time_online,
    usage,
)

app_name = "portal"
urlpatterns = [
    *auth.urlpatterns,
    *home.urlpatterns,
    *pay.urlpatterns,
    *documents.urlpatterns,
    *cards.urlpatterns,
    *bonuses.urlpatterns,
    *plans.urlpatterns,
    *services.urlpatterns,
    *usage.urlpatterns,
    *time_online.urlpatterns,
    *requests.urlpatterns,
    *profile.urlpatterns,
    *pwa.urlpatterns,
]
