"""Writes of the network app: NAS and logins (audited), the policy-change feed, and the CoA/Disconnect queue."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from functools import partial

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.core import audit, clock
from abonent.staff.permissions import Perm, check_perm

from . import coa, selectors
from .models import (
    AuthAttempt,
    CoaKind,
    CoaReason,
    CoaRequest,
    CoaStatus,
    IpPool,
    Login,
    LoginKind,
    Nas,
    PolicyChange,
    QuotaMark,
    Session,
    SessionStatus,
)
from .policy import PASSWORD_KINDS, PolicyStore, normalise_mac
from .vendors import Attributes, SessionRef, Speed, VendorProfile, profile_for
from .vendors.base import DebtorSettings

MIN_SECRET_LENGTH = 16

logger = logging.getLogger(__name__)


def note_policy_change(subscriber_ids) -> None:
    """Tell the RADIUS processes to reload these subscribers' logins (read by id, in order)."""
    PolicyChange.objects.bulk_create([PolicyChange(subscriber_id=sid) for sid in sorted(set(subscriber_ids))])


def note_logins_reencrypted(login_ids) -> None:
    """Their passwords were re-encrypted under a new field key: the RADIUS processes reload them, so the
    in-memory policy and its snapshot stop holding values under the old key."""
    note_policy_change(Login.objects.filter(pk__in=list(login_ids)).values_list("subscriber_id", flat=True))


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


# Hotspot logins the system issues (a Wi-Fi card's, vouchers.wifi: this prefix and the card's serial, printed on
# the card). Staff cannot create or rename a login into it, so a sold card's login is never taken beforehand.
SYSTEM_HOTSPOT_PREFIX = "wifi-"


def _refuse_reserved(kind: str, username: str) -> None:
    if kind == LoginKind.HOTSPOT and username.lower().startswith(SYSTEM_HOTSPOT_PREFIX):
        raise ValidationError(
            {
                "username": ValidationError(
                    _("Hotspot logins starting with “%(prefix)s” are issued by Wi-Fi cards: choose another login.")
                    % {"prefix": SYSTEM_HOTSPOT_PREFIX},
                    code="username_reserved",
                )
            }
        )


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
    if acting_user is not None:  # None: the system (a Wi-Fi card's hotspot login, vouchers.wifi)
        check_perm(acting_user, Perm.NETWORK_MANAGE)
    username = normalise_username(kind, username)
    if acting_user is not None:
        _refuse_reserved(kind, username)
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
    if ("username" in fields or "kind" in fields) and (
        fields.get("username", login.username) != login.username or fields.get("kind", login.kind) != login.kind
    ):
        _refuse_reserved(fields.get("kind", login.kind), fields.get("username", login.username))
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


# Generated PPPoE passwords: no look-alike characters (0/O, 1/l/I), as they are read out over the phone or copied
# from a screen onto a router's form. 12 of 56 characters: about 69 bits.
PASSWORD_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"  # noqa: S105 - an alphabet
PASSWORD_LENGTH = 12
MIN_PASSWORD_LENGTH = 6


def generate_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


@transaction.atomic
def do_reset_login_password(login: Login, *, acting_user, password: str = "", reason: str = "") -> tuple[Login, str]:
    """Give a PPPoE or hotspot login a new password: ``password`` as typed, or a generated one when empty.
    Returns the login and the password, for the operator to read once; the audit row says only that it changed
    and whether it was generated. The RADIUS processes reload the login (``note_policy_change``): the next
    Access-Request is checked against the new password, and a session online now is not dropped."""
    check_perm(acting_user, Perm.NETWORK_MANAGE)
    login = Login.objects.select_for_update().get(pk=login.pk)
    if login.kind not in PASSWORD_KINDS:
        raise ValidationError(
            _("Only a PPPoE or hotspot login has a password: IPoE logins are the device's address."),
            code="login_without_password",
        )
    generated = not password
    if generated:
        password = generate_password()
    elif len(password) < MIN_PASSWORD_LENGTH:
        message = _("The password must be at least %(n)d characters long.") % {"n": MIN_PASSWORD_LENGTH}
        raise ValidationError({"password": ValidationError(message, code="password_too_short")})
    # RADIUS carries at most 128 bytes of User-Password (RFC 2865 §5.2): counted encoded, not in characters, or
    # 128 Cyrillic letters (256 bytes) would be saved and never match a request.
    elif len(password.encode()) > 128 or not password.isprintable() or password != password.strip():
        raise ValidationError(
            {
                "password": ValidationError(
                    _("Up to 128 bytes of printable characters, without spaces at either end."),
                    code="password_invalid",
                )
            }
        )
    login.set_password(password)
    login.save(update_fields=["password_encrypted", "updated_at"])
    audit.record(
        actor=acting_user,
        action="network.login_password_reset",
        obj=login,
        subscriber_id=login.subscriber_id,
        after={"password_changed": True, "generated": generated},
        reason=reason,
    )
    note_policy_change([login.subscriber_id])
    return login, password


