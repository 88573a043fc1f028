"""What a request asks for (``Criteria``) and the rows that answer it (``Selection``), whatever the format.

A request names subscribers (account or old account number, login, phone), or traces (an IP address at an instant
or over the period, a MAC address), and always a period. The subscribers it names are exported whole (identity,
contracts, contacts, logins, static addresses); their payments and sessions only within the period. A session
found by its IP address or MAC whose login belongs to nobody is exported too (the NAS's word is evidence), except
to a branch-limited officer, who sees only their branches' subscribers.

Every query is a lazy queryset read with ``iterator(chunk_size=…)``: a million sessions stream through the writer
and never sit in memory (on PostgreSQL the iterator is a server-side cursor).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import re
from collections.abc import Iterator

from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.network.models import IpPool, Login, Nas, Session
from abonent.payments.models import Agent, Payment
from abonent.staff.permissions import allowed_branch_ids
from abonent.subscribers.actions.common import PROFILE_FIELDS
from abonent.subscribers.models import (
    ContactKind,
    ContactPoint,
    Contract,
    EquipmentAssignment,
    Subscriber,
)
from abonent.subscribers.validators import normalize_mac, normalize_phone

# Federal Law «О связи» art. 64 p. 1: an operator keeps the facts of connections for three years; what is older
# the law lets it delete, so a wider window promises data that may be gone. One request covers at most a year so
# that one export stays a file an officer can hand over, and a worker's run ends in minutes (docs/lawful-export.md).
MAX_YEARS_BACK = 3
MAX_PERIOD = dt.timedelta(days=366)
MAX_VALUES = 50  # per criterion: a request names people and traces, not the subscriber base
CHUNK = 2000
# What names a subscriber: a change of any of them since the period began means the current identity is not the one
# the account had then (an account re-registered to another person keeps its number and sessions).
IDENTITY_FIELDS = ("account_number", *PROFILE_FIELDS)


@dataclasses.dataclass(frozen=True)
class Criteria:
    """A request's criteria, normalised: account numbers as typed, logins as stored, phones in E.164, MACs as
    ``aa:bb:cc:dd:ee:ff``, IP addresses compressed; times timezone-aware UTC. ``everyone``: the whole base (the
    vendor's scheduled feed, ``abonent lawful export --all``)."""

    period_start: dt.datetime
    period_end: dt.datetime
    accounts: tuple[str, ...] = ()
    logins: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    ip_at: dt.datetime | None = None
    macs: tuple[str, ...] = ()
    everyone: bool = False

    def as_json(self) -> dict:
        data = {
            name: list(getattr(self, name))
            for name in ("accounts", "logins", "phones", "ips", "macs")
            if getattr(self, name)
        }
        if self.ip_at is not None:
            data["ip_at"] = self.ip_at.isoformat()
        if self.everyone:
            data["everyone"] = True
        return data

    @classmethod
    def from_json(cls, data: dict, *, period_start: dt.datetime, period_end: dt.datetime) -> Criteria:
        ip_at = data.get("ip_at")
        return cls(
            period_start=period_start,
            period_end=period_end,
            ip_at=dt.datetime.fromisoformat(ip_at) if ip_at else None,
            everyone=bool(data.get("everyone")),
            **{name: tuple(data.get(name, ())) for name in ("accounts", "logins", "phones", "ips", "macs")},
        )


def _values(raw, *, spaces: bool = True) -> list[str]:
    """Values as typed: one per line, or separated by commas or semicolons, or by spaces where a value has none
    (a phone is typed with spaces: ``8 (916) 123-45-67``)."""
    if isinstance(raw, str):
        raw = re.split(r"[\s,;]+" if spaces else r"[\r\n,;]+", raw)
    return [str(v).strip() for v in raw or () if str(v).strip()]


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """In UTC, as the criteria, the manifest and the list's "at (UTC)" say (a naive time is the operator's)."""
    if value is None:
        return value
    aware = value if timezone.is_aware(value) else timezone.make_aware(value)
    try:
        return aware.astimezone(dt.UTC)
    except OverflowError:  # year 1 east of Greenwich, 9999 west of it: refused as too old or in the future
        return aware


def build_criteria(
    *,
    period_start: dt.datetime | None,
    period_end: dt.datetime | None,
    accounts="",
    logins="",
    phones="",
    ips="",
    ip_at: dt.datetime | None = None,
    macs="",
    everyone: bool = False,
) -> Criteria:
    """The criteria as typed, checked and normalised; one ``ValidationError`` naming every bad field (codes:
    ``required``, ``invalid``, ``too_many``, ``period_order``, ``period_too_wide``, ``period_too_old``,
    ``period_future``, ``ip_at_outside``, ``no_criteria``)."""
    errors: dict[str, list[ValidationError]] = {}

    def refuse(field: str, message: str, code: str) -> None:
        errors.setdefault(field, []).append(ValidationError(message, code=code))

    start, end, ip_at = _aware(period_start), _aware(period_end), _aware(ip_at)
    now = clock.now()
    if start is None:
        refuse("period_start", _("Give the start of the period."), "required")
    if end is None:
        refuse("period_end", _("Give the end of the period."), "required")
    if start is not None and end is not None:
        if start >= end:
            refuse("period_end", _("The period must end after it starts."), "period_order")
        elif end - start > MAX_PERIOD:
            refuse("period_end", _("One request covers at most a year: split it into several."), "period_too_wide")
        if start < now - dt.timedelta(days=365 * MAX_YEARS_BACK + 1):
            refuse(
                "period_start",
                ngettext(
                    "Connection data is kept for %(years)d year: the period cannot start earlier.",
                    "Connection data is kept for %(years)d years: the period cannot start earlier.",
                    MAX_YEARS_BACK,
                )
                % {"years": MAX_YEARS_BACK},
                "period_too_old",
            )
        if start > now:
            refuse("period_start", _("The period cannot start in the future."), "period_future")

    lists: dict[str, list[str]] = {}
    for field, raw, clean in (
        ("accounts", accounts, _clean_account),
        ("logins", logins, _clean_login),
        ("phones", phones, _clean_phone),
        ("ips", ips, _clean_ip),
        ("macs", macs, _clean_mac),
    ):
        values = _values(raw, spaces=field != "phones")
        if len(values) > MAX_VALUES:
            refuse(field, _("At most %(count)d values in one request.") % {"count": MAX_VALUES}, "too_many")
            continue
        cleaned = []
        for value in values:
            try:
                cleaned.append(clean(value))
            except ValidationError as exc:
                refuse(field, exc.messages[0], "invalid")
        lists[field] = list(dict.fromkeys(cleaned))
    if ip_at is not None:
        if not values_given(ips):
            refuse("ip_at", _("An instant applies to an IP address: give the address too."), "required")
        elif start is not None and end is not None and not start <= ip_at < end:
            refuse("ip_at", _("The instant must lie within the period."), "ip_at_outside")
    if not everyone and not any(lists.values()) and not errors:
        refuse(
            "accounts",
            _("Name whom the request is about: an account, login, phone, IP address or MAC address."),
            "no_criteria",
        )
    if errors:
        raise ValidationError(errors)
    return Criteria(
        period_start=start,
        period_end=end,
        ip_at=ip_at,
        everyone=everyone,
        **{name: tuple(values) for name, values in lists.items()},
    )


def values_given(raw) -> bool:
    return bool(_values(raw))


def _clean_account(value: str) -> str:
    if not value.isdigit() or len(value) > 20:
        raise ValidationError(_("“%(value)s” is not an account number.") % {"value": value[:40]}, code="invalid")
    return value


def _clean_login(value: str) -> str:
    if len(value) > 253:
        raise ValidationError(_("A login is at most 253 characters."), code="invalid")
    return value


def _clean_phone(value: str) -> str:
    return normalize_phone(value)


def _clean_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValidationError(_("“%(value)s” is not an IP address.") % {"value": value[:40]}, code="invalid") from None


def _clean_mac(value: str) -> str:
    return normalize_mac(value)


def mac_spellings(mac: str) -> list[str]:
    """The ways NASes write one MAC in Calling-Station-Id (stored as sent): colons or dashes, either case, Cisco's
    dotted groups, bare digits."""
    digits = mac.replace(":", "")
    pairs = [digits[i : i + 2] for i in range(0, 12, 2)]
    quads = [digits[i : i + 4] for i in range(0, 12, 4)]
    forms = {":".join(pairs), "-".join(pairs), ".".join(quads), digits}
    return sorted(forms | {f.upper() for f in forms})


# --- the rows ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Selection:
    """The querysets that answer ``criteria`` for ``user`` (their branch limits applied). Each is read once,
    streamed."""

    criteria: Criteria
    user: object

    def _branch_ids(self) -> set[int] | None:
        return allowed_branch_ids(self.user) if self.user is not None else None

    def _in_period(self, prefix: str = "") -> Q:
        """A session overlapping the period: started before its end, not stopped before its start."""
        c = self.criteria
        return Q(**{f"{prefix}started_at__lt": c.period_end}) & (
            Q(**{f"{prefix}stopped_at__isnull": True}) | Q(**{f"{prefix}stopped_at__gte": c.period_start})
        )

    def _traced_sessions(self) -> Q | None:
        """Sessions the request names directly: by IP (at the instant, or over the period), MAC or login."""
        c = self.criteria
        found = []
        if c.ips:
            if c.ip_at is not None:
                at = c.ip_at
                found.append(
                    Q(framed_ip__in=c.ips, started_at__lte=at) & (Q(stopped_at__isnull=True) | Q(stopped_at__gte=at))
                )
            else:
                found.append(Q(framed_ip__in=c.ips) & self._in_period())
        if c.macs:
            spellings = [s for mac in c.macs for s in mac_spellings(mac)]
            found.append(Q(calling_station_id__in=spellings) & self._in_period())
        if c.logins:
            found.append(Q(username__in=c.logins) & self._in_period())
        if not found:
            return None
        q = found[0]
        for more in found[1:]:
            q |= more
        return q

    def _static_ip_holders(self) -> Q:
        """Logins holding one of the IP addresses as their static address since before the instant (or the end of
        the period): only the current assignment is on the login; earlier ones are in the sessions."""
        c = self.criteria
        held_by = []
        moment = c.ip_at or c.period_end
        for login in Login.objects.filter(static_ip__in=c.ips).only("pk", "static_ip", "subscriber_id", "created_at"):
            since = static_ip_since(login)
            if since <= moment:
                held_by.append(login.subscriber_id)
        return Q(pk__in=held_by)

    def subscriber_filter(self) -> Q:
        c = self.criteria
        if c.everyone:
            return Q()
        q = Q(pk__in=[])
        if c.accounts:
            q |= Q(account_number__in=c.accounts) | Q(legacy_account__in=c.accounts)
        if c.logins:
            q |= Q(pk__in=Login.objects.filter(username__in=c.logins).values("subscriber_id"))
        if c.phones:
            q |= Q(
                pk__in=ContactPoint.objects.filter(kind=ContactKind.PHONE, value__in=c.phones).values("subscriber_id")
            )
        if c.macs:
            overlapping = Q(assigned_at__lt=c.period_end) & (
                Q(returned_at__isnull=True) | Q(returned_at__gte=c.period_start)
            )
            q |= Q(
                pk__in=EquipmentAssignment.objects.filter(overlapping, equipment__mac_address__in=c.macs).values(
                    "subscriber_id"
                )
            )
        traced = self._traced_sessions()
        if traced is not None:
            q |= Q(pk__in=Session.objects.filter(traced, subscriber__isnull=False).values("subscriber_id"))
        if c.ips:
            q |= self._static_ip_holders()
        return q

    def subscribers(self) -> QuerySet[Subscriber]:
        qs = Subscriber.objects.filter(self.subscriber_filter()).select_related("branch")
        ids = self._branch_ids()
        if ids is not None:
            qs = qs.filter(branch_id__in=ids)
        return qs.order_by("pk")

    def _subscriber_ids(self):
        return self.subscribers().values("pk")

    def individuals(self) -> QuerySet[Subscriber]:
        return self.subscribers().filter(kind="individual").prefetch_related("addresses")

    def organisations(self) -> QuerySet[Subscriber]:
        return self.subscribers().filter(kind="organization").prefetch_related("addresses")

    def contacts(self, kind: str) -> QuerySet[ContactPoint]:
        return (
            ContactPoint.objects.filter(subscriber__in=self._subscriber_ids(), kind=kind)
            .select_related("subscriber")
            .order_by("subscriber_id", "-is_primary", "pk")
        )

    def contracts(self) -> QuerySet[Contract]:
        return (
            Contract.objects.filter(subscriber__in=self._subscriber_ids())
            .select_related("subscriber")
            .order_by("subscriber_id", "signed_on", "pk")
        )

    def logins(self) -> QuerySet[Login]:
        return (
            Login.objects.filter(subscriber__in=self._subscriber_ids())
            .select_related("subscriber")
            .order_by("subscriber_id", "pk")
        )

    def static_ips(self) -> QuerySet[Login]:
        return self.logins().filter(static_ip__isnull=False)

    def payments(self) -> QuerySet[Payment]:
        c = self.criteria
        return (
            Payment.objects.filter(
                subscriber__in=self._subscriber_ids(), received_at__gte=c.period_start, received_at__lt=c.period_end
            )
            .select_related("subscriber")
            .order_by("received_at", "pk")
        )

    def sessions(self) -> QuerySet[Session]:
        named = Q(subscriber__in=self._subscriber_ids())
        traced = self._traced_sessions()
        if traced is not None and self._branch_ids() is None:
            # A session whose login belongs to nobody is still the NAS's record of who had the address.
            named |= traced & Q(subscriber__isnull=True)
        return (
            Session.objects.filter(self._in_period(), named)
            .select_related("nas", "subscriber")
            .order_by("started_at", "pk")
        )

    def identity_changes(self) -> QuerySet[AuditEvent]:
        """The audit rows of the exported subscribers' profile changes made since the period began (oldest first),
        each with the subscriber's account number: the identity the export shows is today's."""
        return (
            AuditEvent.objects.filter(
                action="subscriber.updated",
                subscriber_id__in=self._subscriber_ids(),
                created_at__gte=self.criteria.period_start,
            )
            .annotate(
                account_number=Subquery(
                    Subscriber.objects.filter(pk=OuterRef("subscriber_id")).values("account_number")
                )
            )
            .only("subscriber_id", "created_at", "before", "after")
            .order_by("subscriber_id", "created_at", "pk")
        )

    def gateways(self) -> QuerySet[Nas]:
        return Nas.objects.order_by("pk")

    def pools(self) -> QuerySet[IpPool]:
        return IpPool.objects.order_by("pk")

    def agent_names(self) -> dict[str, str]:
        """Payment channel → the agent's name, for ``agent:<code>`` channels (a handful of rows)."""
        return {f"agent:{code}": name for code, name in Agent.objects.values_list("code", "name")}


def stream(queryset: QuerySet) -> Iterator:
    return queryset.iterator(chunk_size=CHUNK)


def static_ip_since(login: Login) -> dt.datetime:
    """When ``login`` got its current static address: the last audit row that set it (the login's creation or an
    edit), else the login's creation."""
    events = AuditEvent.objects.filter(
        object_type="network.login",
        object_id=str(login.pk),
        action__in=("network.login_created", "network.login_updated"),
    ).order_by("-created_at", "-pk")
    for event in events.only("after", "created_at")[:200]:
        if isinstance(event.after, dict) and event.after.get("static_ip") == login.static_ip:
            return event.created_at
    return login.created_at
