"""REST API for payments, one module per concern, all on one router (mounted under ``/api/v1/``)."""

from ninja import Router

router = Router(tags=["payments"])

from . import autopay, gateway, payments, statements  # noqa: E402,F401  (each module registers its endpoints on the router)

__all__ = ["router"]
