from django.conf import settings

from abonent import __version__

from .money import currency_symbol


def abonent(request):
    return {
        "ABONENT_VERSION": __version__,
        "CURRENCY_SYMBOL": currency_symbol(),
        "ABONENT_ENV": settings.ENV,
    }
