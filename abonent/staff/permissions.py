"""Roles and permissions, decided in this one place.

Views, API handlers and actions ask ``has_perm(user, Perm.X)`` (or ``user.has_perm("x")``, which the
``RoleBackend`` answers from here). A role is a fixed set of permissions: operators understand "the
cashier can take payments", not a matrix of checkboxes. Branch limits are a second, independent
filter (``scope_to_branches``).
"""

from __future__ import annotations

from enum import StrEnum
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMIN = "admin", _("Administrator")
    OPERATOR = "operator", _("Operator")
    CASHIER = "cashier", _("Cashier")
    SUPPORT = "support", _("Support")
    ENGINEER = "engineer", _("Engineer")
    # Answers law-enforcement requests (SORM): exports identity, payments and sessions, and sees nothing else.
    LAWFUL = "lawful", _("Lawful interception officer")


class Perm(StrEnum):
    SUBSCRIBER_VIEW = "subscriber.view"
    # Passport, INN/KPP, birth date: personal data under 152-FZ, shown only to roles that need it.
    SUBSCRIBER_VIEW_PERSONAL = "subscriber.view_personal"
    SUBSCRIBER_CREATE = "subscriber.create"
    SUBSCRIBER_EDIT = "subscriber.edit"
    SUBSCRIBER_CLOSE = "subscriber.close"
    NOTE_ADD = "note.add"
    EQUIPMENT_MANAGE = "equipment.manage"
    STAFF_MANAGE = "staff.manage"
    CATALOG_MANAGE = "catalog.manage"
    BILLING_VIEW = "billing.view"
    # Plan changes, freezes, promised payments on a subscriber's behalf.
    SUBSCRIPTION_MANAGE = "subscription.manage"
    # Manual adjustments and one-off charges: money moved by hand, always with a reason.
    BILLING_ADJUST = "billing.adjust"
    # Giving a charge back (a fee, an activation, a freeze fee, a turbo), whole or for some days: revenue already
    # booked is reduced, so only the admin role holds it.
    BILLING_REVERSE = "billing.reverse"
    AUDIT_VIEW = "audit.view"
    # The payments journal, a payment's card, the suspense queue and cash reports (read only).
    PAYMENT_VIEW = "payment.view"
    # Taking money at the cash desk, assigning a suspense payment to its subscriber, closing one's own cash day.
    PAYMENT_TAKE = "payment.take"
    # Cancelling a mistaken entry by reversal. A cashier may cancel their own payment of a day not yet closed
    # (payments.actions.refunds.can_cancel); the administrator any payment.
    PAYMENT_CANCEL = "payment.cancel"
    # Money going back out: refunds to the payer and returning a suspense payment. Administrator only.
    PAYMENT_REFUND = "payment.refund"
    # Bank statement import and the review of its lines.
    PAYMENT_IMPORT = "payment.import"
    # Agents (terminals), gateways, the fiscal-receipt service and their credentials.
    PAYMENT_SETTINGS = "payment.settings"
    # Sessions, authentication attempts and CoA history of a subscriber; the network pages.
    NETWORK_VIEW = "network.view"
    # NAS, logins and passwords, IP pools; disconnecting a session.
    NETWORK_MANAGE = "network.manage"
    # Speak for a NAS on FreeRADIUS's rlm_rest endpoints: they hand out PPPoE passwords in clear and write
    # sessions. No role grants it, not even the administrator's: a service account holds it
    # (SERVICE_ACCOUNT_PERMISSIONS), and the endpoints also want its token bound to the NAS (docs/radius.md).
    RADIUS_SERVICE = "radius.service"
    # The dunning queue, access states and their history, exemptions (read only).
    DUNNING_VIEW = "dunning.view"
    # Exemptions, dunning rules, an operator's block and lifting it.
    DUNNING_MANAGE = "dunning.manage"
    # Terminating a subscriber's access for good (and reinstating it). Administrator only.
    DUNNING_TERMINATE = "dunning.terminate"
    # The notification log of subscribers and the outbox.
    NOTIFICATION_VIEW = "notification.view"
    # Message templates and delivery settings.
    NOTIFICATION_MANAGE = "notification.manage"
    # Bulk messages to groups, branches and the subscribers of a NAS.
    NOTIFICATION_BULK = "notification.bulk"
    # The helpdesk's tickets: the list, a ticket's thread with its internal notes, the card's "Requests" panel.
    TICKET_VIEW = "ticket.view"
    # Opening a ticket for a subscriber, replying (to the subscriber or as an internal note), changing its status.
    TICKET_MANAGE = "ticket.manage"
    # Mass incidents: opening, changing, resolving one and messaging its affected (seeing them: TICKET_VIEW).
    INCIDENT_MANAGE = "incident.manage"
    # Crediting an incident's affected subscribers N days' fees: money to many at once, administrator only.
    INCIDENT_COMPENSATE = "incident.compensate"
    # Individual and group prices, promotions and bundles: what a subscriber pays, so catalog-level, with a reason.
    PRICING_MANAGE = "pricing.manage"
    # Prepaid-card series and dealers: the list, a series' cards and their state (read only).
    VOUCHER_VIEW = "voucher.view"
    # Generating a series, printing its sheet, recording a dealer's sale, voiding cards. Administrator only.
    VOUCHER_MANAGE = "voucher.manage"
    # Bonus rules, a subscriber's bonus account and spending it on fees.
    BONUS_VIEW = "bonus.view"
    BONUS_MANAGE = "bonus.manage"
    # Invoices, acts, VAT invoices and statements: view and download; generate, correct and export (1C).
    DOCUMENT_VIEW = "document.view"
    DOCUMENT_MANAGE = "document.manage"
    # The finance pages: receivables and their ageing, revenue by service, billing runs and the ledger's
    # verification (read only): the business's figures, which a cashier at the desk does not need.
    FINANCE_VIEW = "finance.view"
    # The business reports (docs/reports.md): revenue accrued and received, payments by channel, ARPU, the forecast,
    # and those built on them. Figures of the whole business (or of the user's branches), with exports: the
    # finance-minded roles (administrator, operator), not the cash desk.
    REPORT_VIEW = "report.view"
    # Downloading the subscriber list as CSV/XLSX: personal data of many people at once (152-FZ), audited.
    SUBSCRIBER_EXPORT = "subscriber.export"
    # Actions on many subscribers at once (move to a group, change plans at the period's end), with a preview
    # of how many they touch.
    SUBSCRIBER_BULK = "subscriber.bulk"
    # The first-run wizard and the company's details: who the ISP is on every document. Administrator only.
    SETUP_MANAGE = "setup.manage"
    # Starting a verification of the whole ledger from the console (``abonent ledger verify`` in the worker): a heavy
    # read of every posting, so administrator only; the daily job runs it anyway.
    LEDGER_VERIFY = "ledger.verify"
    # The warehouse (docs/fieldwork.md): receiving devices, issuing them to installers, returns and write-offs.
    STOCK_MANAGE = "stock.manage"
    # Dispatching technician jobs: making them from requests, slots and installers, issuing their devices.
    JOB_MANAGE = "job.manage"
    # An installer's own day: their jobs, ticking the checklist, closing a job with the devices installed.
    JOB_WORK = "job.work"
    # Integrations: webhook endpoints and their secrets, the delivery log and redelivery, integration API tokens.
    # Administrator only.
    INTEGRATION_MANAGE = "integration.manage"
    # A subscriber's calls on the card and the screen-pop of one's own extension.
    CALL_VIEW = "call.view"
    # Playing call recordings: the subscriber's voice, so only roles that handle their requests.
    RECORDING_LISTEN = "recording.listen"
    # Operators' extensions and the operator KPIs page.
    TELEPHONY_MANAGE = "telephony.manage"
    # Exporting a subscriber's identity (passport included), payments and session/IP history for a law-enforcement
    # request (integrations/lawful, docs/lawful-export.md). Only the lawful-interception officer's role holds it,
    # not the administrator's: segregation of duties (LAWFUL_ONLY_PERMISSIONS).
    LAWFUL_EXPORT = "lawful.export"
    # Migration from the old billing (the imports app): subscribers, plans, opening balances and payment history
    # loaded in bulk, so administrator only.
    IMPORT_RUN = "import.run"