@transaction.atomic
def do_set_login_active(login: Login, *, active: bool, acting_user, reason: str = "") -> Login:
    """Disable a login (RADIUS rejects it: ``RejectReason.LOGIN_DISABLED``) or enable it again. Disabling also
    disconnects its sessions online, so it does not stay connected until the NAS asks again."""
    check_perm(acting_user, Perm.NETWORK_MANAGE)
    login = Login.objects.select_for_update().get(pk=login.pk)
    if login.is_active == active:
        return login
    login.is_active = active
    login.save(update_fields=["is_active", "updated_at"])
    disconnected = []
    if not active:
        now = clock.now()
        for session in selectors.open_sessions(subscriber_id=login.subscriber_id).filter(login_id=login.pk):
            profile = profile_for(session.nas.vendor)
            rendering = (CoaKind.DISCONNECT, profile.disconnect(_session_ref(session, login.kind)))
            disconnected.append(_queue(session, rendering, CoaReason.STAFF, now=now).pk)
    audit.record(
        actor=acting_user,
        action="network.login_enabled" if active else "network.login_disabled",
        obj=login,
        subscriber_id=login.subscriber_id,
        before={"is_active": not active},
        after={"is_active": active, **({"coa_requests": disconnected} if disconnected else {})},
        reason=reason,
    )
    note_policy_change([login.subscriber_id])
    return login


# --- CoA / Disconnect queue -------------------------------------------------------------------------------
#
# Every request is rendered when it is queued, from the state that caused it, and carries the whole of what
# it changes (the speed of the moment; the redirect where it changes it), so the newest request for a session
# is the one that must win. Queuing one supersedes, in the same transaction, the older waiting requests of
# that session it covers (``coa.supersedes``); ``coa`` checks again when it claims them.


def _session_ref(session: Session, login_kind: str | None = None) -> SessionRef:
    ipoe = None if login_kind is None else login_kind in (LoginKind.IPOE_MAC, LoginKind.IPOE_OPT82)
    return SessionRef(
        username=session.username, acct_session_id=session.acct_session_id, framed_ip=session.framed_ip, ipoe=ipoe
    )


Rendering = tuple[str, Attributes]  # (CoaKind, the attributes)


def _queue(
    session: Session,
    rendering: Rendering,
    reason: str,
    *,
    now: dt.datetime,
    with_redirect: Callable[[], Rendering] | None = None,
) -> CoaRequest:
    """Queue one request for ``session`` and supersede the waiting ones it covers.

    ``with_redirect`` renders the same change with the session's debtor redirect set as it should be now; it
    is used instead when a waiting request changes the redirect together with something this one changes
    (accel-ppp IPoE: ``L4-Redirect`` and ``Filter-Id``), which this one must then carry too. Must run inside
    a transaction: the waiting requests are locked until it commits."""
    waiting = list(
        CoaRequest.objects.select_for_update()
        .filter(session=session, status=CoaStatus.PENDING)
        .only("pk", "session_id", "kind", "reason", "attributes")
        .order_by("pk")
    )
    request = _build_request(session, rendering, reason, now=now)
    if with_redirect is not None and any(coa.conflicts(request, older) for older in waiting):
        request = _build_request(session, with_redirect(), reason, now=now)
    request.save(force_insert=True)
    coa.mark_superseded([older for older in waiting if coa.supersedes(request, older)], now=now)
    return request


def _build_request(session: Session, rendering: Rendering, reason: str, *, now: dt.datetime) -> CoaRequest:
    kind, attributes = rendering
    grouped: dict[str, list] = {}
    for name, value in attributes:
        grouped.setdefault(name, []).append(value)
    return CoaRequest(
        nas_id=session.nas_id,
        session=session,
        subscriber_id=session.subscriber_id,
        kind=kind,
        reason=reason,
        attributes=grouped,
        next_attempt_at=now,
        created_at=now,
    )


