"""The runs per kind of file: subscribers (run_subscribers), plans, and payment history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from abonent.catalog.actions import do_create_plan
from abonent.catalog.models import Plan, Service, ServiceKind
from abonent.core import clock
from abonent.subscribers.models import Subscriber

from . import clean
from .engine import CHUNK_ROWS, Context, content_hash, read_rows
from .models import Entity, ImportedRecord, LegacyPayment
from .run_subscribers import SubscriberRun

OLD_ID_MAX_LENGTH = LegacyPayment._meta.get_field("old_id").max_length


class PlanRun:
    """Plans by name: one that exists (by name, any case) is linked, not duplicated; a new one is created with its
    price from the day after the cut-over (or today)."""

    def __init__(self, context: Context):
        self.c = context

    def run(self) -> dict:
        job = self.c.job
        _headers, rows = read_rows(job)
        counts = {"read": len(rows), "new": 0, "unchanged": 0, "quarantined": 0}
        existing = {p.name.strip().lower(): p for p in Plan.objects.all()}
        service = Service.objects.filter(kind=ServiceKind.INTERNET, is_active=True).order_by("pk").first()
        valid_from = job.cutover_date + dt.timedelta(days=1) if job.cutover_date else clock.today()
        seen = set()
        for number, v in rows:
            raw = v.pop("_raw")
            name = v.get("name", "").strip()
            try:
                for value in v.values():
                    clean.check_encoding(value)
                if not name:
                    raise clean.RowProblem("required", _("The plan name is empty."))
                price = clean.parse_amount(v.get("price", ""), empty=None)
                if price is None or price < 0:
                    raise clean.RowProblem("amount_invalid", _("The monthly fee is missing or negative."))
                down = clean.parse_speed_kbps(v.get("download", ""))
                up = clean.parse_speed_kbps(v.get("upload", "")) or down
            except clean.RowProblem as exc:
                self.c.problem(number, v.get("old_id", name), "", exc.code, exc.message, raw)
                counts["quarantined"] += 1
                continue
            if name.lower() in existing or name.lower() in seen:
                counts["unchanged"] += 1
                continue
            if service is None:
                self.c.problem(number, name, "", "service_missing", _("Create the internet service first."), raw)
                counts["quarantined"] += 1
                continue
            seen.add(name.lower())

            def create(name=name, price=price, down=down, up=up, number=number):
                return do_create_plan(
                    acting_user=self.c.acting_user,
                    monthly_fee=price,
                    valid_from=valid_from,
                    code=(slugify(name, allow_unicode=False) or "plan")[:40] + f"-{job.pk}-{number}",
                    name=name[:150],
                    service=service,
                    download_kbps=down,
                    upload_kbps=up,
                    is_public=False,
                )

            try:
                if not self.c.dry_run:  # the plan is the dry run's report; only a real run creates
                    self.c.chunk(create)
                counts["new"] += 1
            except ValidationError as exc:
                self.c.problem(number, name, "", "plan_refused", "; ".join(exc.messages), raw)
                counts["quarantined"] += 1
        self.c.advance(len(rows))
        return {"entity": job.entity, "source": job.source, "dry_run": self.c.dry_run, "rows": counts}


class PaymentRun:
    """Past payments as history (``LegacyPayment``), never posted to the ledger: the opening balance holds them."""

    def __init__(self, context: Context):
        self.c = context

    def run(self) -> dict:
        job = self.c.job
        _headers, rows = read_rows(job)
        counts = {"read": len(rows), "new": 0, "unchanged": 0, "quarantined": 0}
        records = dict(
            ImportedRecord.objects.filter(source=job.source, entity=Entity.SUBSCRIBERS).values_list(
                "old_id", "object_id"
            )
        )
        by_account = dict(Subscriber.objects.filter(legacy_account__isnull=False).values_list("legacy_account", "pk"))
        have = set(LegacyPayment.objects.filter(source=job.source).values_list("old_id", flat=True))
        total = Decimal("0.00")
        pending = []
        for number, v in rows:
            raw = v.pop("_raw")
            old_id = v.get("old_id", "").strip()
            try:
                for value in v.values():
                    clean.check_encoding(value)
                if not old_id:
                    raise clean.RowProblem("required", _("The old id is empty."))
                if len(old_id) > OLD_ID_MAX_LENGTH:
                    # Cut to the column, two ids sharing their first 100 characters would be one payment.
                    raise clean.RowProblem(
                        "old_id_too_long",
                        _("The old id is longer than %(n)s characters.") % {"n": OLD_ID_MAX_LENGTH},
                    )
                subscriber_id = records.get(v.get("subscriber_old_id", "").strip()) or by_account.get(
                    v.get("account", "").strip()
                )
                if subscriber_id is None:
                    raise clean.RowProblem("subscriber_unknown", _("No imported subscriber for this payment."))
                day = clean.parse_date(v.get("date", ""))
                if day is None:
                    raise clean.RowProblem("required", _("The date is empty."))
                amount = clean.parse_amount(v.get("amount", ""), empty=None)
                if not amount:
                    raise clean.RowProblem("amount_invalid", _("The amount is missing or zero."))
            except clean.RowProblem as exc:
                self.c.problem(number, old_id, "", exc.code, exc.message, raw)
                counts["quarantined"] += 1
                continue
            if old_id in have:
                counts["unchanged"] += 1
                continue
            have.add(old_id)
            total += amount
            pending.append(
                LegacyPayment(
                    subscriber_id=subscriber_id,
                    source=job.source,
                    old_id=old_id,
                    paid_at=timezone.make_aware(dt.datetime.combine(day, dt.time(12))),
                    amount=amount,
                    channel=v.get("channel", "")[:100],
                    comment=v.get("comment", "")[:500],
                )
            )
        for start in range(0, len(pending), CHUNK_ROWS):
            part = pending[start : start + CHUNK_ROWS]
            if not self.c.dry_run:
                try:
                    self.c.chunk(lambda part=part: LegacyPayment.objects.bulk_create(part))
                except IntegrityError:
                    # Another job of this source (the same file started twice) recorded some of them meanwhile: those
                    # are unchanged, the rest is written again.
                    taken = set(
                        LegacyPayment.objects.filter(
                            source=job.source, old_id__in=[p.old_id for p in part]
                        ).values_list("old_id", flat=True)
                    )
                    counts["unchanged"] += len(taken)
                    total -= sum((p.amount for p in part if p.old_id in taken), Decimal("0.00"))
                    part = [p for p in part if p.old_id not in taken]
                    self.c.chunk(lambda part=part: LegacyPayment.objects.bulk_create(part))
            counts["new"] += len(part)
        self.c.advance(len(rows))
        return {
            "entity": job.entity,
            "source": job.source,
            "dry_run": self.c.dry_run,
            "rows": counts,
            "payments": {"sum": f"{total:.2f}", "posted_to_ledger": 0},
        }


RUNNERS = {Entity.SUBSCRIBERS: SubscriberRun, Entity.PLANS: PlanRun, Entity.PAYMENTS: PaymentRun}
_unused = content_hash
