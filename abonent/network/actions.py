"""Writes of the network app: NAS and logins (audited), the policy-change feed, and the CoA/Disconnect queue."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.billing.selectors import subscribers_without_funds
from abonent.core import audit, clock
from abonent.staff.permissions import Perm, check_perm

from . import selectors
from .models import (
    CoaKind,
    CoaReason,
    CoaRequest,
    DebtorMark,
    IpPool,
    Login,
    LoginKind,
    Nas,
    PolicyChange,
    Session,
    SessionStatus,
)
from .policy import PolicyStore, normalise_mac
from .vendors import SessionRef, profile_for
from .vendors.base import DebtorSettings

MIN_SECRET_LENGTH = 16


def note_policy_change(subscriber_ids) -> None:
    """Tell the RADIUS processes to reload these subscribers' logins (read by id, in order)."""
    PolicyChange.objects.bulk_create([PolicyChange(subscriber_id=sid) for sid in sorted(set(subscriber_ids))])


# --- NAS ----------------------------------------------------------------------------------------------------


def _check_secret(secret: str) -> None:
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValidationError(
            {"secret": _("The shared secret must be at least %(n)d characters long.") % {"n": MIN_SECRET_LENGTH}}
        )


@transaction.atomic
def do_create_nas(*, acting_user, name: str, ip_address: str, secret: str, vendor: str, **fields) -> Nas:
    check_perm(acting_user, Perm.NETWORK_MANAGE)
    _check_secret(secret)
    nas = Nas(name=name, ip_address=ip_address, vendor=vendor, **fields)
    nas.set_secret(secret)
    nas.full_clean()
    nas.save()
    audit.record(actor=acting_user, action="network.nas_created", obj=nas, after=audit.snapshot(nas))
    return nas


@transaction.atomic
def do_update_nas(nas: Nas, *, acting_user, secret: str | None = None, **fields) -> Nas:
    check_perm(acting_user, Perm.NETWORK_MANAGE)
    nas = Nas.objects.select_for_update().get(pk=nas.pk)
    before = audit.snapshot(nas)
    for name, value in fields.items():
        setattr(nas, name, value)
    after_extra = {}
    if secret:
        _check_secret(secret)
        nas.set_secret(secret)
        after_extra["secret_changed"] = True
    nas.full_clean()
    nas.save()
    old, new = audit.diff(before, audit.snapshot(nas))
    audit.record(actor=acting_user, action="network.nas_updated", obj=nas, before=old, after={**new, **after_extra})
    return nas


@transaction.atomic
def do_create_ip_pool(*, acting_user, name: str, network: str, kind: str) -> IpPool:
    check_perm(acting_user, Perm.NETWORK_MANAGE)
    pool = IpPool(name=name, network=network, kind=kind)
    pool.full_clean()
    pool.save()
    audit.record(actor=acting_user, action="network.pool_created", obj=pool, after=audit.snapshot(pool))
    return pool


# --- logins -------------------------------------------------------------------------------------------------


def normalise_username(kind: str, username: str) -> str:
    username = username.strip()
    if kind == LoginKind.IPOE_MAC:
        mac = normalise_mac(username)
        if not mac:
            raise ValidationError({"username": _("Not a MAC address: %(value)s") % {"value": username}})
        return mac
    if kind == LoginKind.IPOE_OPT82:
        return username.lower().replace(":", "").replace(" ", "")
    return username


@transaction.atomic
def do_create_login(
    subscriber,
    *,
    acting_user,
    kind: str,
    username: str,
    password: str = "",
    static_ip: str | None = None,
    pool: IpPool | None = None,
    subscription=None,
    simultaneous_use: int = 1,
) -> Login:
    check_perm(acting_user, Perm.NETWORK_MANAGE)
    username = normalise_username(kind, username)
    if kind in (LoginKind.PPPOE, LoginKind.HOTSPOT) and not password:
        raise ValidationError({"password": _("A PPPoE or hotspot login needs a password.")})
    login = Login(
        subscriber=subscriber,
        kind=kind,
        username=username,
        static_ip=static_ip or None,
        pool=pool,
        subscription=subscription,
        simultaneous_use=simultaneous_use,
    )
    login.set_password(password)
    login.full_clean()
    login.save()
    audit.record(
        actor=acting_user,
        action="network.login_created",
        obj=login,
        subscriber_id=subscriber.pk,
        after=audit.snapshot(login),
    )
    note_policy_change([subscriber.pk])
    return login


@transaction.atomic
def do_update_login(login: Login, *, acting_user, password: str | None = None, **fields) -> Login:
    check_perm(acting_user, Perm.NETWORK_MANAGE)
    login = Login.objects.select_for_update().get(pk=login.pk)
    before = audit.snapshot(login)
    if "username" in fields:
        fields["username"] = normalise_username(fields.get("kind", login.kind), fields["username"])
    for name, value in fields.items():
        setattr(login, name, value)
    extra = {}
    if password:
        login.set_password(password)
        extra["password_changed"] = True
    login.full_clean()
    login.save()
    old, new = audit.diff(before, audit.snapshot(login))
    audit.record(
        actor=acting_user,
        action="network.login_updated",
        obj=login,
        subscriber_id=login.subscriber_id,
        before=old,
        after={**new, **extra},
    )
    note_policy_change([login.subscriber_id])
    return login


# --- CoA / Disconnect queue -------------------------------------------------------------------------------


def _session_ref(session: Session) -> SessionRef:
    return SessionRef(username=session.username, acct_session_id=session.acct_session_id, framed_ip=session.framed_ip)