# What each permission lets a person do, as the 403 page names the one missing.
PERMISSION_LABELS: dict[Perm, str] = {
    Perm.SUBSCRIBER_VIEW: _("see subscribers"),
    Perm.SUBSCRIBER_VIEW_PERSONAL: _("see subscribers' personal data"),
    Perm.SUBSCRIBER_CREATE: _("add subscribers"),
    Perm.SUBSCRIBER_EDIT: _("edit subscribers"),
    Perm.SUBSCRIBER_CLOSE: _("close and reopen accounts"),
    Perm.NOTE_ADD: _("add notes"),
    Perm.EQUIPMENT_MANAGE: _("install and return equipment"),
    Perm.STAFF_MANAGE: _("manage staff users"),
    Perm.CATALOG_MANAGE: _("manage plans and services"),
    Perm.BILLING_VIEW: _("see balances and the ledger"),
    Perm.SUBSCRIPTION_MANAGE: _("change plans, freeze, take promised payments"),
    Perm.BILLING_ADJUST: _("adjust balances and credit limits"),
    Perm.BILLING_REVERSE: _("give charges back"),
    Perm.AUDIT_VIEW: _("see the change history"),
    Perm.PAYMENT_VIEW: _("see payments"),
    Perm.PAYMENT_TAKE: _("take payments at the cash desk"),
    Perm.PAYMENT_CANCEL: _("cancel payments"),
    Perm.PAYMENT_REFUND: _("refund payments"),
    Perm.PAYMENT_IMPORT: _("import bank statements"),
    Perm.PAYMENT_SETTINGS: _("manage payment channels"),
    Perm.NETWORK_VIEW: _("see sessions and the network"),
    Perm.NETWORK_MANAGE: _("manage NAS, logins and passwords"),
    Perm.RADIUS_SERVICE: _("speak for a NAS (service accounts)"),
    Perm.DUNNING_VIEW: _("see access states and debtors"),
    Perm.DUNNING_MANAGE: _("block access and manage exemptions"),
    Perm.DUNNING_TERMINATE: _("terminate access"),
    Perm.NOTIFICATION_VIEW: _("see notifications"),
    Perm.NOTIFICATION_MANAGE: _("manage message templates"),
    Perm.NOTIFICATION_BULK: _("send bulk messages"),
    Perm.TICKET_VIEW: _("see requests"),
    Perm.TICKET_MANAGE: _("handle requests"),
    Perm.INCIDENT_MANAGE: _("open and resolve mass incidents"),
    Perm.INCIDENT_COMPENSATE: _("compensate mass incidents"),
    Perm.PRICING_MANAGE: _("set individual and group prices"),
    Perm.VOUCHER_VIEW: _("see prepaid cards"),
    Perm.VOUCHER_MANAGE: _("manage prepaid cards"),
    Perm.BONUS_VIEW: _("see bonuses"),
    Perm.BONUS_MANAGE: _("manage bonuses"),
    Perm.DOCUMENT_VIEW: _("see documents"),
    Perm.DOCUMENT_MANAGE: _("issue documents"),
    Perm.FINANCE_VIEW: _("see the finance pages"),
    Perm.REPORT_VIEW: _("see the business reports"),
    Perm.SUBSCRIBER_EXPORT: _("export the subscriber list"),
    Perm.SUBSCRIBER_BULK: _("act on many subscribers at once"),
    Perm.SETUP_MANAGE: _("run the first-run set-up"),
    Perm.STOCK_MANAGE: _("manage the warehouse"),
    Perm.JOB_MANAGE: _("dispatch technician jobs"),
    Perm.JOB_WORK: _("work technician jobs"),
    Perm.INTEGRATION_MANAGE: _("manage integrations and webhooks"),
    Perm.CALL_VIEW: _("see calls"),
    Perm.RECORDING_LISTEN: _("listen to call recordings"),
    Perm.TELEPHONY_MANAGE: _("manage extensions and see operator KPIs"),
    Perm.LAWFUL_EXPORT: _("export data for law-enforcement requests"),
    Perm.IMPORT_RUN: _("import data from the old billing"),
}


