"""Writes of the webhooks app: endpoints (integrations), their secrets, manual redelivery and integration tokens.

Each action checks ``Perm.INTEGRATION_MANAGE`` (``acting_user=None`` is the command line), validates everything
before it writes (one ``ValidationError`` naming each bad field with a stable code), is atomic and leaves an audit
row. Secrets and token plaintexts are returned once and never written to the audit log or the logs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import secrets as stdlib_secrets
import socket
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock, secrets
from abonent.staff.actions import do_create_api_token, do_create_staff_user, do_revoke_api_token
from abonent.staff.models import ApiToken
from abonent.staff.permissions import Perm, Role, allowed_branch_ids, check_perm

from .models import Delivery, DeliveryStatus, Endpoint, EventType, IntegrationToken, Scope

AUDITED_FIELDS = ["name", "url", "event_types", "is_active"]
URL_MAX = 500


def _check(acting_user) -> None:
    if acting_user is None:
        return
    check_perm(acting_user, Perm.INTEGRATION_MANAGE)
    # An integration sees every branch (its events, its tokens' service accounts have no branch limit): a
    # branch-limited administrator managing one would reach past their own limit.
    if allowed_branch_ids(acting_user) is not None:
        raise PermissionDenied(_("Integrations reach every branch: a branch-limited user cannot manage them."))


def new_secret() -> str:
    return "whsec_" + stdlib_secrets.token_urlsafe(32)


def validate_url(value: str) -> str:
    """The URL as given, or a ValidationError (code ``invalid_url``) for what cannot be a receiver: another
    scheme, no host, credentials in the URL (they would be logged and shown), a fragment, spaces, absurd length."""
    value = (value or "").strip()
    if not value:
        raise ValidationError(_("Give the receiver's URL."), code="required")
    bad = ValidationError(
        _("Give an http:// or https:// URL of the receiver, without a login or a #fragment."), code="invalid_url"
    )
    if len(value) > URL_MAX or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise bad
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError:
        raise bad from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise bad
    if parts.fragment or "#" in value:
        raise bad
    host = parts.hostname.rstrip(".")  # "localhost." is localhost
    address = literal_address(host)
    if address is not None and (address.is_unspecified or address.is_multicast):
        raise bad
    if port == 0:
        raise bad
    if not settings.ABONENT_WEBHOOK_ALLOW_LOCAL and (
        host == "localhost" or host.endswith(".localhost") or (address is not None and is_local(address))
    ):
        # A name that resolves here only when sending is caught then (sending.py checks the address it reached).
        raise ValidationError(
            _(
                "A receiver on this server or a link-local address (169.254.x.x) is refused: it could reach the "
                "server's own services. A LAN address is fine."
            ),
            code="local_address",
        )
    return value


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``host`` spells, in any of the forms a resolver accepts (``127.1``, ``2130706433``,
    ``0x7f.1``), or None for a name. An IPv4-mapped IPv6 address is its IPv4 one."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address


def is_local(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """This host (loopback, 0.0.0.0 which connects to it) or link-local (the cloud's metadata service): refused
    unless ``ABONENT_WEBHOOK_ALLOW_LOCAL``. Private ranges are not local: an ISP's CRM is often on its LAN."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_link_local or address.is_unspecified


def _clean_event_types(values) -> list[str]:
    chosen = sorted({str(v) for v in values or ()})
    unknown = [v for v in chosen if v not in EventType.values]
    if unknown:
        raise ValidationError(
            _("Unknown event types: %(types)s.") % {"types": ", ".join(unknown)}, code="invalid_choice"
        )
    if not chosen:
        raise ValidationError(_("Choose at least one event type."), code="required")
    return chosen


@dataclass
class EndpointData:
    name: str
    url: str
    event_types: list[str] = field(default_factory=list)
    is_active: bool = True


def _validated(data: EndpointData, *, exclude_pk: int | None = None) -> EndpointData:
    errors: dict[str, ValidationError] = {}
    name = (data.name or "").strip()
    if not name:
        errors["name"] = ValidationError(_("Name the integration."), code="required")
    elif len(name) > 100:
        errors["name"] = ValidationError(_("At most 100 characters."), code="max_length")
    elif Endpoint.objects.filter(name=name).exclude(pk=exclude_pk).exists():
        # A friendly message before the unique constraint; the constraint still decides a race.
        errors["name"] = ValidationError(_("An integration with this name exists."), code="unique")
    url = data.url
    try:
        url = validate_url(data.url)
    except ValidationError as error:
        errors["url"] = error
    event_types: list[str] = []
    try:
        event_types = _clean_event_types(data.event_types)
    except ValidationError as error:
        errors["event_types"] = error
    if errors:
        raise ValidationError(errors)
    return EndpointData(name=name, url=url, event_types=event_types, is_active=bool(data.is_active))


@contextlib.contextmanager
def _name_taken_is_a_field_error():
    """Two administrators saving one name at once both pass the friendly check; the unique constraint refuses the
    second, which gets the same field error (in a savepoint: the transaction stays usable), not a 500."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError:
        raise ValidationError(
            {"name": ValidationError(_("An integration with this name exists."), code="unique")}
        ) from None


@transaction.atomic
def do_create_endpoint(data: EndpointData, *, acting_user) -> tuple[Endpoint, str]:
    """A new integration and its signing secret in clear (shown once: only its encryption is stored)."""
    _check(acting_user)
    data = _validated(data)
    secret = new_secret()
    moment = clock.now()
    with _name_taken_is_a_field_error():
        endpoint = Endpoint.objects.create(
            name=data.name,
            url=data.url,
            event_types=data.event_types,
            is_active=data.is_active,
            secret_encrypted=secrets.encrypt(secret),
            created_at=moment,
            updated_at=moment,
        )
    audit.record(
        actor=acting_user,
        action="webhooks.endpoint_created",
        obj=endpoint,
        after=audit.snapshot(endpoint, AUDITED_FIELDS),
    )
    return endpoint, secret


def _lock(endpoint: Endpoint) -> Endpoint:
    return Endpoint.objects.select_for_update().get(pk=endpoint.pk)


@transaction.atomic
def do_update_endpoint(endpoint: Endpoint, data: EndpointData, *, acting_user) -> Endpoint:
    _check(acting_user)
    endpoint = _lock(endpoint)
    data = _validated(data, exclude_pk=endpoint.pk)
    before = audit.snapshot(endpoint, AUDITED_FIELDS)
    endpoint.name, endpoint.url, endpoint.event_types, endpoint.is_active = (
        data.name,
        data.url,
        data.event_types,
        data.is_active,
    )
    endpoint.updated_at = clock.now()
    with _name_taken_is_a_field_error():
        endpoint.save(update_fields=["name", "url", "event_types", "is_active", "updated_at"])
    old, new = audit.diff(before, audit.snapshot(endpoint, AUDITED_FIELDS))
    if new:
        audit.record(actor=acting_user, action="webhooks.endpoint_changed", obj=endpoint, before=old, after=new)
    return endpoint


@transaction.atomic
def do_rotate_endpoint_secret(endpoint: Endpoint, *, acting_user) -> tuple[Endpoint, str]:
    """A new signing secret (returned in clear, once); deliveries from now on are signed with it. The audit row
    says it changed, never what it is."""
    _check(acting_user)
    endpoint = _lock(endpoint)
    secret = new_secret()
    endpoint.secret_encrypted = secrets.encrypt(secret)
    endpoint.updated_at = clock.now()
    endpoint.save(update_fields=["secret_encrypted", "updated_at"])
    audit.record(actor=acting_user, action="webhooks.secret_rotated", obj=endpoint)
    return endpoint, secret


def endpoint_secret(endpoint: Endpoint) -> str:
    return secrets.decrypt(endpoint.secret_encrypted)


@transaction.atomic
def do_redeliver(delivery: Delivery, *, acting_user) -> Delivery:
    """Send the same event (same id, same body) to the endpoint again: a new round of attempts, due now, whatever
    became of the last one. The receiver tells it from the first by the event id (its dedup key)."""
    _check(acting_user)
    delivery = Delivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
    before = {"status": delivery.status, "round": delivery.round, "attempts": delivery.attempts}
    moment = clock.now()
    delivery.status = DeliveryStatus.PENDING
    delivery.round += 1
    delivery.attempts = 0
    delivery.next_attempt_at = moment
    delivery.finished_at = None
    delivery.save(update_fields=["status", "round", "attempts", "next_attempt_at", "finished_at"])
    audit.record(
        actor=acting_user,
        action="webhooks.redelivery_requested",
        obj=delivery.endpoint,
        before=before,
        after={"delivery": delivery.pk, "event": str(delivery.event_id), "round": delivery.round},
    )
    from .tasks import send_due  # the worker sends it now, not at the next minute

    transaction.on_commit(partial(send_due.enqueue))
    return delivery


# Integration tokens


def _clean_scopes(values) -> list[str]:
    chosen = sorted({str(v) for v in values or ()})
    unknown = [v for v in chosen if v not in Scope.values]
    if unknown:
        raise ValidationError(_("Unknown scopes: %(scopes)s.") % {"scopes": ", ".join(unknown)}, code="invalid_choice")
    if not set(chosen) - {Scope.READ_ONLY}:
        raise ValidationError(_("Choose what the token reaches: subscribers, payments or requests."), code="required")
    return chosen


# The service account's role for a token: the narrowest role that holds what its scopes reach (the scopes narrow
# it further). Taking payments wants the cashier's role; everything else (and every read) the operator's. No role
# both takes payments and edits subscribers short of the administrator's, which would also refund and reverse: such
# a token is refused, and the integration gets two.
def _role_for(scopes: list[str]) -> str:
    if Scope.PAYMENTS in scopes and Scope.READ_ONLY not in scopes:
        return Role.CASHIER
    return Role.OPERATOR


def _check_combination(scopes: list[str]) -> None:
    writes = Scope.READ_ONLY not in scopes
    if writes and Scope.PAYMENTS in scopes and {Scope.SUBSCRIBERS, Scope.TICKETS} & set(scopes):
        raise ValidationError(
            _("A token that takes payments cannot also change subscribers or requests: make two tokens."),
            code="scopes_conflict",
        )


@transaction.atomic
def do_create_integration_token(
    endpoint: Endpoint, *, name: str, scopes, expires_at: dt.datetime | None = None, acting_user
) -> tuple[IntegrationToken, str]:
    """A token for ``endpoint``'s integration limited to ``scopes``, of a service account made for it; the
    plaintext is returned once."""
    _check(acting_user)
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ValidationError(_("Name the token."), code="required")
    elif len(name) > 100:
        errors["name"] = ValidationError(_("At most 100 characters."), code="max_length")
    try:
        scopes = _clean_scopes(scopes)
        _check_combination(scopes)
    except ValidationError as error:
        errors["scopes"] = error
    if expires_at is not None and expires_at <= clock.now():
        errors["expires_at"] = ValidationError(_("The expiry must be in the future."), code="in_past")
    if errors:
        raise ValidationError(errors)
    endpoint = _lock(endpoint)
    username = f"integration-{endpoint.pk}-{stdlib_secrets.token_hex(4)}"
    user = do_create_staff_user(
        username=username,
        password=None,
        role=_role_for(scopes),
        full_name=f"{endpoint.name}: {name}"[:200],
        is_service_account=True,
        acting_user=acting_user,
    )
    token, plaintext = do_create_api_token(user=user, name=name, expires_at=expires_at, acting_user=acting_user)
    integration = IntegrationToken.objects.create(token=token, endpoint=endpoint, scopes=scopes, created_at=clock.now())
    audit.record(
        actor=acting_user,
        action="webhooks.token_created",
        obj=endpoint,
        after={"token": token.pk, "prefix": token.prefix, "name": name, "scopes": scopes, "role": user.role},
    )
    return integration, plaintext


@transaction.atomic
def do_revoke_integration_token(integration: IntegrationToken, *, acting_user) -> None:
    """The token opens nothing from now on; its service account is deactivated too (it had no other use)."""
    _check(acting_user)
    integration = IntegrationToken.objects.select_related("token__user", "endpoint").get(pk=integration.pk)
    token: ApiToken = integration.token
    if token.revoked_at is not None:
        return
    do_revoke_api_token(token=token, acting_user=acting_user, reason="integration token revoked")
    user = token.user
    if user.is_service_account and user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
    audit.record(
        actor=acting_user,
        action="webhooks.token_revoked",
        obj=integration.endpoint,
        before={"token": token.pk, "prefix": token.prefix, "scopes": integration.scopes},
    )


# How long events stay in the log (with their deliveries and attempts) once every delivery of theirs is finished.
KEEP_EVENTS = dt.timedelta(days=90)


def do_prune_events(*, older_than: dt.timedelta = KEEP_EVENTS) -> int:
    """Delete events older than ``older_than`` none of whose deliveries is still pending (with their deliveries
    and attempts). The same domain event replayed after that would be delivered again: 90 days is far past any
    retry. Returns events deleted."""
    from django.db.models import Exists, OuterRef

    from .models import WebhookEvent

    pending = Delivery.objects.filter(event=OuterRef("pk"), status=DeliveryStatus.PENDING)
    old = WebhookEvent.objects.filter(created_at__lt=clock.now() - older_than).exclude(Exists(pending))
    deleted = 0
    while True:
        ids = list(old.values_list("pk", flat=True)[:1000])
        if not ids:
            return deleted
        with transaction.atomic():
            WebhookEvent.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
