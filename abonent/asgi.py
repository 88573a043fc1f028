import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "abonent.settings")
django_application = get_asgi_application()

from abonent.payments import agents_asgi  # noqa: E402 - needs the settings configured above


async def application(scope, receive, send):
    # The payment agents' protocol skips the console's middleware and runs in its own threads (agents_asgi).
    if agents_asgi.takes(scope):
        await agents_asgi.handle(scope, receive, send, django_application)
    else:
        await django_application(scope, receive, send)
