import threading
import time

import pytest

from abonent.core.parallel import run_in_threads


def test_every_item_is_worked_once_across_the_threads():
    seen, names, lock = [], set(), threading.Lock()

    def work(item):
        with lock:
            seen.append(item)
            names.add(threading.current_thread().name)

    run_in_threads(range(50), work, workers=2, name="unit")

    assert sorted(seen) == list(range(50))
    assert names <= {"unit-0", "unit-1"}


def test_a_failure_stops_the_others_and_is_raised_in_the_caller():
    worked = []

    def work(item):
        if item == 0:
            raise ValueError("chunk 0 is broken")
        time.sleep(0.001)  # a chunk takes a while: the other thread sees the stop long before the end
        worked.append(item)

    with pytest.raises(ValueError, match="chunk 0 is broken"):
        run_in_threads(range(1000), work, workers=2, name="unit")
    assert len(worked) < 999  # the other thread stopped taking work
