import threading

import pytest
from django.db import connections

from abonent.staff.permissions import Role


@pytest.fixture
def cashier(make_staff):
    return make_staff(Role.CASHIER, username="cashier")


@pytest.fixture
def subscriber(make_subscriber):
    return make_subscriber()


@pytest.fixture
def together():
    """``together(f, g, ...)``: call each in its own thread at the same moment; their results (or exceptions)."""

    def run(*fns):
        barrier = threading.Barrier(len(fns))
        out = [None] * len(fns)

        def wrap(i, fn):
            try:
                barrier.wait(timeout=10)
                out[i] = fn()
            except Exception as exc:
                out[i] = exc
            finally:
                connections.close_all()

        threads = [threading.Thread(target=wrap, args=(i, fn)) for i, fn in enumerate(fns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        return out

    return run
