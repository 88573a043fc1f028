"""Attack review of the import's bulk form of the old account number (docs/adr/0019): an operator setting the same
number by hand while the import writes it must cost the import that one pair (a per-subscriber error, as the
docstring promises), not the whole batch with an IntegrityError."""

import threading
import time

import pytest
from django.db import connection, transaction

from abonent.subscribers import actions
from abonent.subscribers.models import Subscriber
from tests.concurrency import together

NUMBER = "555001"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_hand_set_number_committed_while_the_import_writes_it_is_that_pairs_error(make_subscriber, admin):
    by_hand = make_subscriber()
    imported = make_subscriber(last_name="Петров", phone="+79161234568")
    other = make_subscriber(last_name="Сидоров", phone="+79161234569")
    written = threading.Event()

    def operator():
        with transaction.atomic():
            actions.do_set_legacy_account(by_hand, NUMBER, by=admin)
            written.set()
            time.sleep(1.5)  # the import reads before this commits and writes while it is being committed

    def importer():
        written.wait(10)
        return actions.do_set_legacy_accounts([(imported.pk, NUMBER), (other.pk, "555002")], by=admin)

    hand, result = together(operator, importer)
    assert hand is None, hand
    assert isinstance(result, actions.LegacyAccountResult), result
    assert {pk: err.code for pk, err in result.errors.items()} == {imported.pk: "legacy_account_taken"}
    assert result.changed == [other.pk]
    assert dict(Subscriber.objects.exclude(legacy_account=None).values_list("pk", "legacy_account")) == {
        by_hand.pk: NUMBER,
        other.pk: "555002",
    }


@pytest.mark.django_db
@pytest.mark.parametrize("bad_id", ["abc", "", "١٢", None, 10**30, -5, True, ["1"]])
def test_an_id_that_is_not_a_subscriber_id_is_a_per_pair_error(make_subscriber, admin, bad_id):
    good = make_subscriber(last_name="Годный", phone="+79161230021")
    result = actions.do_set_legacy_accounts([(bad_id, "555777"), (good.pk, "555778")], by=admin)
    assert result.changed == [good.pk]
    ((key, error),) = result.errors.items()
    assert error.code == "subscriber_invalid" and key in (bad_id, repr(bad_id))
    good.refresh_from_db()
    assert good.legacy_account == "555778"