def _queue(session: Session, kind: str, reason: str, attributes, *, now: dt.datetime) -> CoaRequest:
    grouped: dict[str, list] = {}
    for name, value in attributes:
        grouped.setdefault(name, []).append(value)
    return CoaRequest.objects.create(
        nas_id=session.nas_id,
        session=session,
        subscriber_id=session.subscriber_id,
        kind=kind,
        reason=reason,
        attributes=grouped,
        next_attempt_at=now,
        created_at=now,
    )


def queue_policy_coa(subscriber_id: int, *, reason: str) -> list[CoaRequest]:
    """A CoA with the subscriber's current speed (and the debtor redirect if it applies) for each open
    session. Rendered now, from the state that caused it; sent by the worker (``network.coa``)."""
    store = PolicyStore.for_subscribers([subscriber_id], session_limit=False)
    now = clock.now()
    queued = []
    for session in selectors.open_sessions(subscriber_id=subscriber_id):
        policy = store.by_subscriber.get(subscriber_id, [None])[0]
        if session.login_id:
            policy = next(
                (p for p in store.by_subscriber.get(subscriber_id, []) if p.login_id == session.login_id), policy
            )
        if policy is None:
            continue
        decision = store.decide(policy, timezone.localtime(now))
        profile = profile_for(session.nas.vendor)
        if not decision.accept:
            queued.append(
                _queue(session, CoaKind.DISCONNECT, reason, profile.disconnect(_session_ref(session)), now=now)
            )
            continue
        if decision.restricted:
            # A debtor keeps the redirect with the new speed, the way the NAS's profile changes it live
            # (CoA where it can; MikroTik: Disconnect, the subscriber re-authenticates into both).
            debtor = DebtorSettings(address_list=session.nas.debtor_address_list, pool=session.nas.debtor_pool)
            kind, attributes = profile.access_change(
                _session_ref(session), restricted=True, speed=decision.speed, debtor=debtor
            )
            coa_kind = CoaKind.COA if kind == "coa" else CoaKind.DISCONNECT
            queued.append(_queue(session, coa_kind, reason, attributes, now=now))
            continue
        attributes = profile.coa(_session_ref(session), speed=decision.speed, debtor=None)
        queued.append(_queue(session, CoaKind.COA, reason, attributes, now=now))
    return queued


def queue_disconnect(subscriber_id: int, *, reason: str) -> list[CoaRequest]:
    now = clock.now()
    return [
        _queue(
            session,
            CoaKind.DISCONNECT,
            reason,
            profile_for(session.nas.vendor).disconnect(_session_ref(session)),
            now=now,
        )
        for session in selectors.open_sessions(subscriber_id=subscriber_id)
    ]


@transaction.atomic
def do_disconnect_session(session: Session, *, acting_user, reason: str = "") -> CoaRequest:
    """The staff "disconnect" button: a Disconnect-Request for one session, audited."""
    check_perm(acting_user, Perm.NETWORK_MANAGE)
    if session.status != SessionStatus.OPEN:
        raise ValidationError(_("The session is already closed."))
    request = _queue(
        session,
        CoaKind.DISCONNECT,
        CoaReason.STAFF,
        profile_for(session.nas.vendor).disconnect(_session_ref(session)),
        now=clock.now(),
    )
    audit.record(
        actor=acting_user,
        action="network.session_disconnect",
        obj=session,
        subscriber_id=session.subscriber_id,
        after={"coa_request": request.pk},
        reason=reason,
    )
    return request


def queue_access_change(subscriber_id: int, *, restricted: bool) -> list[CoaRequest]:
    """Push the debtor redirect on or off to the subscriber's open sessions, as each NAS's profile does it."""
    now = clock.now()
    speeds = selectors.plan_speeds()
    policies = {p.login_id: p for p in selectors.login_policies([subscriber_id])}
    fallback = next(iter(policies.values()), None)  # a session accounting could not bind to a login
    reason = CoaReason.RESTRICT if restricted else CoaReason.RESTORE
    queued = []
    for session in selectors.open_sessions(subscriber_id=subscriber_id):
        policy = policies.get(session.login_id, fallback)
        plan = speeds.get(policy.plan_id) if policy else None
        debtor = DebtorSettings(address_list=session.nas.debtor_address_list, pool=session.nas.debtor_pool)
        kind, attributes = profile_for(session.nas.vendor).access_change(
            _session_ref(session), restricted=restricted, speed=plan.day if plan else None, debtor=debtor
        )
        queued.append(
            _queue(session, CoaKind.COA if kind == "coa" else CoaKind.DISCONNECT, reason, attributes, now=now)
        )
    return queued


@transaction.atomic
def sync_debtor_redirects() -> dict[str, int]:
    """Compare who is without funds now with who the NAS were last told about, and push the difference.

    Runs every minute in the worker. Idempotent: a second run with no balance change queues nothing.
    """
    now = clock.now()
    debtors = subscribers_without_funds()
    marked = set(DebtorMark.objects.select_for_update().values_list("subscriber_id", flat=True))
    restricted, restored = debtors - marked, marked - debtors
    DebtorMark.objects.bulk_create(
        [DebtorMark(subscriber_id=sid, since=now) for sid in sorted(restricted)], batch_size=2000, ignore_conflicts=True
    )
    gone = sorted(restored)
    for start in range(0, len(gone), 2000):
        DebtorMark.objects.filter(subscriber_id__in=gone[start : start + 2000]).delete()
    online = (
        set(
            Session.objects.filter(
                status=SessionStatus.OPEN, subscriber_id__in=list(restricted | restored)
            ).values_list("subscriber_id", flat=True)
        )
        if restricted or restored
        else set()
    )
    pushed = 0
    for subscriber_id in sorted(online):
        pushed += len(queue_access_change(subscriber_id, restricted=subscriber_id in restricted))
    return {"restricted": len(restricted), "restored": len(restored), "requests": pushed}
