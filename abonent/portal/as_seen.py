"""What the subscriber was shown against what a confirmation does: one comparison for every money-moving
confirmation of the portal (plan change, freeze, unfreeze, promised payment, turbo), on its pages and in its API.

A confirmation runs billing's action, measures what the action wrote (``done``) and rolls everything back when a
term the subscriber saw differs (``PreviewChanged``). What was seen comes from the client: a page sends back every
term it showed in hidden fields; the app sends back the main amount (``expected_net``, ``expected_fee``…) and may
send the others. The app's own preview endpoints also remember what they showed to the token (``ShownPreview``),
so a freeze confirmed a day after its preview is refused although its fee did not move: its dates and the credit
given back did.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from abonent.core import clock
from abonent.core.money import quantize

from .models import ShownPreview


def _normal(value):
    """A term as it is compared and stored: money to the kopeck as text, dates as ISO text."""
    if isinstance(value, Decimal):
        return str(quantize(value))
    if isinstance(value, dt.date):  # a datetime too
        return value.isoformat()
    return value


def _value(done, name: str, values: dict):
    return values[name] if name in values else getattr(done, name)


def differs(seen, done, **values) -> list[str]:
    """The names of the terms of ``seen`` (a dataclass; a term left None was not seen and is not compared) whose
    value is not ``done``'s (an attribute, or ``values[name]`` where the names differ)."""
    return [
        field.name
        for field in dataclasses.fields(seen)
        if getattr(seen, field.name) is not None
        and _normal(getattr(seen, field.name)) != _normal(_value(done, field.name, values))
    ]


def matches(seen, done, **values) -> bool:
    return not differs(seen, done, **values)


def terms(done, names, **values) -> dict:
    """``done``'s values of the terms ``names``, as stored and compared."""
    return {name: _normal(_value(done, name, values)) for name in names}


def seen_by_app(request, seen_type, kind: str, subject: str, **sent):
    """What the app saw: the terms its token was last shown for ``kind``/``subject`` (if it asked for a preview),
    with the ones it sent back (not None) over them."""
    shown = recalled(request, kind, subject)
    known = {name: value for name, value in shown.items() if name in {f.name for f in dataclasses.fields(seen_type)}}
    known.update({name: value for name, value in sent.items() if value is not None})
    return seen_type(**known)


def remember(request, kind: str, subject: str, shown: dict) -> None:
    """Remember that the app's token was shown the terms ``shown`` (``terms()`` of a preview, or of the fresh
    preview a 409 answers with)."""
    session = getattr(request, "portal_session", None)
    if session is None:
        return
    ShownPreview.objects.bulk_create(
        [ShownPreview(session=session, kind=kind, subject=subject, terms=shown, shown_at=clock.now())],
        update_conflicts=True,
        unique_fields=["session", "kind", "subject"],
        update_fields=["terms", "shown_at"],
    )


def recalled(request, kind: str, subject: str) -> dict:
    session = getattr(request, "portal_session", None)
    if session is None:
        return {}
    row = ShownPreview.objects.filter(session=session, kind=kind, subject=subject).values_list("terms", flat=True)
    return row.first() or {}
