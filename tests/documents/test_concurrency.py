"""Two generators at once on PostgreSQL: numbers stay gapless (1..N per series) with no duplicate, and each
organisation's month is issued once, whichever generator gets there first."""

import threading

import pytest
from django.db import connection, connections

from abonent.documents import actions
from abonent.documents.models import Document

from .conftest import NOVEMBER

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
INNS = ["7707049388", "7736207543", "7707083893", "7728168971", "7702070139", "7710140679"]


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("threads sharing one database need PostgreSQL (SQLite serialises every writer)")


def test_two_generators_give_gapless_unique_numbers(make_org, subscribe, december):
    orgs = [make_org(name=f"ООО «Фирма {i}»", inn=inn) for i, inn in enumerate(INNS)]
    for org in orgs:
        subscribe(org)
    ids = [o.pk for o in orgs]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def generate(order: list[int]) -> None:
        from abonent.subscribers.models import Subscriber

        try:
            start.wait(timeout=30)
            # Every organisation, in opposite orders: each month is contended by both generators.
            for pk in order:
                actions.do_issue_month_documents(Subscriber.objects.get(pk=pk), NOVEMBER, acting_user=None)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=generate, args=(o,)) for o in (ids, list(reversed(ids)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert errors == []
    for series, per_org in (("act", 1), ("sf", 1), ("invoice", 1)):
        numbers = sorted(Document.objects.filter(series=series, year=2026).values_list("number", flat=True))
        assert numbers == list(range(1, len(orgs) * per_org + 1)), series
    assert Document.objects.count() == 3 * len(orgs)
    assert set(Document.objects.filter(kind="act").values_list("subscriber_id", flat=True)) == set(ids)
