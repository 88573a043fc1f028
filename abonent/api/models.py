from django.conf import settings
from django.db import models


class IdempotencyRecord(models.Model):
    """The stored answer to one API write sent with an ``Idempotency-Key`` header.

    A retry with the same key and the same body gets the stored answer and writes nothing; the same key
    with a different body is refused (409). The unique ``(user, key)`` pair decides races between retries.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="api_idempotency_user_key_uniq")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
