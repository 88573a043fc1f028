"""``abonent worker``: the django-tasks-db worker plus the periodic scheduler in one process."""

from __future__ import annotations

import logging
import threading

from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils.crypto import get_random_string

logger = logging.getLogger("abonent.worker")


class Command(BaseCommand):
    help = "Run background tasks and enqueue periodic jobs (billing run, sweeps, housekeeping)."

    def add_arguments(self, parser):
        parser.add_argument("--queues", default="*", help="comma-separated queue names, * for all")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls when idle")
        parser.add_argument("--tick", type=float, default=30.0, help="seconds between scheduler ticks")
        parser.add_argument("--no-scheduler", action="store_true", help="only run tasks (for extra workers)")
        parser.add_argument("--batch", action="store_true", help="run what is queued now, then exit")

    def handle(self, *args, queues, interval, tick, no_scheduler, batch, **options):
        from django_tasks_db.management.commands.db_worker import Worker

        from abonent.core import scheduler

        stop = threading.Event()

        def scheduler_loop() -> None:
            while not stop.is_set():
                try:
                    scheduler.tick()
                except Exception:
                    logger.exception("scheduler tick failed")
                finally:
                    close_old_connections()
                stop.wait(tick)

        if not no_scheduler:
            if batch:
                scheduler.tick()
            else:
                threading.Thread(target=scheduler_loop, name="scheduler", daemon=True).start()
        worker = Worker(
            queue_names=queues.split(","),
            interval=interval,
            batch=batch,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id=get_random_string(32),
            excluded_queue_names=[],
        )
        worker.configure_signals()
        self.stdout.write(f"worker started (queues={queues}, scheduler={'off' if no_scheduler else 'on'})")
        try:
            worker.run()
        finally:
            stop.set()
