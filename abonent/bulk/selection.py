"""Which subscribers a bulk action or an export takes: the rows ticked on the list's page, or every subscriber the
list's filter matches. Both start from the subscribers the user sees (``visible_subscribers``): an id of another
branch's subscriber in a forged form is simply not there."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils.translation import gettext as _

from abonent.subscribers import selectors as subscriber_selectors
from abonent.subscribers.forms import SubscriberFilterForm
from abonent.subscribers.models import Subscriber

# The list's own parameters that are not filters.
NOT_FILTERS = ("page", "cursor", "format", "sort")
# Rows ticked by hand: at most a page or two.
MAX_TICKED = 500


def list_filter(query: str) -> str:
    """The list's query string kept to its filters (no page, cursor or format), as a bulk action records it."""
    params = QueryDict(query or "", mutable=True)
    for name in NOT_FILTERS:
        params.pop(name, None)
    return params.urlencode()


def matching(user, query: str) -> QuerySet[Subscriber]:
    """Every subscriber ``user`` sees that the subscriber list shows for ``query`` (its query string), unordered.
    The list's own form parses it, so a filter another app adds to the list (dunning's access state) counts too;
    a filter that does not parse is left out, as the list leaves it out."""
    form = SubscriberFilterForm(QueryDict(query or ""), user=user)
    data = form.cleaned_data if form.is_valid() else {}
    filters = subscriber_selectors.SubscriberFilters(
        query=data.get("q") or "",
        branch_id=data["branch"].pk if data.get("branch") else None,
        status=data.get("status") or "",
        kind=data.get("kind") or "",
        group_id=data["group"].pk if data.get("group") else None,
        extra=form.extra_filters(),
    )
    try:
        qs, _terms, _too_short = subscriber_selectors.filter_subscribers(user, filters)
    except ValidationError:
        return Subscriber.objects.none()
    return qs.order_by()


@dataclass(frozen=True)
class Selection:
    """Ticked rows (``ids``) or all the filter matches (``ids`` is None); ``query`` is the list's filter either way."""

    ids: tuple[int, ...] | None
    query: str

    @classmethod
    def from_post(cls, data) -> Selection:
        query = list_filter(data.get("query", ""))
        if data.get("scope") == "all":
            return cls(None, query)
        ids = set()
        for value in data.getlist("ids"):
            if value.isascii() and value.isdigit() and len(value) < 19:
                ids.add(int(value))
                if len(ids) > MAX_TICKED:
                    # Refused whole, never cut: a cut set would preview and act on other subscribers than ticked.
                    raise ValidationError(
                        _("More than %(limit)s subscribers are ticked: choose all that match the filter instead.")
                        % {"limit": MAX_TICKED},
                        code="bulk_too_many_ticked",
                    )
        return cls(tuple(sorted(ids)), query)

    @property
    def is_all(self) -> bool:
        return self.ids is None

    def subscribers(self, user) -> QuerySet[Subscriber]:
        if self.ids is None:
            return matching(user, self.query)
        return subscriber_selectors.visible_subscribers(user).filter(pk__in=self.ids)
