from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class IdempotencyRecord(models.Model):
    """The stored answer to one API write sent with an ``Idempotency-Key`` header.

    A retry with the same key and the same body gets the stored answer and writes nothing; the same key
    with a different body is refused (409). The unique ``(user, key)`` pair decides races between retries.
    """

    # Whose request it was: a staff user's token, or a subscriber's (the portal's API, ``/api/v1/my/``).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+")
    subscriber = models.ForeignKey("subscribers.Subscriber", null=True, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="api_idempotency_user_key_uniq"),
            models.UniqueConstraint(
                fields=["subscriber", "key"],
                name="api_idempotency_subscriber_key_uniq",
                condition=models.Q(subscriber__isnull=False),
            ),
            models.CheckConstraint(
                condition=models.Q(user__isnull=False, subscriber__isnull=True)
                | models.Q(user__isnull=True, subscriber__isnull=False),
                name="api_idempotency_one_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id or 's' + str(self.subscriber_id)}:{self.key}"


class RadiusToken(models.Model):
    """One API token that is a RADIUS front-end's: it speaks only for the NAS it is bound to (``ApiTokenNas``).

    The mark outlives the bindings. Without it a token whose last NAS was unbound or deleted (the bindings
    cascade) was an ordinary token of its account, and FreeRADIUS's copy of it read every subscriber, balance and
    ledger with the account's cashier role (issue 11 review). A marked token with no NAS opens nothing
    (``auth.TokenAuth``); it is bound again or revoked. Written by ``actions.do_bind_api_token_to_nas``.
    """

    token = models.OneToOneField(
        "staff.ApiToken",
        verbose_name=_("API token"),
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="radius_only",
    )
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("RADIUS token")
        verbose_name_plural = _("RADIUS tokens")

    def __str__(self) -> str:
        return str(self.token_id)


class ApiTokenNas(models.Model):
    """One NAS that a RADIUS service token speaks for on FreeRADIUS's rlm_rest endpoints (``network/api.py``).

    A token with such rows is a RADIUS front-end's (``RadiusToken``): it is accepted only on those endpoints
    (``auth.TokenAuth``), only for requests whose NAS is one of its rows, and only while its account is a service
    account without a branch limit (those endpoints hand out PPPoE passwords and write sessions for any
    subscriber). Rows are written by ``actions.do_bind_api_token_to_nas``: ``abonent create_radius_token`` or the
    admin site.
    """

    token = models.ForeignKey(
        "staff.ApiToken", verbose_name=_("API token"), on_delete=models.CASCADE, related_name="nas_bindings"
    )
    nas = models.ForeignKey("network.Nas", verbose_name=_("NAS"), on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("NAS of a RADIUS token")
        verbose_name_plural = _("NAS of RADIUS tokens")
        constraints = [models.UniqueConstraint(fields=["token", "nas"], name="api_token_nas_uniq")]

    def __str__(self) -> str:
        return f"{self.token_id} → {self.nas_id}"
