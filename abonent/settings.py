"""Django settings, read from the environment (12-factor).

Every knob is an environment variable; the defaults run the demo on SQLite under ./var/.
``ABONENT_ENV=production`` refuses to start with a demo default left in place (see ``_check_production``).
"""

from __future__ import annotations

import hashlib
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path

import dj_database_url
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent

# Exactly these; anything else stops the start. A look-alike ("Production", "prod", "production ") used to run with
# the development defaults (DEBUG on, insecure cookies, no production checks): a typo must not fail open.
ENVIRONMENTS = ("production", "development")
ENV = os.environ.get("ABONENT_ENV", "development")
if ENV not in ENVIRONMENTS:
    raise ImproperlyConfigured(f"ABONENT_ENV must be one of {', '.join(ENVIRONMENTS)}, not {ENV!r}")
DEMO_SECRET_KEY = "abonent-demo-secret-key-do-not-use-in-production"  # noqa: S105


from abonent.settings_env import at_least_one as _at_least_one  # noqa: E402
from abonent.settings_env import env_bool as _bool  # noqa: E402
from abonent.settings_env import env_list as _list  # noqa: E402
from abonent.settings_env import var_dir as _var_dir  # noqa: E402

VAR_DIR = _var_dir()

SECRET_KEY = os.environ.get("ABONENT_SECRET_KEY", DEMO_SECRET_KEY)
DEBUG = _bool("ABONENT_DEBUG", ENV != "production")
ALLOWED_HOSTS = _list("ABONENT_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = _list("ABONENT_CSRF_TRUSTED_ORIGINS", "")

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'abonent.sqlite3'}"
if not os.environ.get("DATABASE_URL"):
    # The embedded default needs its folder; a fresh clone has none yet.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
# CONN_MAX_AGE=0: no persistent connections. Under ASGI (`abonent web`) every request runs its sync view in a
# thread of its own, and a persistent connection stayed behind with each such thread: a burst of requests opened
# one connection per request, up to PostgreSQL's max_connections (issue 11; Django's docs, "Persistent
# connections"). On PostgreSQL a thread takes a connection from psycopg's pool instead and gives it back when
# Django closes it (end of a request, a thread's connection.close()).
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web and the worker read while the other writes; IMMEDIATE avoids the
    # "database is locked" upgrade deadlock between two writers.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }


def _database_pool() -> dict | None:
    """psycopg_pool.ConnectionPool's arguments, per process: PostgreSQL's max_connections must hold the sum of
    ABONENT_DB_POOL_MAX over every process (docs/operations.md, "Database connections"). 0 turns the pool off
    (a connection opened and closed per request or thread)."""
    try:
        max_size = int(os.environ.get("ABONENT_DB_POOL_MAX", 10))
        min_size = int(os.environ.get("ABONENT_DB_POOL_MIN", min(2, max_size)))
        # Seconds a thread waits for a free connection: a burst beyond the pool queues, and past this deadline
        # the request fails (PoolTimeout) instead of hanging.
        timeout = float(os.environ.get("ABONENT_DB_POOL_TIMEOUT", 10))
    except ValueError as exc:
        raise ImproperlyConfigured(f"ABONENT_DB_POOL_*: {exc}") from exc
    if max_size == 0:
        return None
    if not 0 <= min_size <= max_size or timeout <= 0:
        raise ImproperlyConfigured(
            "ABONENT_DB_POOL_* needs 0 <= ABONENT_DB_POOL_MIN <= ABONENT_DB_POOL_MAX and ABONENT_DB_POOL_TIMEOUT > 0"
        )
    return {"min_size": min_size, "max_size": max_size, "timeout": timeout}


if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and (_pool := _database_pool()):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = _pool

# A read replica for the reports (docs/scaling.md, "Read replicas"): the reports' selectors read from the alias
# "replica" when it exists and never write to it. Unset: they read the default database. In tests the alias mirrors
# the default test database (Django's TEST MIRROR), so a test sees what the reports read through it.
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(DATABASE_REPLICA_URL, conn_max_age=0, conn_health_checks=True)
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    if DATABASES["replica"]["ENGINE"] == "django.db.backends.postgresql" and (_pool := _database_pool()):
        DATABASES["replica"].setdefault("OPTIONS", {})["pool"] = _pool

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_tasks",
    "abonent.core.tasks_app.TasksDatabaseConfig",  # django_tasks_db, named in the operator's language
    "ninja",
    # Before the staff app: its admin module unregisters the device admins these register (resets are audited actions).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "abonent.core",
    "abonent.staff",
    "abonent.catalog",
    "abonent.subscribers",
    "abonent.billing",
    "abonent.network",
    "abonent.payments",
    "abonent.notifications",
    "abonent.dunning",
    "abonent.helpdesk",
    "abonent.helpdesk.incidents",
    # Field work and the warehouse (issue 18): jobs from helpdesk requests, devices installed through subscribers.
    "abonent.fieldwork",
    "abonent.vouchers",
    "abonent.bonuses",
    "abonent.documents",
    "abonent.portal",
    # Outgoing webhooks to the ISP's CRM and its scoped API tokens: listens to every domain app; nothing imports it.
    "abonent.integrations.webhooks",
    # The finance pages: read billing, subscribers and dunning; nothing imports them.
    "abonent.reports",
    # The subscriber list's export and bulk actions: call the subscribers', billing's and notifications' actions.
    "abonent.bulk",
    # Migration from the old billing (CSV/XLSX): calls the domain apps' bulk import actions; nothing imports it.
    "abonent.imports",
    # Above every domain app: the dashboard reads their figures, the first-run wizard writes their settings.
    "abonent.dashboard",
    "abonent.setup",
    "abonent.integrations.telephony",
    # The lawful-interception export (SORM): reads subscribers, payments and network; nothing imports it.
    "abonent.integrations.lawful",
    "abonent.api",
]
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    INSTALLED_APPS.insert(0, "django.contrib.postgres")

MIDDLEWARE = [
    "abonent.core.middleware.RequestIdMiddleware",
    # Content-Security-Policy and Cache-Control on every response, including those refused below.
    "abonent.core.middleware.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise: static files are not application requests and would only blur the route metrics.
    "abonent.core.metrics.MetricsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # Before anything reads the body (CSRF, the views): a NUL character or an oversized body is a 4xx, not a 500.
    # After LocaleMiddleware: the refusal is in the client's language.
    "abonent.api.middleware.RequestGuardMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): the session passed the second factor (django-otp), then the console's rule on it.
    "django_otp.middleware.OTPMiddleware",
    "abonent.staff.middleware.TwoFactorMiddleware",
    # request.subscriber under /my/: the portal's own login, apart from staff sessions.
    "abonent.portal.middleware.PortalMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "abonent.urls"
ASGI_APPLICATION = "abonent.asgi.application"
WSGI_APPLICATION = "abonent.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "abonent.core.context_processors.abonent",
                "abonent.portal.context_processors.portal",
            ],
        },
    }
]

AUTH_USER_MODEL = "staff.StaffUser"
AUTHENTICATION_BACKENDS = ["abonent.staff.backends.RoleBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "staff:login"
LOGIN_REDIRECT_URL = "dashboard:home"
SESSION_COOKIE_AGE = int(os.environ.get("ABONENT_SESSION_SECONDS", 12 * 3600))
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = ENV == "production"
CSRF_COOKIE_SECURE = ENV == "production"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if _bool("ABONENT_BEHIND_PROXY", False) else None
# Sent with every response (abonent.core.middleware.SecurityHeadersMiddleware). Scripts run only from our own static
# files: no inline <script>, no on*= handler, no eval (htmx's allowEval is off), so injected markup cannot run any.
# <style> elements are refused too (htmx's indicator styles are off; console.css has them); style="" attributes are
# allowed, a few forms set their width with one. data: images are Bootstrap's icons (select arrow, close button).
ABONENT_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# /api/v1/docs and the OpenAPI schema: open to anyone outside production; in production only to staff signed in to
# the console or holding an API token (abonent/api/docs.py).
ABONENT_API_DOCS_PUBLIC = ENV != "production"

LANGUAGE_CODE = os.environ.get("ABONENT_LANGUAGE", "ru")
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("ABONENT_TIME_ZONE", "Europe/Moscow")
USE_I18N = True
USE_TZ = True
# Off, as Django's default: with it on, every integer a template prints is grouped, ids included, so a row's
# ``data-event="{{ e.pk }}"`` or a hidden ``value="{{ s.pk }}"`` became "1 234" past the 999th row and a bulk
# action or a plan change posted an id that no longer parsed. Amounts group through ``|money`` and counts meant
# to be read through ``|number`` (core/templatetags/abonent.py), both with force_grouping.
USE_THOUSAND_SEPARATOR = False

STATIC_URL = "/static/"
# Only for `abonent collectstatic` (nginx serving /static/ itself); WhiteNoise serves the apps' folders directly.
STATIC_ROOT = os.environ.get("ABONENT_STATIC_ROOT") or None
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve straight from the apps' static folders: the demo and tests need no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default", "billing", "dunning", "network", "notifications", "payments"],
    }
}

# Domain settings.
ABONENT_CURRENCY = os.environ.get("ABONENT_CURRENCY", "RUB")
# The ISP's name as printed on cash receipts and cash reports (the legal name: "ООО «Связь»"). The first-run wizard
# (/staff/setup/) stores the company's details in the database, which then win over these settings (core.company);
# while the name is the placeholder and the wizard has not run, the console asks the administrator to run it.
ABONENT_COMPANY_NAME_PLACEHOLDER = "Abonent ISP"
ABONENT_COMPANY_NAME = os.environ.get("ABONENT_COMPANY_NAME", ABONENT_COMPANY_NAME_PLACEHOLDER)
# The support phone subscribers are told to call (E.164; the portal shows it to a blocked subscriber).
ABONENT_COMPANY_PHONE = os.environ.get("ABONENT_COMPANY_PHONE", "")
ABONENT_PHONE_REGION = os.environ.get("ABONENT_PHONE_REGION", "RU")
# The company's requisites printed on invoices, acts and VAT invoices (docs/documents.md): ИНН, КПП, ОГРН, the legal
# address, the bank with its БИК, the settlement and correspondent accounts, and who signs.
ABONENT_COMPANY_INN = os.environ.get("ABONENT_COMPANY_INN", "")
ABONENT_COMPANY_KPP = os.environ.get("ABONENT_COMPANY_KPP", "")
ABONENT_COMPANY_OGRN = os.environ.get("ABONENT_COMPANY_OGRN", "")
ABONENT_COMPANY_ADDRESS = os.environ.get("ABONENT_COMPANY_ADDRESS", "")
ABONENT_COMPANY_BANK = os.environ.get("ABONENT_COMPANY_BANK", "")
ABONENT_COMPANY_BIK = os.environ.get("ABONENT_COMPANY_BIK", "")
ABONENT_COMPANY_ACCOUNT = os.environ.get("ABONENT_COMPANY_ACCOUNT", "")
ABONENT_COMPANY_CORR_ACCOUNT = os.environ.get("ABONENT_COMPANY_CORR_ACCOUNT", "")
ABONENT_COMPANY_DIRECTOR = os.environ.get("ABONENT_COMPANY_DIRECTOR", "")
ABONENT_COMPANY_ACCOUNTANT = os.environ.get("ABONENT_COMPANY_ACCOUNTANT", "")
# Documents (docs/documents.md). Closing documents of a month for organisations: "act" (акт + счёт-фактура) or
# "upd" (one УПД); a subscriber may differ by its extension field. The day of the month the month-end run starts
# (0: never by itself), and where the PDFs are kept (private: served only through authorised views).
ABONENT_DOCUMENTS_CLOSING = os.environ.get("ABONENT_DOCUMENTS_CLOSING", "act")
ABONENT_DOCUMENTS_RUN_DAY = int(os.environ.get("ABONENT_DOCUMENTS_RUN_DAY", 1))
ABONENT_DOCUMENTS_DIR = Path(os.environ.get("ABONENT_DOCUMENTS_DIR", VAR_DIR / "documents"))


# Dunning (docs/dunning.md): the defaults of a ``DunningRule`` where none applies.
# Warned when the money lasts fewer than this many days at today's fees.
ABONENT_DUNNING_WARN_DAYS = int(os.environ.get("ABONENT_DUNNING_WARN_DAYS", 3))
# Restricted this many days → suspended (access rejected); 0: never suspended automatically.
ABONENT_DUNNING_SUSPEND_DAYS = int(os.environ.get("ABONENT_DUNNING_SUSPEND_DAYS", 14))
# "The balance runs out in N days" reminders, once each per run-out date.
ABONENT_DUNNING_REMIND_DAYS = [
    int(day) for day in os.environ.get("ABONENT_DUNNING_REMIND_DAYS", "3,1").split(",") if day.strip()
]
# A promised payment's "expires soon" reminder this many days before its last day (and on it): once per promise.
ABONENT_PROMISED_REMIND_DAYS = int(os.environ.get("ABONENT_PROMISED_REMIND_DAYS", 1))
# A freeze's "ends soon" reminder this many days before the service resumes: once per freeze and end date.
ABONENT_FREEZE_REMIND_DAYS = int(os.environ.get("ABONENT_FREEZE_REMIND_DAYS", 3))

# Notifications (docs/notifications.md).
# No SMS or Telegram in these local hours of the subscriber ("21:00-09:00"; empty: none). E-mail is not held.
ABONENT_QUIET_HOURS = os.environ.get("ABONENT_QUIET_HOURS", "21:00-09:00")
# The payment link put in messages, "{account}" replaced ("https://my.example.ru/pay?account={account}").
ABONENT_PAY_LINK = os.environ.get("ABONENT_PAY_LINK", "")
# The console's and the unsubscribe link's public address ("https://billing.example.ru"), for links in messages.
ABONENT_PUBLIC_URL = os.environ.get("ABONENT_PUBLIC_URL", "").rstrip("/")
# The outside services (SMTP, SMS, Telegram, YooKassa, ATOL): abonent/settings_providers.py.
from abonent.settings_providers import *  # noqa: E402, F403

# What our own requests to a gateway carry, so that two installations on one shop (production and staging, a
# restored backup whose ids run again) never take each other's payments: the prefix of every Idempotence-Key
# (``<prefix>checkout:<id>``, ``<prefix>refund:<id>``, ``<prefix>autopay:<id>``) and of the metadata mark that ties a
# payment to its checkout. Default: "a" and 8 hex digits of a hash of the secret key (stable while the key is).
# Set it explicitly (letters, digits, "-", at most 16 characters) before rotating ABONENT_SECRET_KEY.
ABONENT_GATEWAY_KEY_PREFIX = (
    os.environ.get("ABONENT_GATEWAY_KEY_PREFIX")
    or "a" + hashlib.sha256(("abonent-gateway:" + SECRET_KEY).encode()).hexdigest()[:8] + "-"
)
if not (0 < len(ABONENT_GATEWAY_KEY_PREFIX) <= 16 and ABONENT_GATEWAY_KEY_PREFIX.isascii()) or not all(
    c.isalnum() or c in "-_." for c in ABONENT_GATEWAY_KEY_PREFIX
):
    # Our keys must stay within YooKassa's 64 characters and mean the same everywhere they are written.
    raise ImproperlyConfigured("ABONENT_GATEWAY_KEY_PREFIX: 1-16 letters, digits, '-', '_' or '.'")

# Personal account numbers: this many digits, the last one a Luhn check digit.
ABONENT_ACCOUNT_NUMBER_LENGTH = int(os.environ.get("ABONENT_ACCOUNT_NUMBER_LENGTH", 9))
# The console's login lockout (staff/selectors.py). The lockout cannot be turned off: a limit of 0 made every login a
# 500, a window of 0 seconds would have quietly ended every lockout at once.
ABONENT_LOGIN_MAX_FAILURES = _at_least_one("ABONENT_LOGIN_MAX_FAILURES", 5)
ABONENT_LOGIN_MAX_FAILURES_PER_IP = _at_least_one("ABONENT_LOGIN_MAX_FAILURES_PER_IP", 30)
ABONENT_LOGIN_LOCKOUT_SECONDS = _at_least_one("ABONENT_LOGIN_LOCKOUT_SECONDS", 15 * 60)

# The subscriber portal (/my/, docs/portal.md). A browser session ends after the idle time or at its absolute end,
# an app's token likewise; "log out everywhere" and a password change end them all at once.
# Requests (helpdesk, docs/helpdesk.md): what one subscriber may open and write in any 24 hours through the portal,
# and for how many days a solved request may be reopened.
ABONENT_HELPDESK_TICKETS_PER_DAY = _at_least_one("ABONENT_HELPDESK_TICKETS_PER_DAY", 5)
ABONENT_HELPDESK_COMMENTS_PER_DAY = _at_least_one("ABONENT_HELPDESK_COMMENTS_PER_DAY", 50)
ABONENT_HELPDESK_REOPEN_DAYS = int(os.environ.get("ABONENT_HELPDESK_REOPEN_DAYS", 14))
# Files sent with requests (docs/helpdesk-sla.md): the largest one taken, and the private directory they are kept in
# (served only through the console's and the portal's checked views, never by the web server directly).
ABONENT_HELPDESK_ATTACHMENT_MAX_BYTES = _at_least_one("ABONENT_HELPDESK_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
ABONENT_HELPDESK_ATTACHMENTS_DIR = Path(os.environ.get("ABONENT_HELPDESK_ATTACHMENTS_DIR", VAR_DIR / "attachments"))

# Telephony (docs/telephony.md): Asterisk's Manager Interface that ``abonent telephony`` listens to (no host: the
# command has nothing to do), the shared secret of cloud PBXs' signed webhook (/hooks/telephony/; empty: refused)
# and the directory the PBX writes call recordings to (served only through the authorised view).
ABONENT_AMI_HOST = os.environ.get("ABONENT_AMI_HOST", "")
ABONENT_AMI_PORT = int(os.environ.get("ABONENT_AMI_PORT", 5038))
ABONENT_AMI_USERNAME = os.environ.get("ABONENT_AMI_USERNAME", "abonent")
ABONENT_AMI_SECRET = os.environ.get("ABONENT_AMI_SECRET", "")
ABONENT_TELEPHONY_WEBHOOK_SECRET = os.environ.get("ABONENT_TELEPHONY_WEBHOOK_SECRET", "")
# Lawful-interception exports (docs/lawful-export.md): the ZIPs, kept private (0700/0600) for ABONENT_LAWFUL_FILE_HOURS
# after they are made, then deleted by the worker; a generation stops after ABONENT_LAWFUL_DEADLINE_SECONDS.
ABONENT_LAWFUL_DIR = Path(os.environ.get("ABONENT_LAWFUL_DIR", VAR_DIR / "lawful"))
ABONENT_LAWFUL_FILE_HOURS = int(os.environ.get("ABONENT_LAWFUL_FILE_HOURS", 24))
ABONENT_LAWFUL_DEADLINE_SECONDS = int(os.environ.get("ABONENT_LAWFUL_DEADLINE_SECONDS", 3600))
ABONENT_RECORDINGS_DIR = os.environ.get("ABONENT_RECORDINGS_DIR", str(VAR_DIR / "recordings"))

ABONENT_PORTAL_BRAND = os.environ.get("ABONENT_PORTAL_BRAND", "") or ABONENT_COMPANY_NAME
ABONENT_PORTAL_SESSION_IDLE_SECONDS = _at_least_one("ABONENT_PORTAL_SESSION_IDLE_SECONDS", 24 * 3600)
ABONENT_PORTAL_SESSION_SECONDS = _at_least_one("ABONENT_PORTAL_SESSION_SECONDS", 30 * 24 * 3600)
ABONENT_PORTAL_TOKEN_IDLE_SECONDS = _at_least_one("ABONENT_PORTAL_TOKEN_IDLE_SECONDS", 30 * 24 * 3600)
ABONENT_PORTAL_TOKEN_SECONDS = _at_least_one("ABONENT_PORTAL_TOKEN_SECONDS", 180 * 24 * 3600)
# Wrong passwords or codes per login (and per address) within the lock-out time that lock it for that time.
ABONENT_PORTAL_MAX_FAILURES = _at_least_one("ABONENT_PORTAL_MAX_FAILURES", 5)
ABONENT_PORTAL_MAX_FAILURES_PER_IP = _at_least_one("ABONENT_PORTAL_MAX_FAILURES_PER_IP", 30)
ABONENT_PORTAL_LOCKOUT_SECONDS = _at_least_one("ABONENT_PORTAL_LOCKOUT_SECONDS", 15 * 60)
# One-time codes: how long one works, how many are sent per subscriber per hour, the wait between two.
ABONENT_PORTAL_CODE_SECONDS = _at_least_one("ABONENT_PORTAL_CODE_SECONDS", 10 * 60)
ABONENT_PORTAL_CODES_PER_HOUR = _at_least_one("ABONENT_PORTAL_CODES_PER_HOUR", 5)
ABONENT_PORTAL_CODE_RESEND_SECONDS = _at_least_one("ABONENT_PORTAL_CODE_RESEND_SECONDS", 60)
# Online payments one subscriber may start in any hour through the portal and its app (a retry of the same one
# does not count): past it the portal refuses with 429, so a stolen token is no card-testing front.
ABONENT_PORTAL_CHECKOUTS_PER_HOUR = _at_least_one("ABONENT_PORTAL_CHECKOUTS_PER_HOUR", 10)

# Prepaid cards: well-formed codes that name no card, per subscriber and per address (network) within the window,
# before activation is refused unchecked for the rest of it (docs/vouchers.md).
ABONENT_VOUCHER_MAX_FAILURES = _at_least_one("ABONENT_VOUCHER_MAX_FAILURES", 5)
ABONENT_VOUCHER_MAX_FAILURES_PER_IP = _at_least_one("ABONENT_VOUCHER_MAX_FAILURES_PER_IP", 20)
ABONENT_VOUCHER_ATTEMPT_WINDOW_SECONDS = _at_least_one("ABONENT_VOUCHER_ATTEMPT_WINDOW_SECONDS", 3600)


# Bonus points: what one point is worth in money when spent (docs/bonuses.md): an amount in kopecks from 0.01 to
# 1000; zero or a negative value would make every movement fail or turn it around.
def _point_value() -> str:
    raw = os.environ.get("ABONENT_BONUS_POINT_VALUE", "1.00").strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal(0)
    if not value.is_finite() or not Decimal("0.01") <= value <= 1000 or value != value.quantize(Decimal("0.01")):
        raise ImproperlyConfigured(f"ABONENT_BONUS_POINT_VALUE must be an amount such as 1.00, from 0.01 to 1000, "
                                   f"not {raw!r}")  # fmt: skip
    return raw


ABONENT_BONUS_POINT_VALUE = _point_value()


def _two_factor_roles() -> list[str]:
    """Staff roles that must use two-factor authentication (TOTP) to reach the console and the admin; other staff
    may turn it on. Administrators, cashiers and lawful-interception officers in production; only the officers in
    the demo, development and tests unless set. "none" turns the requirement off (docs/operations.md, "Two-factor
    authentication for staff").

    An empty list must be asked for by name: " " or "," (a list edited down to nothing) used to turn the second
    factor off for everyone without a word, and in production so did a line left blank. Unknown role names are
    the system check staff.E001."""
    raw = os.environ.get("ABONENT_REQUIRE_2FA_ROLES")
    if raw is None:
        # The lawful-interception officer exports passports and session histories: a second factor in every
        # environment unless the list is set (docs/lawful-export.md, "Access").
        return ["admin", "cashier", "lawful"] if ENV == "production" else ["lawful"]
    roles = _list("ABONENT_REQUIRE_2FA_ROLES", "")
    if [role.lower() for role in roles] == ["none"]:
        return []
    if "none" in (role.lower() for role in roles):
        raise ImproperlyConfigured(f'ABONENT_REQUIRE_2FA_ROLES: "none" must stand alone, not in {raw!r}')
    if not roles and (raw or ENV == "production"):
        raise ImproperlyConfigured(
            f"ABONENT_REQUIRE_2FA_ROLES names no role ({raw!r}): list the roles that must use two-factor"
            ' authentication, or write "none" to require it of nobody'
        )
    return roles


ABONENT_REQUIRE_2FA_ROLES = _two_factor_roles()
# The name authenticator apps show beside the login.
OTP_TOTP_ISSUER = os.environ.get("ABONENT_2FA_ISSUER", "Abonent")
ABONENT_SEARCH_PAGE_SIZE = 25
# Chunk workers of a billing run on PostgreSQL (threads, each with its own connection): about one per DB core.
ABONENT_BILLING_WORKERS = int(os.environ.get("ABONENT_BILLING_WORKERS", 2))
# The most one manual adjustment, one-off charge, or payment taken by staff (cash desk, the API's cash and manual
# channels) may move, in the installation currency.
ABONENT_MAX_MANUAL_AMOUNT = os.environ.get("ABONENT_MAX_MANUAL_AMOUNT", "1000000.00")
# Migration from the old billing (docs/imports.md): the largest file taken (bytes) and the most data rows in it.
ABONENT_IMPORT_MAX_BYTES = int(os.environ.get("ABONENT_IMPORT_MAX_BYTES", 50 * 1024 * 1024))
ABONENT_IMPORT_MAX_ROWS = int(os.environ.get("ABONENT_IMPORT_MAX_ROWS", 500_000))
# Deadlines of a payment's database work (seconds): a lock held elsewhere (a migration, a stuck session) makes
# a terminal's pay or a refund fail fast with "try again" instead of waiting for ever (payments.actions).
ABONENT_PAYMENTS_LOCK_TIMEOUT = float(os.environ.get("ABONENT_PAYMENTS_LOCK_TIMEOUT", 3))
ABONENT_PAYMENTS_STATEMENT_TIMEOUT = float(os.environ.get("ABONENT_PAYMENTS_STATEMENT_TIMEOUT", 10))
# Bank statements (1CClientBankExchange): our settlement accounts (comma-separated, 20 digits each); a line is
# taken in only when it pays into one of them. Empty: the account the file itself is for (its РасчСчет).
ABONENT_BANK_ACCOUNTS = _list("ABONENT_BANK_ACCOUNTS", "")
# Payers whose transfers are settlements of money already taken in through another channel (a gateway's or a
# payment agent's daily payout): INNs, comma-separated. Their lines are ignored, not put in suspense.
ABONENT_BANK_SETTLEMENT_INNS = _list("ABONENT_BANK_SETTLEMENT_INNS", "")
# The largest statement file accepted, in bytes (a day's statement of a big ISP is well under a megabyte).
ABONENT_BANK_STATEMENT_MAX_BYTES = _at_least_one("ABONENT_BANK_STATEMENT_MAX_BYTES", 20 * 1024 * 1024)
# The most documents (payment orders) one statement file may hold: the import is one transaction and one request,
# so a larger file is refused before anything is written (split it by dates in the bank's client). An incoming line
# costs ~20 ms (PostgreSQL, a busy 2-core host: 5,000 lines took 103 s), so 2,000 stays within a proxy's 60 s.
# Raise it together with the proxy's and the worker's timeouts.
ABONENT_BANK_STATEMENT_MAX_DOCUMENTS = _at_least_one("ABONENT_BANK_STATEMENT_MAX_DOCUMENTS", 2000)
# Payment agents' check/pay endpoint (/pay/agents/<code>/): how long an agent's settings are cached per process (a
# disabled agent or a new secret takes effect within it), and the deadline of its database work — past it the agent
# is answered 1 ("temporary error, retry"), well inside QIWI's 60 s (docs/payments-terminals.md).
ABONENT_AGENT_CACHE_SECONDS = float(os.environ.get("ABONENT_AGENT_CACHE_SECONDS", 5))
ABONENT_AGENT_DB_TIMEOUT = float(os.environ.get("ABONENT_AGENT_DB_TIMEOUT", 5))
# A payment agent's ``pay`` in one database round trip on PostgreSQL (payments.actions.fastpay); 0 = the intake.
ABONENT_AGENT_FAST_PATH = _bool("ABONENT_AGENT_FAST_PATH", True)
# Threads per web process serving the agents' endpoint (payments.agents_asgi), each holding a pooled connection
# while it runs a request: keep ABONENT_DB_POOL_MAX at least this.
ABONENT_AGENT_THREADS = int(os.environ.get("ABONENT_AGENT_THREADS", 4))
# Off: the agents' endpoint goes through Django's whole middleware stack like any page (abonent.asgi).
ABONENT_AGENT_LEAN_ROUTE = _bool("ABONENT_AGENT_LEAN_ROUTE", True)
# Key for secrets stored reversibly (NAS shared secrets, PPPoE passwords); SECRET_KEY when unset.
ABONENT_FIELD_KEY = os.environ.get("ABONENT_FIELD_KEY", "")
# Keys being rotated away from (comma-separated): values are still decrypted under them until
# `abonent rotate-field-key` has re-encrypted every one under ABONENT_FIELD_KEY (docs/operations.md).
ABONENT_FIELD_KEY_OLD = _list("ABONENT_FIELD_KEY_OLD", "")
# Autopay's schedule, retries and bounds: abonent/settings_autopay.py. The RADIUS server's addresses, limits and
# deadlines, and network monitoring's thresholds: abonent/settings_radius.py.
from abonent.settings_autopay import *  # noqa: E402, F403
from abonent.settings_radius import *  # noqa: E402, F403

LOG_FORMAT = os.environ.get("ABONENT_LOG_FORMAT", "text" if DEBUG else "json")
LOG_LEVEL = os.environ.get("ABONENT_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "abonent.core.logging.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "abonent.core.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
    },
}


def weak_secret_key(key: str) -> bool:
    """Django's own rule (check security.W009): too short, too few different characters, or a generated
    insecure key. Production refuses such a key at start rather than warning under `check --deploy`."""
    return (
        len(key) < SECRET_KEY_MIN_LENGTH
        or len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
        or key.startswith(SECRET_KEY_INSECURE_PREFIX)
    )


def _check_production() -> None:
    """Refuse to run production on demo defaults: a forgotten secret or DEBUG leaks everything."""
    if ENV != "production":
        return
    problems = []
    if SECRET_KEY == DEMO_SECRET_KEY or weak_secret_key(SECRET_KEY):
        problems.append(
            f"ABONENT_SECRET_KEY must be set to a random string of at least {SECRET_KEY_MIN_LENGTH} characters"
            f" (at least {SECRET_KEY_MIN_UNIQUE_CHARACTERS} different ones)"
        )
    if ABONENT_FIELD_KEY and weak_secret_key(ABONENT_FIELD_KEY):
        # It encrypts the NAS shared secrets and PPPoE passwords: a guessable one gives them all up with a dump.
        problems.append(
            f"ABONENT_FIELD_KEY must be unset or a random string of at least {SECRET_KEY_MIN_LENGTH} characters"
            f" (at least {SECRET_KEY_MIN_UNIQUE_CHARACTERS} different ones)"
        )
    if DEBUG:
        problems.append("ABONENT_DEBUG must be off")
    if not os.environ.get("ABONENT_ALLOWED_HOSTS"):
        problems.append("ABONENT_ALLOWED_HOSTS must list the host names the console is served on")
    elif "*" in ALLOWED_HOSTS:
        # Any Host header let through: DNS rebinding reaches the console, and URLs built from the request (redirects,
        # links sent out) can name the attacker's host.
        problems.append("ABONENT_ALLOWED_HOSTS must list the host names, not *")
    if ABONENT_YOOKASSA_SHOP_ID and not ABONENT_YOOKASSA_API_URL.startswith("https://"):  # noqa: F405
        # The secret key goes in every request's Basic auth header.
        problems.append("ABONENT_YOOKASSA_API_URL must be an https:// address")
    if os.environ.get("ABONENT_CLOCK"):
        problems.append("ABONENT_CLOCK (a frozen test clock) must not be set")
    if problems:
        raise ImproperlyConfigured("ABONENT_ENV=production: " + "; ".join(problems))


