"""Why a message was not sent: language-neutral codes stored on ``Message.error``, each with an explanation for
the notification log in the reader's language. The provider's own words go to ``Message.error_detail``."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class MessageError(models.TextChoices):
    # The address cannot take the message: final, never retried.
    NOT_MOBILE = "not_mobile", _("The number is not a mobile phone: it cannot receive SMS.")
    BAD_ADDRESS = "bad_address", _("The provider refused the address as invalid.")
    STOP_LIST = "stop_list", _("The number is on the provider's stop list.")
    BOT_BLOCKED = "bot_blocked", _("The subscriber blocked the Telegram bot.")
    CHAT_NOT_FOUND = "chat_not_found", _("Telegram does not know this chat.")
    # Refused for good: the text or the sender.
    TEXT_REJECTED = "text_rejected", _("The provider refused the text of the message.")
    SENDER_REJECTED = "sender_rejected", _("The provider refused the sender name.")
    BAD_HEADER = "bad_header", _("The subject or the address has a line break or a character an e-mail cannot carry.")
    # A fault on the way: retried with a backoff, final as "failed" when the attempts run out.
    PROVIDER_ERROR = "provider_error", _("The provider answered with an error.")
    TIMEOUT = "timeout", _("The provider did not answer in time.")
    UNREACHABLE = "unreachable", _("The provider could not be reached.")
    RATE_LIMITED = "rate_limited", _("The provider asked to slow down.")
    AUTH_FAILED = "auth_failed", _("The provider refused our credentials: check the channel's settings.")
    NO_BALANCE = "no_balance", _("The account with the provider has run out of money.")
    # Not sent at all.
    NO_TRANSPORT = "no_transport", _("This channel is not configured.")
    CHANNEL_OFF = "channel_off", _("The subscriber turned this channel off.")
    NO_ADDRESS = "no_address", _("The subscriber has no address for any channel.")
    NO_CONSENT = "no_consent", _("No consent to advertising.")
    CLOSED = "closed", _("The subscriber's contract is closed.")
    # A message whose every attempt was cut short (its worker stopped each time): not claimed again.
    INTERRUPTED = "interrupted", _("Every attempt to send it was cut short (the worker stopped); no attempts are left.")
    # A login code that did not go out within the code's lifetime (ABONENT_PORTAL_CODE_SECONDS): of no use any more.
    EXPIRED = "expired", _("A login code that was not sent before it expired.")
    # A crash of our own code while sending (a bug): retried like a provider fault, and logged.
    INTERNAL = "internal", _("An internal error while sending; see the worker's log.")


def explain(code: str) -> str:
    """The explanation of ``code`` for the log; an unknown code as it is."""
    try:
        return str(MessageError(code).label)
    except ValueError:
        return code
