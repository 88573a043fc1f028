"""Running calls at the same moment on PostgreSQL, for the tests that prove a money or stock action happens once."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def together(*calls: Callable[[], object]) -> list:
    """Run ``calls`` in threads released at once by a barrier, each on its own database connection (closed after);
    their outcomes in the order given, an exception standing for a call that raised."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(n: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[n] = call()
        except Exception as exc:  # the outcome the test looks at
            outcomes[n] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n, call)) for n, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes
