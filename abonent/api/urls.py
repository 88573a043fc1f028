"""The REST API surface: one NinjaAPI, each app's router mounted under ``/api/v1/``."""

from ninja import NinjaAPI

from abonent.billing.api import router as billing_router
from abonent.billing.pricing.api import router as pricing_router
from abonent.catalog.api import router as catalog_router
from abonent.documents.api import router as documents_router
from abonent.dunning.api import router as dunning_router
from abonent.fieldwork.api import router as fieldwork_router
from abonent.helpdesk.incidents.api import router as incidents_router
from abonent.network.api import router as network_router
from abonent.network.api_usage import router as usage_records_router
from abonent.notifications.api import router as notifications_router
from abonent.payments.api import router as payments_router
from abonent.portal.api import router as portal_router
from abonent.subscribers.api import router as subscribers_router

from . import errors
from .auth import TokenAuth
from .docs import docs_access

api = NinjaAPI(
    title="Abonent API",
    version="1",
    description=(
        "REST API of Abonent, billing for internet service providers. Authenticate with "
        "`Authorization: Bearer <token>` (tokens: `abonent create_api_token`). Errors are "
        '`{"error": {"code", "message", "fields"}}` with stable codes. Writes accept an `Idempotency-Key` '
        "header: a retry with the same key returns the first answer. Writes that move money require it (400 "
        "`idempotency_key_required` without it)."
    ),
    urls_namespace="api-v1",
    auth=TokenAuth(),
    docs_url="/docs",
    docs_decorator=docs_access,
)
errors.install(api)
api.add_router("/", subscribers_router)
api.add_router("/", catalog_router)
api.add_router("/", billing_router)
api.add_router("/", pricing_router)
api.add_router("/", network_router)
api.add_router("/", usage_records_router)
api.add_router("/", payments_router)
api.add_router("/", dunning_router)
api.add_router("/", notifications_router)
api.add_router("/", documents_router)
api.add_router("/", incidents_router)
api.add_router("/", fieldwork_router)
api.add_router("/my/", portal_router)