class MissingPermission(PermissionDenied):
    """Refused for want of ``permission``: the console's 403 page names it and the roles that hold it (the API
    answers with the plain message)."""

    def __init__(self, permission: Perm):
        super().__init__(_("You do not have permission to do this."))
        self.permission = permission


def roles_with(permission: Perm) -> list[str]:
    """The labels of the roles that hold ``permission``, in the roles' order."""
    return [str(label) for value, label in Role.choices if permission in ROLE_PERMISSIONS.get(value, frozenset())]


# Held by service accounts whatever their role, never by a person (permissions_of).
SERVICE_ACCOUNT_PERMISSIONS: frozenset[Perm] = frozenset({Perm.RADIUS_SERVICE})

# Held by the lawful-interception officer only, never by the administrator: what law enforcement asked about must
# not be readable by whoever runs the billing (they could warn the subscriber), and the administrator's all-powerful
# role is the one most often shared or phished. The administrator can still create an officer's login; that is
# in the audit log, and the officer's exports are audited apart (docs/lawful-export.md, "Access").
LAWFUL_ONLY_PERMISSIONS: frozenset[Perm] = frozenset({Perm.LAWFUL_EXPORT})


ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.ADMIN: frozenset(Perm) - SERVICE_ACCOUNT_PERMISSIONS - LAWFUL_ONLY_PERMISSIONS,
    Role.OPERATOR: frozenset(
        {
            Perm.SUBSCRIBER_VIEW,
            Perm.SUBSCRIBER_VIEW_PERSONAL,
            Perm.SUBSCRIBER_CREATE,
            Perm.SUBSCRIBER_EDIT,
            Perm.SUBSCRIBER_CLOSE,
            Perm.NOTE_ADD,
            Perm.EQUIPMENT_MANAGE,
            Perm.AUDIT_VIEW,
            Perm.BILLING_VIEW,
            Perm.SUBSCRIPTION_MANAGE,
            Perm.BILLING_ADJUST,
            Perm.NETWORK_VIEW,
            Perm.PAYMENT_VIEW,
            Perm.DUNNING_VIEW,
            Perm.DUNNING_MANAGE,
            Perm.NOTIFICATION_VIEW,
            Perm.NOTIFICATION_BULK,
            Perm.TICKET_VIEW,
            Perm.TICKET_MANAGE,
            Perm.INCIDENT_MANAGE,
            Perm.VOUCHER_VIEW,
            Perm.BONUS_VIEW,
            Perm.BONUS_MANAGE,
            Perm.DOCUMENT_VIEW,
            Perm.DOCUMENT_MANAGE,
            Perm.FINANCE_VIEW,
            Perm.REPORT_VIEW,
            Perm.SUBSCRIBER_EXPORT,
            Perm.SUBSCRIBER_BULK,
            Perm.JOB_MANAGE,
            Perm.CALL_VIEW,
            Perm.RECORDING_LISTEN,
        }
    ),
    Role.CASHIER: frozenset(
        {
            Perm.SUBSCRIBER_VIEW,
            Perm.NOTE_ADD,
            Perm.BILLING_VIEW,
            Perm.PAYMENT_VIEW,
            Perm.PAYMENT_TAKE,
            Perm.PAYMENT_CANCEL,
            Perm.PAYMENT_IMPORT,
            Perm.DUNNING_VIEW,
            Perm.NOTIFICATION_VIEW,
            Perm.TICKET_VIEW,
            Perm.VOUCHER_VIEW,
            Perm.DOCUMENT_VIEW,
            Perm.CALL_VIEW,
        }
    ),
    Role.SUPPORT: frozenset(
        {
            Perm.SUBSCRIBER_VIEW,
            Perm.NOTE_ADD,
            Perm.BILLING_VIEW,
            Perm.SUBSCRIPTION_MANAGE,
            Perm.NETWORK_VIEW,
            Perm.PAYMENT_VIEW,
            Perm.DUNNING_VIEW,
            Perm.NOTIFICATION_VIEW,
            Perm.TICKET_VIEW,
            Perm.TICKET_MANAGE,
            Perm.INCIDENT_MANAGE,
            Perm.BONUS_VIEW,
            Perm.DOCUMENT_VIEW,
            Perm.JOB_MANAGE,
            Perm.CALL_VIEW,
            Perm.RECORDING_LISTEN,
        }
    ),
    Role.ENGINEER: frozenset(
        {
            Perm.SUBSCRIBER_VIEW,
            Perm.NOTE_ADD,
            Perm.EQUIPMENT_MANAGE,
            Perm.BILLING_VIEW,
            Perm.NETWORK_VIEW,
            Perm.NETWORK_MANAGE,
            Perm.TICKET_VIEW,
            Perm.TICKET_MANAGE,
            Perm.INCIDENT_MANAGE,
            Perm.STOCK_MANAGE,
            Perm.JOB_WORK,
        }
    ),
    # Nothing but the export: no subscriber card, no search, no audit log (docs/lawful-export.md, "Access").
    Role.LAWFUL: LAWFUL_ONLY_PERMISSIONS,
}


