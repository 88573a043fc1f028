"""Migration from the old billing: 100,000 subscribers from a CSV, dry run plus real run (the imports app).

    python bench/import.py [--n 100000] [--engine postgresql|sqlite]

Untimed: a database of its own with the staff and catalog seed, a branch and the plan the file names, and a CSV
in the shape of a Mikbill export (name, passport, address, phone, e-mail, contract, plan, balance, credit, status,
PPPoE login and password, an ONT with its serial), made fresh for each invocation (its own source name and old
ids, so reruns import anew). Timed: the upload (type, encoding, every row read), the dry run, and the real run.
Verified afterwards: the dry run wrote nothing, the real run wrote every row (subscribers, opening transactions,
logins), the reconciliation's balances agree to the kopeck, and the ledger's balances equal the file's.
Target: ≤ 60 s on PostgreSQL for both runs together (``seconds``; the upload is ``upload_seconds``). The last line
on stdout is the JSON result.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import base_parser, emit, log, prepare

os.environ.setdefault("ABONENT_DEBUG", "0")

NAME = "import"
TARGET_SECONDS = {"postgresql": 60, "sqlite": 300}
HEADERS = (
    "uid;fio;passport;address;mob_tel;email;numdogovor;packet;deposit;credit;blocked;user;password;equipment;serial"
)
SURNAMES = "Иванов Смирнов Кузнецов Попов Васильев Петров Соколов Михайлов Новиков Фёдоров Морозов Волков".split()
NAMES = "Александр Алексей Андрей Антон Борис Вадим Виктор Дмитрий Евгений Иван Игорь Максим Олег Павел".split()
PATRONYMICS = "Александрович Алексеевич Андреевич Борисович Иванович Петрович Сергеевич Юрьевич".split()
# Mobile codes of the Russian operators (valid by phonenumbers' metadata): a realistic export has valid phones, not a
# warning on every row.
MOBILE_CODES = "903 905 906 909 915 916 917 925 926 985".split()


def make_csv(n: int, run: int, rng: random.Random) -> tuple[bytes, Decimal]:
    lines = [HEADERS]
    total = Decimal("0.00")
    for i in range(n):
        uid = f"{run}{i:07d}"
        balance = Decimal(rng.randrange(-200000, 300000)) / 100
        total += balance
        name = f"{rng.choice(SURNAMES)} {rng.choice(NAMES)} {rng.choice(PATRONYMICS)}"
        lines.append(
            ";".join(
                [
                    uid,
                    name,
                    f"{(run * 7 + i) % 9000 + 1000} {i:06d}",
                    f"г. Тверь, ул. Ленина, д. {i % 200 + 1}, кв. {i // 200 + 1}",
                    f"8 ({MOBILE_CODES[run % 10]}) {i // 10000 % 1000:03d}-{i // 100 % 100:02d}-{i % 100:02d}",
                    f"u{uid}@example.ru",
                    f"Д-{uid}",
                    "Интернет-100",
                    f"{balance}".replace(".", ","),
                    "0" if i % 10 else "300",
                    "0",
                    f"u{uid}",
                    f"pw{rng.randrange(10**8):08d}",
                    "GPON-ONT ZTE",
                    f"ZTEG{uid}",
                ]
            )
        )
    return ("\n".join(lines) + "\n").encode(), total


def main() -> None:
    args = base_parser(NAME, default_n=100_000).parse_args()
    setup = prepare(
        NAME, 1, engine=args.engine, reseed=args.reseed, seed=args.seed, seeded_apps=("staff", "catalog", "subscribers")
    )

    from django.db import connection

    from abonent.billing.models import LedgerTransaction
    from abonent.catalog.actions import do_create_plan
    from abonent.catalog.models import Plan, Service
    from abonent.core.models import Branch
    from abonent.imports import actions
    from abonent.imports.models import Entity, ImportedRecord
    from abonent.network.models import Login
    from abonent.subscribers.models import Subscriber

    branch, _ = Branch.objects.get_or_create(code="bench-import", defaults={"name": "Импорт"})
    if not Plan.objects.filter(name="Интернет-100").exists():
        service = Service.objects.filter(kind="internet").order_by("pk").first()
        do_create_plan(
            acting_user=None,
            monthly_fee=Decimal("650.00"),
            valid_from=dt.date(2020, 1, 1),
            code="bench-inet100",
            name="Интернет-100",
            service=service,
            download_kbps=100_000,
            upload_kbps=100_000,
        )

    # 20–99: an old id starting "10" could be a seeded subscriber's own account number (1000000xx), which the import
    # rightly refuses as an old account number (legacy_taken). A run number an earlier invocation used (its source,
    # or any old or own account number with its prefix) is passed over, so every row of this file is new.
    def used(run: int) -> bool:
        prefix = str(run)
        return (
            ImportedRecord.objects.filter(source=f"bench{run}").exists()
            or Subscriber.objects.filter(legacy_account__startswith=prefix).exists()
            or Subscriber.objects.filter(account_number__startswith=prefix).exists()
        )

    free = [r for r in range(20, 100) if not used(r)]
    if not free:
        raise SystemExit("every run number 20–99 is used in this database: run with --reseed")
    run = random.Random().choice(free)
    content, total = make_csv(args.n, run, random.Random(args.seed))
    log(f"CSV: {args.n} rows, {len(content) / 1e6:.1f} MB")
    counts = lambda: (Subscriber.objects.count(), LedgerTransaction.objects.count(), Login.objects.count())  # noqa: E731
    before = counts()

    started = time.monotonic()
    job = actions.do_create_import_job(
        entity=Entity.SUBSCRIBERS, file_name="bench.csv", content=content, source=f"bench{run}", acting_user=None
    )
    job = actions.do_configure_job(
        job,
        mapping={
            "old_id": "uid",
            "legacy_account": "uid",
            "full_name": "fio",
            "passport": "passport",
            "address": "address",
            "phone": "mob_tel",
            "email": "email",
            "contract_number": "numdogovor",
            "plan": "packet",
            "balance": "deposit",
            "credit_limit": "credit",
            "status": "blocked",
            "login": "user",
            "password": "password",
            "equipment_model": "equipment",
            "equipment_serial": "serial",
        },
        cutover_date=dt.date(2026, 5, 31),
        duplicate_default="import",
        default_branch=branch,
        acting_user=None,
    )
    uploaded = time.monotonic()
    log(f"uploaded and read in {uploaded - started:.1f}s")
    job = actions.run_job(job, dry_run=True, acting_user=None)
    dry_done = time.monotonic()
    log(f"dry run in {dry_done - uploaded:.1f}s: {job.dry_run_report['rows']}")
    assert counts() == before, "the dry run wrote to the domain tables"
    job = actions.run_job(job, dry_run=False, acting_user=None)
    finished = time.monotonic()
    log(f"real run in {finished - dry_done:.1f}s: {job.report['rows']}")

    after = counts()
    assert after[0] - before[0] == args.n, after
    assert after[2] - before[2] == args.n, after
    assert job.report["rows"]["new"] == args.n, job.report["rows"]
    assert job.report["balances"]["difference"] == "0.00", job.report["balances"]
    assert Decimal(job.report["balances"]["old_total"]) == total
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(SUM(a.balance), 0) FROM billing_ledgeraccount a JOIN imports_importedrecord r "
            "ON r.object_id = a.subscriber_id AND r.source = %s",
            [job.source],
        )
        assert Decimal(cursor.fetchone()[0]) == total
    assert not any(i.code == "phone_invalid" for i in job.issues.all()), "the generated phones are valid"
    seconds = finished - uploaded  # both runs: the dry run and the real run
    emit(
        {
            "bench": NAME,
            "engine": setup.engine,
            "n": args.n,
            "seconds": round(seconds, 1),
            "rate": round(args.n / seconds),
            "upload_seconds": round(uploaded - started, 1),
            "dry_run_seconds": round(dry_done - uploaded, 1),
            "real_run_seconds": round(finished - dry_done, 1),
            "target_seconds": TARGET_SECONDS[setup.engine],
        }
    )


if __name__ == "__main__":
    main()
