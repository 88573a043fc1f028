"""The built-in text of every event, in every language through gettext; staff replace any of them with a
``Template`` of their own. SMS texts are short (one or two SMS parts in Cyrillic); e-mails add a greeting."""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext as _

# ruff: noqa: E501 (one message per line: translators and reviewers read them whole)
from .models import Channel, Event


def _texts() -> dict[str, tuple[str, str]]:
    """event → (subject, short text), in the active language."""
    return {
        Event.RUNOUT_SOON: (
            _("Your balance runs out in {days_left} days"),
            _(
                "{provider}: account {account}, balance {balance} ₽ lasts until {runout_on}. Top up {amount_due} ₽ to stay online: {pay_link}"
            ),
        ),
        Event.RESTRICTED: (
            _("Internet access is restricted"),
            _(
                "{provider}: account {account} has run out of money, access is restricted. Pay {amount_due} ₽ to restore it: {pay_link}"
            ),
        ),
        Event.SUSPENDED: (
            _("Internet access is suspended"),
            _(
                "{provider}: access for account {account} is suspended for debt. Pay {amount_due} ₽ to restore it: {pay_link}"
            ),
        ),
        Event.RESTORED: (
            _("Internet access is restored"),
            _("{provider}: access for account {account} is restored. Balance {balance} ₽."),
        ),
        Event.PAYMENT_RECEIVED: (
            _("Payment received"),
            _("{provider}: {amount} ₽ received on account {account}, balance {balance} ₽. {receipt_link}"),
        ),
        Event.AUTOPAY_REMINDER: (
            _("Autopay on {due_on}"),
            _("{provider}: on {due_on} we will charge {amount} ₽ to {method} for account {account}."),
        ),
        Event.AUTOPAY_SUCCEEDED: (
            _("Autopay done"),
            _("{provider}: {amount} ₽ charged to {method} for account {account}."),
        ),
        Event.AUTOPAY_DECLINED: (
            _("Autopay declined"),
            _("{provider}: charging {amount} ₽ to {method} failed ({reason}). Pay here: {pay_link}"),
        ),
        Event.AUTOPAY_RETRY_SCHEDULED: (
            _("Autopay declined, we will try again"),
            _("{provider}: charging {amount} ₽ to {method} failed ({reason}); we will try again on {next_try_on}."),
        ),
        Event.AUTOPAY_STOPPED: (
            _("Autopay stopped"),
            _("{provider}: autopay with {method} for account {account} is stopped ({reason})."),
        ),
        Event.METHOD_UNLINKED: (
            _("Payment method unlinked"),
            _("{provider}: {method} is no longer linked to account {account}."),
        ),
        Event.PROMISED_EXPIRING: (
            _("Your promised payment ends on {expires_on}"),
            _(
                "{provider}: the promised payment of {amount} ₽ on account {account} ends on {expires_on}. Pay {amount_due} ₽ to stay online: {pay_link}"
            ),
        ),
        Event.FREEZE_ENDING: (
            _("Your freeze ends on {ends_on}"),
            _("{provider}: the freeze of account {account} ends on {ends_on}; the service and its fees resume then."),
        ),
        Event.PLAN_CHANGED: (
            _("Your plan is now {plan}"),
            _("{provider}: from {effective_on} account {account} is on {plan}, {monthly_fee} ₽ a month."),
        ),
        Event.DOCUMENT_ISSUED: (
            _("New document: {document}"),
            _("{provider}: {document} for account {account} is ready: {document_link}"),
        ),
        Event.TICKET_UPDATED: (
            _("Request {ticket}: {ticket_status}"),
            _("{provider}: your request {ticket} is now “{ticket_status}”. {ticket_link}"),
        ),
        Event.LOGIN_CODE: (
            _("Your code: {code}"),
            _(
                "{provider}: code {code} to sign in to your account {account}. It works {minutes} minutes. Do not tell it to anyone."
            ),
        ),
        Event.CONTACT_CODE: (
            _("Your code: {code}"),
            _(
                "{provider}: code {code} to confirm this phone or e-mail in the personal account. It works {minutes} minutes. If you did not ask for it, ignore this message and do not tell the code to anyone."
            ),
        ),
        Event.BULK: ("", ""),
    }


def default_template(event: str, channel: str, language: str) -> tuple[str, str]:
    """(subject, body) of the built-in template; the subject is for e-mail only."""
    with translation.override(language):
        subject, text = _texts().get(event, ("", ""))
        if channel != Channel.EMAIL:
            return "", text
        body = _("Hello, {name}!") + "\n\n" + text + "\n\n" + _("This is an automatic message from {provider}.")
        return subject, body
