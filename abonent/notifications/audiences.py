"""Who a bulk message can go to. Each app registers the audiences only it can compute (``network``: the
subscribers of a NAS); this app registers the subscriber group and the branch. An audience names its choices
for the form and gives the subscriber ids of one of them as a query (counted for the preview, read in chunks
when the message is expanded)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import QuerySet


@dataclass(frozen=True)
class Audience:
    key: str
    label: str
    # [(id, label)] for the form's select, in the order to show.
    choices: Callable[[], list[tuple[int, str]]]
    # The subscriber ids of one choice (a values_list query, so it can be counted and chunked in SQL).
    subscriber_ids: Callable[[int], QuerySet]
    # False: not offered in the bulk-message form (an audience another page makes, like the subscriber list's
    # selection, with ``label_of`` naming one of its many choices instead of ``choices`` listing them all).
    listed: bool = True
    label_of: Callable[[int], str] | None = None

    def label_for(self, choice: int) -> str:
        """The label of one choice, or "" for one that is not this audience's."""
        if self.label_of is not None:
            return self.label_of(choice)
        return dict(self.choices()).get(choice, "")


_audiences: dict[str, Audience] = {}


def register_audience(audience: Audience) -> Audience:
    _audiences[audience.key] = audience
    return audience


def audiences() -> list[Audience]:
    return list(_audiences.values())


def audience(key: str) -> Audience | None:
    return _audiences.get(key)
