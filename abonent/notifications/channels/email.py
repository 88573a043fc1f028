"""E-mail over Django's mail backend (``EMAIL_BACKEND``, SMTP by default, with ``EMAIL_TIMEOUT`` on every wait).

Every message carries an unsubscribe link (in the text and as ``List-Unsubscribe`` with one-click
``List-Unsubscribe-Post``, RFC 8058): a signed token of the subscriber that the public page
``/notifications/unsubscribe/<token>/`` turns into "e-mail off" in the subscriber's preferences.
The ``Message-ID`` is ours (``<abonent-<id>.<attempt>@host>``), stored as the provider id. SMTP has no
idempotency: a connection lost after DATA is retried, so a message may (rarely) arrive twice.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage, get_connection
from django.core.mail.message import sanitize_address
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from ..errors import MessageError
from ..models import Channel, Message
from .base import UNBOUNDED, Budget, Outcome, Result, not_tried

UNSUBSCRIBE_SALT = "abonent.notifications.unsubscribe"


def unsubscribe_token(subscriber_id: int) -> str:
    return signing.dumps({"s": subscriber_id}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_subscriber_id(token: str) -> int | None:
    """The subscriber of a token made by ``unsubscribe_token``, or ``None`` for a forged or damaged one."""
    try:
        value = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    subscriber_id = value.get("s") if isinstance(value, dict) else None
    return subscriber_id if isinstance(subscriber_id, int) else None


def unsubscribe_url(subscriber_id: int) -> str:
    path = reverse("notifications_public:unsubscribe", args=[unsubscribe_token(subscriber_id)])
    return f"{settings.ABONENT_PUBLIC_URL}{path}"


def _outcome_of(exc: Exception) -> Outcome:
    detail = f"{type(exc).__name__}: {exc}"[:500]
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        if codes and all(400 <= code < 500 for code in codes):
            return Outcome(Result.RETRY, error=MessageError.PROVIDER_ERROR, detail=detail)
        return Outcome(Result.UNDELIVERABLE, error=MessageError.BAD_ADDRESS, detail=detail)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return Outcome(Result.RETRY, error=MessageError.AUTH_FAILED, detail=detail)
    if isinstance(exc, smtplib.SMTPResponseException):
        if 500 <= exc.smtp_code < 600:
            sender = isinstance(exc, smtplib.SMTPSenderRefused)
            error = MessageError.SENDER_REJECTED if sender else MessageError.TEXT_REJECTED
            return Outcome(Result.FAILED, error=error, detail=detail)
        return Outcome(Result.RETRY, error=MessageError.PROVIDER_ERROR, detail=detail)
    if isinstance(exc, socket.timeout | TimeoutError | smtplib.SMTPServerDisconnected):
        return Outcome(Result.RETRY, error=MessageError.TIMEOUT, detail=detail)
    if isinstance(exc, ConnectionRefusedError | socket.gaierror):
        return Outcome(Result.RETRY, error=MessageError.UNREACHABLE, detail=detail)
    return Outcome(Result.RETRY, error=MessageError.PROVIDER_ERROR, detail=detail)


class EmailTransport:
    channel = Channel.EMAIL
    max_batch = 20  # one SMTP connection carries a batch

    def build(self, message: Message) -> EmailMessage:
        host = settings.ABONENT_NOTIFY_EMAIL_FROM.rpartition("@")[2].strip(">") or "abonent.local"
        headers = {"Message-ID": f"<abonent-{message.pk}.{message.attempts}@{host}>"}
        body = message.body
        if message.subscriber_id and settings.ABONENT_PUBLIC_URL:
            link = unsubscribe_url(message.subscriber_id)
            with translation.override(message.language or settings.LANGUAGE_CODE):
                footer = _("To stop these e-mails: %(link)s") % {"link": link}
            body = f"{body}\n\n-- \n{footer}\n"
            headers["List-Unsubscribe"] = f"<{link}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return EmailMessage(
            subject=message.subject or settings.ABONENT_COMPANY_NAME,
            body=body,
            from_email=settings.ABONENT_NOTIFY_EMAIL_FROM,
            to=[message.address],
            headers=headers,
        )

    def checked(self, message: Message) -> EmailMessage | Outcome:
        """The e-mail, or the final outcome of one that can never be built: a line break in the subject (a header
        injection such as ``\\nBcc:``), an address Django cannot encode. That is this message's fault, not the
        server's: it fails alone, at once, and the connection carries on with the rest."""
        try:
            email = self.build(message)
            email.message()  # the headers: BadHeaderError (a ValueError) on a line break
            encoding = email.encoding or settings.DEFAULT_CHARSET
            for address in (email.from_email, *email.recipients()):
                sanitize_address(address, encoding)
        except ValueError as exc:  # BadHeaderError, an invalid address, UnicodeError
            return Outcome(Result.FAILED, error=MessageError.BAD_HEADER, detail=f"{type(exc).__name__}: {exc}"[:500])
        return email

    def send(self, messages: list[Message], budget: Budget = UNBOUNDED) -> list[Outcome]:
        if not budget.allows():
            return not_tried(len(messages))
        connection = get_connection(fail_silently=False, timeout=settings.EMAIL_TIMEOUT)
        outcomes: list[Outcome] = []
        try:
            connection.open()
        except Exception as exc:  # smtplib and socket errors of every kind: the whole batch waits
            outcome = _outcome_of(exc)
            if outcome.error == MessageError.TIMEOUT:
                outcome.error = MessageError.UNREACHABLE  # nothing was sent yet
            return [outcome for _ in messages]
        try:
            for message in messages:
                if not budget.allows():
                    outcomes.extend(not_tried(len(messages) - len(outcomes)))
                    break
                email = self.checked(message)
                if isinstance(email, Outcome):
                    outcomes.append(email)
                    continue
                try:
                    connection.send_messages([email])
                except Exception as exc:
                    outcomes.append(_outcome_of(exc))
                    if isinstance(exc, smtplib.SMTPServerDisconnected) or not isinstance(exc, smtplib.SMTPException):
                        # The connection is gone: the rest of the batch waits for the next attempt.
                        rest = Outcome(Result.RETRY, error=MessageError.UNREACHABLE, detail="connection lost")
                        outcomes.extend(rest for _ in messages[len(outcomes) :])
                        break
                else:
                    outcomes.append(Outcome(Result.SENT, provider_id=email.extra_headers["Message-ID"][:100]))
        finally:
            # Closing a broken connection may fail too; the outcomes stand.
            with contextlib.suppress(Exception):
                connection.close()
        return outcomes
