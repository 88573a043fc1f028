"""Acts to PDF: ``python bench/documents.py [--n 10000] [--workers 2]`` renders N acts of services (one to three
lines, 22 % VAT, a buyer each) with the documents app's own templates and WeasyPrint, writes each file privately
with its sha256 as the app stores it, and prints one JSON line with the rate in documents per second.

What is timed is the renderer and the file write, the part of issuing a document that costs: numbering and the
row insert are a few milliseconds and are covered by the tests (tests/documents). The documents are built in
memory from the same snapshot the app stores (``Document`` instances, not saved), so no database is involved
("engine": "none"). The run verifies what it times: every file is a complete PDF, and a sample read back with
pdftotext carries its own number, total and amount in words.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import base_parser, emit, log

SERVICES = ["Интернет", "IP-телевидение", "Статический IP-адрес", "Аренда роутера"]


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "abonent.settings")
    os.environ.setdefault("DATABASE_URL", "sqlite:///:memory:")
    import django

    django.setup()


def build(number: int):
    """The act number ``number``, as ``do_issue_month_documents`` would snapshot it."""
    from abonent.documents import content
    from abonent.documents.models import Document, DocumentStatus

    rng = random.Random(number)
    lines = [
        content.make_line(f"{service} за ноябрь 2026 г.", Decimal(rng.randrange(100, 3000)), rate=22)
        for service in rng.sample(SERVICES, rng.randint(1, 3))
    ]
    total, vat = content.totals(lines)
    return Document(
        pk=number, kind="act", series="act", year=2026, number=number, date=dt.date(2026, 11, 30),
        period_start=dt.date(2026, 11, 1), period_end=dt.date(2026, 12, 1), status=DocumentStatus.FINAL,
        seller={"name": "ООО «Связь»", "inn": "7707083893", "kpp": "770701001",
                "address": "г. Тверь, ул. Советская, д. 1", "director": "Петров П. П."},
        buyer={"name": f"ООО «Клиент {number}»", "inn": "7736207543", "kpp": "773601001",
               "address": "г. Тверь, ул. Ленина, д. 5", "account_number": f"{100000000 + number}",
               "contract": f"№ Д-{number} от 01.01.2026"},
        lines=lines, total=total, vat_total=vat,
    )  # fmt: skip


def render_range(args: tuple[int, int, str]) -> tuple[int, int]:
    """Render acts ``[first, last)`` into ``directory``; returns (count, bytes)."""
    first, last, directory = args
    from abonent.core.files import write_private_file
    from abonent.documents import rendering

    written = 0
    for number in range(first, last):
        data = rendering.render_pdf(build(number))
        path = Path(directory) / f"act-2026-{number:06d}.pdf"
        write_private_file(path, data)
        hashlib.sha256(data).hexdigest()
        written += len(data)
    return last - first, written


def verify(directory: Path, n: int) -> list[str]:
    from abonent.documents import content

    problems = []
    files = sorted(directory.glob("*.pdf"))
    if len(files) != n:
        problems.append(f"{len(files)} files, expected {n}")
    for path in files:
        data = path.read_bytes()
        if not data.startswith(b"%PDF") or b"%%EOF" not in data[-1024:]:
            problems.append(f"{path.name}: not a complete PDF")
    if shutil.which("pdftotext"):
        for number in random.Random(7).sample(range(1, n + 1), min(5, n)):
            doc = build(number)
            out = subprocess.run(
                ["pdftotext", "-layout", str(directory / f"act-2026-{number:06d}.pdf"), "-"],
                capture_output=True, timeout=60, check=True,
            )  # fmt: skip
            text = " ".join(out.stdout.decode().split())
            for wanted in (f"Акт № {number} от 30.11.2026", content.amount_in_words(doc.total)):
                if wanted not in text:
                    problems.append(f"act {number}: {wanted!r} not in its PDF")
    return problems


def main() -> None:
    parser = base_parser("documents", default_n=10_000, description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="rendering processes (default 2, the cores)")
    args = parser.parse_args()
    _setup()
    from abonent.documents import rendering

    rendering.render_pdf(build(1))  # fonts found and the stylesheet parsed once, before the fork
    directory = Path(tempfile.mkdtemp(prefix="bench-documents-"))
    try:
        step = max(1, min(250, args.n // (args.workers * 4) or 1))
        chunks = [(i, min(i + step, args.n + 1), str(directory)) for i in range(1, args.n + 1, step)]
        log(f"rendering {args.n} acts in {len(chunks)} chunks on {args.workers} workers")
        started = time.monotonic()
        done = size = 0
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            for count, written in pool.imap_unordered(render_range, chunks):
                done += count
                size += written
                if done % 1000 < count:
                    log(f"{done} acts")
        seconds = time.monotonic() - started
        problems = verify(directory, args.n)
        for problem in problems[:20]:
            log(problem)
        emit(
            {
                "bench": "documents", "engine": "none", "n": args.n, "seconds": round(seconds, 2),
                "rate": round(args.n / seconds, 1), "workers": args.workers,
                "mean_kb": round(size / max(done, 1) / 1024, 1), "problems": len(problems),
            }
        )  # fmt: skip
        if problems:
            sys.exit(1)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
