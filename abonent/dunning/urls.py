"""The dunning pages of the staff console, under ``/staff/dunning/``."""

from django.urls import path

from .views import card, exemptions, queue, rules

app_name = "dunning"
urlpatterns = [
    path("", queue.queue, name="queue"),
    path("queue.csv", queue.queue_csv, name="queue_csv"),
    path("exemptions/", exemptions.exemption_list, name="exemptions"),
    path("exemptions/<int:pk>/revoke/", exemptions.exemption_revoke, name="exemption_revoke"),
    path("rules/", rules.rule_list, name="rules"),
    path("rules/new/", rules.rule_edit, name="rule_create"),
    path("rules/<int:pk>/", rules.rule_edit, name="rule_edit"),
    path("rules/<int:pk>/delete/", rules.rule_delete, name="rule_delete"),
    path("subscribers/<int:pk>/block/", card.block, name="block"),
    path("subscribers/<int:pk>/unblock/", card.unblock, name="unblock"),
    path("subscribers/<int:pk>/terminate/", card.terminate, name="terminate"),
    path("subscribers/<int:pk>/reinstate/", card.reinstate, name="reinstate"),
    path("subscribers/<int:pk>/exemptions/", card.exemption_add, name="card_exemption_add"),
    path(
        "subscribers/<int:pk>/exemptions/<int:exemption_pk>/revoke/",
        card.exemption_revoke,
        name="card_exemption_revoke",
    ),
]