# Where a role lands after the login and when it opens the console's home: the dashboard, except for a role that
# has none of its widgets and one page of its own. A URL name, so staff imports no app that sits on top of it.
ROLE_HOME: dict[str, str] = {Role.LAWFUL: "lawful:requests"}


def home_url_name(user) -> str | None:
    """The URL name of ``user``'s own home page, or ``None`` for the dashboard."""
    return ROLE_HOME.get(getattr(user, "role", None))


def permissions_of(user) -> frozenset[Perm]:
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return frozenset()
    granted = ROLE_PERMISSIONS.get(user.role, frozenset())
    return granted | SERVICE_ACCOUNT_PERMISSIONS if getattr(user, "is_service_account", False) else granted


def has_perm(user, perm: Perm | str) -> bool:
    try:
        wanted = Perm(perm)
    except ValueError:
        return False
    return wanted in permissions_of(user)


def check_perm(user, perm: Perm | str) -> None:
    if has_perm(user, perm):
        return
    try:
        wanted = Perm(perm)
    except ValueError:
        raise PermissionDenied(_("You do not have permission to do this.")) from None
    raise MissingPermission(wanted)


def require_perm(perm: Perm):
    """Decorator of a console view: a login first (anonymous: the login page), then ``perm`` (without it: 403,
    and the view does not run). The one copy the apps' views import, beside the table it reads."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            check_perm(request.user, perm)
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorator


def allowed_branch_ids(user) -> set[int] | None:
    """The branches a user may see, or ``None`` for all of them (no branch limit set)."""
    ids = getattr(user, "_branch_ids_cache", None)
    if ids is None:
        ids = set(user.branches.values_list("pk", flat=True)) if user.pk else set()
        user._branch_ids_cache = ids
    return ids or None


def scope_to_branches(queryset, user, field: str = "branch"):
    ids = allowed_branch_ids(user)
    return queryset if ids is None else queryset.filter(**{f"{field}__in": ids})


def check_branch(user, branch_id: int | None) -> None:
    ids = allowed_branch_ids(user)
    if ids is not None and branch_id not in ids:
        raise PermissionDenied(_("This record belongs to a branch you do not have access to."))
