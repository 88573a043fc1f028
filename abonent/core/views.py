"""Health endpoints for the load balancer and systemd."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from abonent import __version__


@never_cache
def healthz(request):
    """Liveness and readiness in one: the process answers and the database does too."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return JsonResponse({"status": "error", "database": str(exc.__class__.__name__)}, status=503)
    return JsonResponse({"status": "ok", "database": "ok", "version": __version__})
