"""The printable sheet of a series: an HTML template laid out for A4 (cards in a grid, cut lines), made a PDF by
WeasyPrint. Only cards that can still be activated (new or sold) are printed, their codes read back from the
encrypted column; who printed which series is in the audit log."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation

from abonent.core import audit
from abonent.core.company import company_details
from abonent.network.actions import SYSTEM_HOTSPOT_PREFIX

from . import selectors
from .models import SeriesKind, VoucherSeries


def render_sheet(series: VoucherSeries, *, acting_user, base_url: str = "") -> bytes:
    from weasyprint import HTML  # heavy: loaded when a sheet is printed

    from .actions import check_series_branch

    check_series_branch(acting_user, series)  # the codes in clear
    cards = selectors.sheet_cards(series)
    public = settings.ABONENT_PUBLIC_URL or base_url.rstrip("/")
    company = company_details()
    html = render_to_string(
        "vouchers/sheet.html",
        {
            "series": series,
            "cards": cards,
            "company": company.name,
            "phone": company.phone,
            "wifi": series.kind == SeriesKind.WIFI,
            "login_prefix": SYSTEM_HOTSPOT_PREFIX,
            "where": f"{public}/my/wifi/" if series.kind == SeriesKind.WIFI else f"{public}/my/pay/",
            "language": translation.get_language(),
        },
    )
    pdf = HTML(string=html).write_pdf()
    audit.record(
        actor=acting_user,
        action="vouchers.sheet_printed",
        obj=series,
        after={
            "cards": len(cards),
            "first": cards[0].serial if cards else "",
            "last": cards[-1].serial if cards else "",
        },
    )
    return pdf