_check_production()

# Outgoing webhooks (docs/webhooks.md): the deadlines of one POST to a receiver, in seconds.
ABONENT_WEBHOOK_CONNECT_TIMEOUT_S = float(os.environ.get("ABONENT_WEBHOOK_CONNECT_TIMEOUT_S", 5))
ABONENT_WEBHOOK_READ_TIMEOUT_S = float(os.environ.get("ABONENT_WEBHOOK_READ_TIMEOUT_S", 10))
# Deliveries POSTed side by side by one sender (threads waiting on receivers).
ABONENT_WEBHOOK_CONCURRENCY = _at_least_one("ABONENT_WEBHOOK_CONCURRENCY", 4)
# Receivers on this host (loopback) or link-local (169.254.0.0/16: the cloud's metadata service) are refused unless
# this is on; the LAN's private ranges are allowed (an ISP's CRM is often there).
ABONENT_WEBHOOK_ALLOW_LOCAL = _bool("ABONENT_WEBHOOK_ALLOW_LOCAL", False)
if not (0 < ABONENT_WEBHOOK_CONNECT_TIMEOUT_S <= 60 and 0 < ABONENT_WEBHOOK_READ_TIMEOUT_S <= 60):
    raise ImproperlyConfigured("ABONENT_WEBHOOK_CONNECT_TIMEOUT_S and ABONENT_WEBHOOK_READ_TIMEOUT_S: (0, 60] seconds")