@transaction.atomic
def _queue_policy(
    subscriber_id: int, *, reason: str, restricted: bool | None, session_id: int | None = None
) -> list[CoaRequest]:
    """For each open session of the subscriber, a request with the speed now in force, decided exactly as an
    Access-Request would be (``PolicyStore.decide``: day, night, FUP or turbo speed; a reject disconnects).

    ``restricted`` None: a speed change (plan, turbo, quota); the redirect is sent along for a debtor, as the
    NAS's profile changes it live, unless the profile sets the two independently (Cisco: the speed alone).
    True/False: the debtor redirect goes on/off (``access.sync_access_states``, which decided it under its lock,
    so that decision is sent rather than a state read a moment later). ``session_id``: that open session only."""
    store = PolicyStore.for_subscribers([subscriber_id], session_limit=False)
    now = clock.now()
    local_now = timezone.localtime(now)
    policies = store.by_subscriber.get(subscriber_id, [])
    queued = []
    sessions = selectors.open_sessions(subscriber_id=subscriber_id)
    if session_id is not None:
        sessions = sessions.filter(pk=session_id)
    for session in sessions:
        # A session accounting could not bind to a login gets the subscriber's first login's policy.
        policy = next((p for p in policies if p.login_id == session.login_id), policies[0] if policies else None)
        profile = profile_for(session.nas.vendor)
        debtor = DebtorSettings(address_list=session.nas.debtor_address_list, pool=session.nas.debtor_pool)
        if policy is None:
            if restricted is None:
                continue
            ref = _session_ref(session)
            queued.append(_queue(session, _access_change(profile, ref, restricted, None, debtor), reason, now=now))
            continue
        # The link kind only from the session's own login: a guessed one could pick a CoA the NAS ignores.
        ref = _session_ref(session, policy.kind if policy.login_id == session.login_id else None)
        decision = store.decide(policy, local_now)
        if not decision.accept:
            queued.append(_queue(session, (CoaKind.DISCONNECT, profile.disconnect(ref)), reason, now=now))
            continue
        redirect = decision.restricted if restricted is None else restricted
        if restricted is not None or (redirect and profile.speed_change_carries_redirect):
            rendering = _access_change(profile, ref, redirect, decision.speed, debtor)
            queued.append(_queue(session, rendering, reason, now=now))
            continue
        queued.append(
            _queue(
                session,
                (CoaKind.COA, profile.coa(ref, speed=decision.speed, debtor=None)),
                reason,
                now=now,
                with_redirect=partial(_access_change, profile, ref, redirect, decision.speed, debtor),
            )
        )
    return queued


def _access_change(
    profile: VendorProfile, ref: SessionRef, restricted: bool, speed: Speed | None, debtor: DebtorSettings
) -> Rendering:
    kind, attributes = profile.access_change(ref, restricted=restricted, speed=speed, debtor=debtor)
    return (CoaKind.COA if kind == "coa" else CoaKind.DISCONNECT), attributes


def queue_for_online(subscriber_ids, queue, what: str) -> int:
    """``queue(subscriber_id)`` for those of ``subscriber_ids`` with a session open, each in a savepoint: one
    whose request cannot be made is logged (its next Access-Request gets the state in force) and must not undo
    what the caller wrote for everyone (marks, a billing run's plan switch). Returns the requests queued."""
    if not subscriber_ids:
        return 0
    online = Session.objects.filter(status=SessionStatus.OPEN, subscriber_id__in=list(subscriber_ids))
    queued = 0
    for subscriber_id in sorted(set(online.values_list("subscriber_id", flat=True))):
        try:
            with transaction.atomic():
                queued += len(queue(subscriber_id))
        except Exception:
            logger.exception("%s: no CoA for subscriber %s; its next Access-Request gets it", what, subscriber_id)
    return queued


def queue_policy_coa(subscriber_id: int, *, reason: str) -> list[CoaRequest]:
    """A CoA with the subscriber's current speed (and the debtor redirect if it applies) for each open
    session. Rendered now, from the state that caused it; sent by the worker (``network.coa``)."""
    return _queue_policy(subscriber_id, reason=reason, restricted=None)


def queue_access_change(subscriber_id: int, *, restricted: bool) -> list[CoaRequest]:
    """Push the debtor redirect on or off to the subscriber's open sessions, as each NAS's profile does it,
    with the speed now in force."""
    reason = CoaReason.RESTRICT if restricted else CoaReason.RESTORE
    return _queue_policy(subscriber_id, reason=reason, restricted=restricted)


