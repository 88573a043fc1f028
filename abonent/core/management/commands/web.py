from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the staff console, API, health and metrics over ASGI (uvicorn)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1, help="processes (set PROMETHEUS_MULTIPROC_DIR when > 1)")
        parser.add_argument("--reload", action="store_true", help="restart on code changes (development)")

    def handle(self, *args, host, port, workers, reload, **options):
        import os
        import shutil

        import uvicorn

        multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if multiproc_dir:
            # Stale files from a previous run would add old counts to the new ones.
            shutil.rmtree(multiproc_dir, ignore_errors=True)
            os.makedirs(multiproc_dir, exist_ok=True)
        elif workers > 1:
            self.stderr.write("warning: --workers > 1 without PROMETHEUS_MULTIPROC_DIR: /metrics shows one process")

        uvicorn.run(
            "abonent.asgi:application",
            host=host,
            port=port,
            workers=workers if not reload else None,
            reload=reload,
            lifespan="off",
            proxy_headers=True,
            access_log=False,
            log_config=None,
        )
