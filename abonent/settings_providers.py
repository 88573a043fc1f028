"""Settings of the outside services Abonent talks to: the SMTP relay, the SMS providers and the Telegram bot
(notifications), YooKassa (online payments) and ATOL Online (fiscal receipts). Every value comes from the
environment; ``settings.py`` imports them all, so ``django.conf.settings`` has them as before."""

import os

from abonent.settings_env import at_least_one as _at_least_one
from abonent.settings_env import env_list as _list

# Delivery (docs/notifications-delivery.md). E-mail: Django's SMTP settings; every wait bounded by EMAIL_TIMEOUT.
ABONENT_NOTIFY_EMAIL_FROM = os.environ.get("ABONENT_NOTIFY_EMAIL_FROM", "noreply@localhost")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", 25))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("EMAIL_USE_TLS", "0") == "1"
EMAIL_USE_SSL = os.environ.get("EMAIL_USE_SSL", "0") == "1"
EMAIL_TIMEOUT = float(os.environ.get("EMAIL_TIMEOUT", 20))
# SMS: "smsru", "smsc" or "" (no SMS); the base URLs are settings so tests and proxies can point elsewhere.
ABONENT_SMS_PROVIDER = os.environ.get("ABONENT_SMS_PROVIDER", "")
ABONENT_SMS_SENDER = os.environ.get("ABONENT_SMS_SENDER", "")
ABONENT_SMSRU_URL = os.environ.get("ABONENT_SMSRU_URL", "https://sms.ru").rstrip("/")
ABONENT_SMSRU_API_ID = os.environ.get("ABONENT_SMSRU_API_ID", "")
ABONENT_SMSC_URL = os.environ.get("ABONENT_SMSC_URL", "https://smsc.ru/sys").rstrip("/")
ABONENT_SMSC_LOGIN = os.environ.get("ABONENT_SMSC_LOGIN", "")
ABONENT_SMSC_PASSWORD = os.environ.get("ABONENT_SMSC_PASSWORD", "")
ABONENT_SMSC_APIKEY = os.environ.get("ABONENT_SMSC_APIKEY", "")
# Telegram: the bot's token and name (for t.me links), and the secret of its webhook (empty: webhook off).
ABONENT_TELEGRAM_API_URL = os.environ.get("ABONENT_TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/")
ABONENT_TELEGRAM_BOT_TOKEN = os.environ.get("ABONENT_TELEGRAM_BOT_TOKEN", "")
ABONENT_TELEGRAM_BOT_NAME = os.environ.get("ABONENT_TELEGRAM_BOT_NAME", "")
ABONENT_TELEGRAM_WEBHOOK_SECRET = os.environ.get("ABONENT_TELEGRAM_WEBHOOK_SECRET", "")
# Provider requests in flight at once per worker, and the whole-call deadline of one request (seconds).
ABONENT_NOTIFY_CONCURRENCY = _at_least_one("ABONENT_NOTIFY_CONCURRENCY", 8)
ABONENT_NOTIFY_HTTP_DEADLINE = float(os.environ.get("ABONENT_NOTIFY_HTTP_DEADLINE", 15))

# Online payments through YooKassa (API v3; docs/payments.md, "YooKassa"). The gateway is on when both the shop id
# and the secret key are set. The API URL is a setting so that tests (and a staging proxy) can point it elsewhere.
ABONENT_YOOKASSA_SHOP_ID = os.environ.get("ABONENT_YOOKASSA_SHOP_ID", "")
ABONENT_YOOKASSA_SECRET_KEY = os.environ.get("ABONENT_YOOKASSA_SECRET_KEY", "")
ABONENT_YOOKASSA_API_URL = os.environ.get("ABONENT_YOOKASSA_API_URL", "https://api.yookassa.ru/v3")
# Where the payer's browser returns after YooKassa's page (the portal's page of the payment), unless the caller
# gives one.
ABONENT_YOOKASSA_RETURN_URL = os.environ.get("ABONENT_YOOKASSA_RETURN_URL", "")
# Deadlines of every call to YooKassa, in seconds: connecting, and waiting for the answer.
ABONENT_YOOKASSA_CONNECT_TIMEOUT = float(os.environ.get("ABONENT_YOOKASSA_CONNECT_TIMEOUT", 5))
ABONENT_YOOKASSA_READ_TIMEOUT = float(os.environ.get("ABONENT_YOOKASSA_READ_TIMEOUT", 15))
# Refused requests to a gateway's notice address (a foreign source, not a notice) kept as rows for staff, per
# minute: at most this many per address, and this many in all; the rest are only counted in the metric
# abonent_gateway_notices_refused_total.
ABONENT_GATEWAY_REJECTED_PER_MINUTE = int(os.environ.get("ABONENT_GATEWAY_REJECTED_PER_MINUTE", 5))
ABONENT_GATEWAY_REJECTED_TOTAL_PER_MINUTE = int(os.environ.get("ABONENT_GATEWAY_REJECTED_TOTAL_PER_MINUTE", 30))
# The networks YooKassa sends notifications from (SDK 3.13 SecurityHelper.YOOKASSA_NETWORKS); a notice from any
# other address is refused. The client address is the one ``core.middleware.client_ip`` gives (proxy rules there).
ABONENT_YOOKASSA_NETWORKS = _list(
    "ABONENT_YOOKASSA_NETWORKS",
    "77.75.153.0/25,77.75.156.11,77.75.156.35,77.75.154.128/25,185.71.76.0/27,185.71.77.0/27,"
    "2a02:5180:0:1509::/64,2a02:5180:0:2655::/64,2a02:5180:0:1533::/64,2a02:5180:0:2669::/64",
)
# A checkout still pending this many minutes after it started (or after its last check) is asked about by the
# worker: the notice may never have come, or the create call timed out.
ABONENT_GATEWAY_SYNC_AFTER_MINUTES = _at_least_one("ABONENT_GATEWAY_SYNC_AFTER_MINUTES", 5)
# The most one online payment may be (YooKassa's SBP limit is 700 000 RUB).
ABONENT_ONLINE_PAYMENT_MAX = os.environ.get("ABONENT_ONLINE_PAYMENT_MAX", "700000.00")

# Fiscal receipts (54-FZ) for payments, docs/payments-receipts.md. "none": no cash register, receipts are marked
# not required; "atol": ATOL Online API v5 (FFD 1.2). The company block and the tax settings go into every receipt.
ABONENT_FISCAL_PROVIDER = os.environ.get("ABONENT_FISCAL_PROVIDER", "none")
ABONENT_FISCAL_INN = os.environ.get("ABONENT_FISCAL_INN", "")
ABONENT_FISCAL_EMAIL = os.environ.get("ABONENT_FISCAL_EMAIL", "")
ABONENT_FISCAL_PAYMENT_ADDRESS = os.environ.get("ABONENT_FISCAL_PAYMENT_ADDRESS", "")
# Tax system (ATOL "sno"): osn, usn_income, usn_income_outcome, esn, patent.
ABONENT_FISCAL_SNO = os.environ.get("ABONENT_FISCAL_SNO", "osn")
# "auto": the dated rate of ABONENT_FISCAL_VAT_RATES as a calculated rate (vat120, vat122), "none" on a simplified
# tax system; "none"; or a fixed ATOL code (vat0, vat5, vat7, vat10, vat20, vat22, vat105, vat107, vat110, ...).
ABONENT_FISCAL_VAT = os.environ.get("ABONENT_FISCAL_VAT", "auto")
# The standard VAT rate from each date on (the receipt's local date picks the row): 425-FZ raised it to 22 %.
ABONENT_FISCAL_VAT_RATES = os.environ.get("ABONENT_FISCAL_VAT_RATES", "2019-01-01:20,2026-01-01:22")
ABONENT_FISCAL_ITEM_NAME = os.environ.get("ABONENT_FISCAL_ITEM_NAME", "Аванс за услуги связи")
# Channels whose provider fiscalizes by itself (a gateway's own receipts), and terminal-agent channels
# ("agent:sber") for which the ISP, not the agent, must issue the receipt (a bank app paying the ISP's account).
ABONENT_FISCAL_SKIP_CHANNELS = _list("ABONENT_FISCAL_SKIP_CHANNELS", "")
ABONENT_FISCAL_OWN_AGENT_CHANNELS = _list("ABONENT_FISCAL_OWN_AGENT_CHANNELS", "")
# Prefix of our receipt ids at the provider: two installations sharing one ATOL group must not share ids.
# How far back the minute job looks for payments left without an income receipt (their after-commit handler
# failed), in hours.
ABONENT_FISCAL_SWEEP_HOURS = int(os.environ.get("ABONENT_FISCAL_SWEEP_HOURS", 48))
ABONENT_FISCAL_ID_PREFIX = os.environ.get("ABONENT_FISCAL_ID_PREFIX", "abn-")
# The public URL of POST /pay/atol/callback that ATOL calls when a receipt is done; empty: polling only.
ABONENT_FISCAL_CALLBACK_URL = os.environ.get("ABONENT_FISCAL_CALLBACK_URL", "")
# The OFD's public receipt page, with {inn} {rn} {fn} {fd} {fp} {qr} filled in, e.g. Первый ОФД / ofd.ru:
# "https://check.ofd.ru/rec/{inn}/{rn}/{fn}/{fd}/{fp}"; empty: the console shows the QR code's text only.
ABONENT_FISCAL_CHECK_URL = os.environ.get("ABONENT_FISCAL_CHECK_URL", "")
ABONENT_ATOL_API_URL = os.environ.get("ABONENT_ATOL_API_URL", "https://online.atol.ru/possystem/v5/")
ABONENT_ATOL_LOGIN = os.environ.get("ABONENT_ATOL_LOGIN", "")
ABONENT_ATOL_PASSWORD = os.environ.get("ABONENT_ATOL_PASSWORD", "")
ABONENT_ATOL_GROUP_CODE = os.environ.get("ABONENT_ATOL_GROUP_CODE", "")
# Seconds one request to ATOL may take (connect and read); a timeout is retried later with the same id.
ABONENT_ATOL_TIMEOUT = float(os.environ.get("ABONENT_ATOL_TIMEOUT", 10))