@transaction.atomic
def queue_disconnect(subscriber_id: int, *, reason: str) -> list[CoaRequest]:
    now = clock.now()
    return [
        _queue(
            session,
            (CoaKind.DISCONNECT, profile_for(session.nas.vendor).disconnect(_session_ref(session))),
            reason,
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
        (CoaKind.DISCONNECT, profile_for(session.nas.vendor).disconnect(_session_ref(session))),
        CoaReason.STAFF,
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


@transaction.atomic
def do_reapply_session_policy(session: Session, *, acting_user, reason: str = "") -> list[CoaRequest]:
    """The staff "CoA" button: the policy in force now (speed, debtor redirect) sent again to one open session, as
    an Access-Request would decide it; a Disconnect where the policy now rejects the login. Audited. Refused for a
    closed session and for one bound to no subscriber (there is no policy to send)."""
    check_perm(acting_user, Perm.NETWORK_MANAGE)
    if session.status != SessionStatus.OPEN:
        raise ValidationError(_("The session is already closed."))
    if session.subscriber_id is None:
        raise ValidationError(_("The session belongs to no known subscriber: there is no policy to send."))
    queued = _queue_policy(session.subscriber_id, reason=CoaReason.STAFF_COA, restricted=None, session_id=session.pk)
    if not queued:
        raise ValidationError(_("The subscriber has no login the policy could be decided for: nothing was queued."))
    audit.record(
        actor=acting_user,
        action="network.session_policy_resent",
        obj=session,
        subscriber_id=session.subscriber_id,
        after={"coa_request": queued[0].pk, "kind": queued[0].kind},
        reason=reason,
    )
    return queued


# Marks written or removed per statement: well inside SQLite's limit on parameters.
QUOTA_MARK_BATCH = 2000


def _quota_marked() -> set[int]:
    return set(QuotaMark.objects.values_list("subscriber_id", flat=True))


def _mark_over_quota(subscriber_ids: list[int], now: dt.datetime) -> set[int]:
    """Insert the marks; the ones this call inserted come back. Two runs at once both try a new crossing, and
    the unique key lets one of them have it (the other waits for its commit, then conflicts)."""
    marked: set[int] = set()
    since = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        for start in range(0, len(subscriber_ids), QUOTA_MARK_BATCH):
            batch = subscriber_ids[start : start + QUOTA_MARK_BATCH]
            cursor.execute(
                "INSERT INTO network_quotamark (subscriber_id, since) VALUES "
                + ", ".join(["(%s, %s)"] * len(batch))
                + " ON CONFLICT (subscriber_id) DO NOTHING RETURNING subscriber_id",
                [value for subscriber_id in batch for value in (subscriber_id, since)],
            )
            marked.update(row[0] for row in cursor.fetchall())
    return marked


def _unmark_over_quota(subscriber_ids: list[int]) -> set[int]:
    """Delete the marks; the ones this call deleted come back (a run that lost the race finds them gone)."""
    unmarked: set[int] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(subscriber_ids), QUOTA_MARK_BATCH):
            batch = subscriber_ids[start : start + QUOTA_MARK_BATCH]
            placeholders = ", ".join(["%s"] * len(batch))
            cursor.execute(
                f"DELETE FROM network_quotamark WHERE subscriber_id IN ({placeholders}) RETURNING subscriber_id",
                batch,
            )
            unmarked.update(row[0] for row in cursor.fetchall())
    return unmarked


@transaction.atomic
def sync_fup_speeds() -> dict[str, int]:
    """Compare who is over this month's included traffic now with who the NAS were last told about, and push
    the difference: the FUP speed by CoA when a subscriber crosses the quota mid-session, the plan's speed
    when they are back under it (the month turned, the plan changed).

    Runs every minute in the worker. Once per crossing: the marks (``QuotaMark``) say who was told, and a
    crossing belongs to the run whose insert or delete of the mark took effect, so a second run, a retried one
    or one running at the same time queues nothing again. An offline subscriber is marked and sent nothing:
    the next Access-Request is answered with the speed in force.
    """
    now = clock.now()
    over = selectors.subscribers_over_quota(clock.today().replace(day=1))
    marked = _quota_marked()
    throttled = _mark_over_quota(sorted(over - marked), now)
    released = _unmark_over_quota(sorted(marked - over))
    pushed = queue_for_online(
        throttled | released, lambda sid: queue_policy_coa(sid, reason=CoaReason.FUP), "traffic quota"
    )
    return {"throttled": len(throttled), "released": len(released), "requests": pushed}


PRUNE_BATCH = 10_000


def do_prune_auth_attempts(*, older_than: dt.timedelta) -> int:
    """Delete the authentication attempts older than ``older_than``; returns how many. In batches of
    ``PRUNE_BATCH`` rows, each its own short transaction: after a flood there may be millions, and one
    statement deleting them all would hold its locks and grow the WAL for as long. Safe to run twice."""
    cutoff = clock.now() - older_than
    deleted = 0
    while True:
        batch = list(AuthAttempt.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:PRUNE_BATCH])
        if not batch:
            return deleted
        deleted += AuthAttempt.objects.filter(pk__in=batch).delete()[0]
