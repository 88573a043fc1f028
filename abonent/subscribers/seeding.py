"""Realistic fake subscribers, written with bulk SQL (COPY on PostgreSQL) so a million take minutes.

Rows go straight into the tables with ids chosen here, bypassing the actions on purpose: this is test
data at benchmark scale, and it is built to satisfy the same invariants the actions keep (valid
account numbers with check digits, E.164 phones, current ``search_text``, one open assignment per device).
"""

from __future__ import annotations

import datetime as dt
import random
import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from abonent.core import sequences
from abonent.core.bulk_load import BulkWriter, DeferredIndexes, next_id
from abonent.core.models import Branch
from abonent.core.seeding import Progress, SeedContext, seed_step

from .actions import ACCOUNT_SEQUENCE
from .models import (
    Address,
    ConnectionEvent,
    ContactPoint,
    Contract,
    Equipment,
    EquipmentAssignment,
    Subscriber,
    SubscriberGroup,
)
from .search import address_search_text, build_search_text, name_key
from .validators import account_serial_start

BRANCHES = [
    ("tver", "Тверь", ["Тверь"]),
    ("klin", "Клин", ["Клин", "Высоковск"]),
    ("konakovo", "Конаково", ["Конаково", "Редкино", "Козлово"]),
]
GROUPS = [
    ("VIP", "Особое внимание"),
    ("Никогда не блокировать", "Больницы, школы, службы"),
    ("Сотрудники", "Сотрудники компании"),
    ("Пенсионеры", "Льготный тариф"),
]
SURNAMES = (
    "Иванов Смирнов Кузнецов Попов Васильев Петров Соколов Михайлов Новиков Фёдоров Морозов Волков Алексеев "
    "Лебедев Семёнов Егоров Павлов Козлов Степанов Николаев Орлов Андреев Макаров Никитин Захаров Зайцев "
    "Соловьёв Борисов Яковлев Григорьев Романов Воробьёв Сергеев Кузьмин Фролов Александров Дмитриев Королёв "
    "Гусев Киселёв Ильин Максимов Поляков Сорокин Виноградов Ковалёв Белов Медведев Антонов Тарасов Жуков "
    "Баранов Филиппов Комаров Давыдов Беляев Герасимов Богданов Осипов Сидоров Матвеев Титов Марков Миронов "
    "Крылов Куликов Карпов Власов Мельников Денисов Гаврилов Тихонов Казаков Афанасьев Данилов Савельев Тимофеев "
    "Фомин Чернов Абрамов Мартынов Ефимов Федотов Щербаков Назаров Калинин Исаев Чернышёв Быков Маслов Родионов "
    "Коновалов Лазарев Воронин Климов Филатов Пономарёв Голубев Кудрявцев Прохоров Наумов Потапов Журавлёв "
    "Овчинников Трофимов Леонов Соболев Ермаков Колесников Гончаров Емельянов Никифоров Грачёв Котов Гришин "
    "Ефремов Архипов Громов Кириллов Малышев Панов Моисеев Румянцев Акимов Кондратьев Бирюков Горбунов Анисимов "
    "Ерёмин Тихомиров Галкин Лукьянов Михеев Скворцов Юдин Белоусов Нестеров Симонов Прокофьев Харитонов Князев "
    "Цветков Левин Митрофанов Воронцов Агафонов Рябов Ситников Жданов Мухин Бобров Ширяев Блинов Субботин"
).split()
MALE_NAMES = (
    "Александр Алексей Андрей Антон Артём Борис Вадим Валерий Василий Виктор Владимир Вячеслав Геннадий "
    "Григорий Дмитрий Евгений Егор Иван Игорь Илья Кирилл Константин Максим Михаил Никита Николай Олег "
    "Павел Пётр Роман Сергей Станислав Степан Юрий Ярослав"
).split()
FEMALE_NAMES = (
    "Александра Алина Алла Анастасия Анна Валентина Валерия Вера Виктория Галина Дарья Евгения Екатерина "
    "Елена Елизавета Жанна Зоя Инна Ирина Карина Ксения Лариса Любовь Людмила Маргарита Марина Мария "
    "Надежда Наталья Нина Оксана Ольга Полина Светлана София Татьяна Юлия"
).split()
PATRONYMIC_BASES = (
    "Александров Алексеев Андреев Борисов Викторов Владимиров Дмитриев Евгеньев Иванов Игорев "
    "Михайлов Николаев Олегов Павлов Петров Романов Сергеев Юрьев Анатольев Васильев"
).split()
STREETS = (
    "ул. Ленина|ул. Советская|ул. Мира|ул. Гагарина|ул. Пушкина|ул. Садовая|ул. Молодёжная|ул. Школьная|"
    "ул. Лесная|ул. Центральная|ул. Новая|ул. Набережная|ул. Заводская|ул. Октябрьская|ул. Комсомольская|"
    "ул. Первомайская|ул. Полевая|ул. Луговая|ул. Строителей|ул. Победы|пр-т Победы|пр-т Чайковского|"
    "ул. Радищева|ул. Вокзальная|ул. Спортивная|ул. Солнечная|ул. Зелёная|ул. Северная|ул. Южная|"
    "ул. Мичурина|ул. Чапаева|ул. Кирова|ул. Калинина|ул. Горького|ул. Некрасова|ул. Чехова|"
    "Бульвар Радищева|ул. Трёхсвятская|ул. Жигарева|Волоколамский пр-т"
).split("|")
ORG_FORMS = ["ООО", "АО", "ИП", "МБОУ", "ГБУЗ"]
ORG_WORDS = (
    "Ромашка Вектор Альфа Северная звезда Стройинвест Техсервис Волга Меридиан Гарант Исток Прогресс "
    "Школа №5 Поликлиника Лицей Автоцентр Пекарня Аптека Агрохолдинг Логистика"
).split()
EQUIPMENT_MODELS = [
    ("ont", "ZTE", "F660"),
    ("ont", "ZTE", "F670L"),
    ("ont", "Huawei", "HG8245H"),
    ("ont", "Huawei", "EG8145V5"),
    ("router", "TP-Link", "Archer C6"),
    ("router", "Keenetic", "Giga"),
    ("router", "MikroTik", "hAP ac2"),
    ("stb", "Eltex", "NV-711"),
]
MOBILE_CODES = [
    900,
    901,
    903,
    905,
    906,
    909,
    910,
    915,
    916,
    917,
    919,
    920,
    925,
    926,
    929,
    950,
    960,
    961,
    962,
    977,
    980,
    985,
    999,
]
CHUNK = 20_000
# From this many subscribers on, PostgreSQL loads without foreign keys and plain indexes and puts them back
# afterwards: one sort per index and one join per foreign key instead of a million random updates each.
BULK_THRESHOLD = 50_000


def _female(surname: str) -> str:
    for ending, female in (("ский", "ская"), ("ой", "ая"), ("ов", "ова"), ("ев", "ева"), ("ёв", "ёва"), ("ин", "ина")):
        if surname.endswith(ending):
            return surname[: -len(ending)] + female
    return surname


def _inn10(rng: random.Random) -> str:
    body = "69" + "".join(str(rng.randrange(10)) for _ in range(7))
    weights = (2, 4, 10, 3, 5, 9, 4, 6, 8)
    return body + str(sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11 % 10)


_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _account_number(serial: int, length: int) -> str:
    """``validators.make_account_number`` without the per-call checks, for a million consecutive serials."""
    body = str(serial)
    if len(body) != length - 1:
        raise ValueError(f"serial {serial} does not fit {length - 1} digits")
    digits = body[::-1]
    total = sum(_LUHN_DOUBLED[int(c)] for c in digits[0::2]) + sum(int(c) for c in digits[1::2])
    return body + str((10 - total % 10) % 10)


def _free_serials(total: int, length: int):
    """``total`` serials of the account sequence whose numbers no subscriber holds as its old account number (a
    number of ours never equals an old one, docs/adr/0019). The sequence's row lock, taken by ``allocate``, is held
    to the end of the seeding transaction, as for one subscriber (``actions.allocate_account_number``)."""
    serials = sequences.allocate(ACCOUNT_SEQUENCE, total, start=account_serial_start())
    held = set(
        Subscriber.objects.filter(
            legacy_account__gte=_account_number(serials[0], length),
            legacy_account__lte=_account_number(serials[-1], length),
        ).values_list("legacy_account", flat=True)
    )
    given = 0
    while True:
        for serial in serials:
            if not held or _account_number(serial, length) not in held:
                given += 1
                yield serial
        if given >= total:
            return
        serials = sequences.allocate(ACCOUNT_SEQUENCE, total - given, start=account_serial_start())
        held = set(
            Subscriber.objects.filter(
                legacy_account__in=[_account_number(serial, length) for serial in serials]
            ).values_list("legacy_account", flat=True)
        )


def _ensure_reference_data(ctx: SeedContext) -> tuple[list[tuple[Branch, list[str]]], list[int]]:
    branches = []
    for code, name, towns in BRANCHES:
        branch, _ = Branch.objects.get_or_create(code=code, defaults={"name": name})
        branches.append((branch, towns))
    group_ids = [SubscriberGroup.objects.get_or_create(name=n, defaults={"description": d})[0].pk for n, d in GROUPS]
    return branches, group_ids


def _person(pick, random_) -> tuple[str, str, str]:
    surname = pick(SURNAMES)
    base = pick(PATRONYMIC_BASES)
    if random_() < 0.5:
        return surname, pick(MALE_NAMES), base + "ич"
    return _female(surname), pick(FEMALE_NAMES), base + "на"


SUBSCRIBER_COLUMNS = [
    "id",
    "account_number",
    "kind",
    "status",
    "branch_id",
    "last_name",
    "first_name",
    "middle_name",
    "birth_date",
    "passport_series",
    "passport_number",
    "passport_issued_by",
    "passport_issued_on",
    "organization_name",
    "inn",
    "kpp",
    "display_name",
    "name_key",
    "search_text",
    "consent_personal_data",
    "consent_personal_data_at",
    "consent_marketing",
    "consent_marketing_at",
    "created_at",
    "updated_at",
    "closed_at",
    "close_reason",
]
LOADED_MODELS = [
    Subscriber,
    Contract,
    ContactPoint,
    Address,
    Equipment,
    EquipmentAssignment,
    ConnectionEvent,
    Subscriber.groups.through,
]


@seed_step("subscribers", order=20)
def seed_subscribers(ctx: SeedContext) -> None:
    branches, group_ids = _ensure_reference_data(ctx)
    if ctx.demo and Subscriber.objects.exists():
        return
    total = ctx.subscribers
    if total <= 0:
        return
    writer = BulkWriter()
    tables = [m._meta.db_table for m in LOADED_MODELS]
    # One transaction: a failed or interrupted seed leaves nothing half-loaded (and on PostgreSQL with
    # the indexes set aside, no schema change either).
    with transaction.atomic():
        deferred = None
        if writer.pg and total >= BULK_THRESHOLD:
            deferred = DeferredIndexes(tables)
            deferred.drop()
        try:
            _load_subscribers(ctx, writer, total, branches, group_ids)
        finally:
            writer.close()
        writer.reset_sequences(LOADED_MODELS)
        if deferred is not None:
            deferred.restore(ctx.out)
    if writer.pg:
        started = time.monotonic()
        # VACUUM sets hint bits and the visibility map now (index-only scans need it), rather than the
        # first queries paying for it, and ANALYZE gives the planner the new numbers (autovacuum may be
        # late or off). Inside a caller's transaction (a test) only ANALYZE can run.
        command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"{command} {table}")
        ctx.out.write(f"{command.lower()}: {time.monotonic() - started:.1f}s\n")
    ctx.facts["subscribers_created"] = total
    ctx.facts["created_at"] = timezone.now()


def _load_subscribers(ctx: SeedContext, writer: BulkWriter, total: int, branches, group_ids) -> None:
    rng = ctx.rng
    random_ = rng.random
    getrandbits = rng.getrandbits

    def pick(seq):
        return seq[int(random_() * len(seq))]

    def below(n: int) -> int:
        return int(random_() * n)

    tz = timezone.get_current_timezone()
    today = timezone.localdate()
    length = settings.ABONENT_ACCOUNT_NUMBER_LENGTH
    serials = _free_serials(total, length)
    ids = {
        m: next_id(m)
        for m in (Subscriber, Contract, ContactPoint, Address, Equipment, EquipmentAssignment, ConnectionEvent)
    }
    used_macs: set[str] = set(
        Equipment.objects.exclude(mac_address=None).values_list("mac_address", flat=True) if ids[Equipment] > 1 else ()
    )
    progress = Progress("subscribers", total, ctx.out)
    serial_iter = iter(serials)
    tver = branches[0]
    signed_times = [dt.time(h, m) for h in range(9, 19) for m in range(60)]

    for start in range(0, total, CHUNK):
        size = min(CHUNK, total - start)
        subs, contracts, contacts, addresses, equipment, assignments, events, memberships = ([] for _ in range(8))
        for _ in range(size):
            sid = ids[Subscriber]
            ids[Subscriber] += 1
            account = _account_number(next(serial_iter), length)
            branch, towns = tver if random_() < 0.6 else pick(branches)
            signed = today - dt.timedelta(days=1 + below(8 * 365 - 1))
            # As text once, in the form Django's SQLite adapter writes and PostgreSQL reads.
            created = dt.datetime.combine(signed, pick(signed_times), tzinfo=tz).isoformat(" ")
            signed = signed.isoformat()
            if random_() < 0.04:
                org = f"{pick(ORG_FORMS)} «{pick(ORG_WORDS)}»"
                last = first = middle = ""
                inn = _inn10(rng)
                kpp = inn[:4] + "01001"
                display = org
                kind = "organization"
            else:
                org, inn, kpp = "", "", ""
                last, first, middle = _person(pick, random_)
                display = f"{last} {first} {middle}"
                kind = "individual"
            phone = f"+7{pick(MOBILE_CODES)}{below(10_000_000):07d}"
            emails = [f"user{sid}@example.ru"] if random_() < 0.3 else []
            town = pick(towns)
            street = pick(STREETS)
            house = str(1 + below(119))
            apartment = str(1 + below(299)) if random_() < 0.85 else ""
            address_text = address_search_text(city=town, street=street, house=house, apartment=apartment)
            macs, serial_numbers = [], []
            if random_() < 0.4:
                equipment_kind, vendor, model = pick(EQUIPMENT_MODELS)
                while True:
                    h = f"{getrandbits(48):012x}"
                    mac = f"{h[0:2]}:{h[2:4]}:{h[4:6]}:{h[6:8]}:{h[8:10]}:{h[10:12]}"
                    if mac not in used_macs:
                        used_macs.add(mac)
                        break
                serial = f"{vendor[:4].upper()}{sid:010d}"
                eid = ids[Equipment]
                ids[Equipment] += 1
                equipment.append((eid, equipment_kind, vendor, model, serial, mac, branch.pk, "installed", ""))
                assignments.append((ids[EquipmentAssignment], eid, sid, "rent", created, None, ""))
                ids[EquipmentAssignment] += 1
                macs.append(mac)
                serial_numbers.append(serial)
            consent = random_() < 0.9
            search_text = build_search_text(
                account_number=account,
                display_name=display,
                inn=inn,
                contract_numbers=[account],
                phones=[phone],
                emails=emails,
                addresses=[address_text],
                macs=macs,
                serials=serial_numbers,
            )
            subs.append(
                (
                    sid,
                    account,
                    kind,
                    "active",
                    branch.pk,
                    last,
                    first,
                    middle,
                    None,
                    "",
                    "",
                    "",
                    None,
                    org,
                    inn,
                    kpp,
                    display,
                    name_key(display),
                    search_text,
                    consent,
                    created if consent else None,
                    random_() < 0.3,
                    None,
                    created,
                    created,
                    None,
                    "",
                )
            )
            contracts.append((ids[Contract], sid, account, signed, "active", None))
            ids[Contract] += 1
            contacts.append((ids[ContactPoint], sid, "phone", phone, True, ""))
            ids[ContactPoint] += 1
            for email in emails:
                contacts.append((ids[ContactPoint], sid, "email", email, True, ""))
                ids[ContactPoint] += 1
            addresses.append((ids[Address], sid, "service", "", town, street, house, "", apartment, "", "", ""))
            ids[Address] += 1
            events.append((ids[ConnectionEvent], sid, "connected", signed, "", None, created))
            ids[ConnectionEvent] += 1
            if random_() < 0.05:
                memberships.append((sid, pick(group_ids)))

        writer.write(Subscriber._meta.db_table, SUBSCRIBER_COLUMNS, subs)
        writer.write(
            Contract._meta.db_table,
            ["id", "subscriber_id", "number", "signed_on", "status", "terminated_on"],
            contracts,
        )
        writer.write(
            ContactPoint._meta.db_table, ["id", "subscriber_id", "kind", "value", "is_primary", "comment"], contacts
        )
        writer.write(
            Address._meta.db_table,
            [
                "id",
                "subscriber_id",
                "kind",
                "postal_code",
                "city",
                "street",
                "house",
                "building",
                "apartment",
                "entrance",
                "floor",
                "comment",
            ],
            addresses,
        )
        writer.write(
            Equipment._meta.db_table,
            ["id", "kind", "vendor", "model", "serial_number", "mac_address", "branch_id", "status", "comment"],
            equipment,
        )
        writer.write(
            EquipmentAssignment._meta.db_table,
            ["id", "equipment_id", "subscriber_id", "ownership", "assigned_at", "returned_at", "comment"],
            assignments,
        )
        writer.write(
            ConnectionEvent._meta.db_table,
            ["id", "subscriber_id", "kind", "happened_on", "comment", "created_by_id", "created_at"],
            events,
        )
        writer.write(Subscriber.groups.through._meta.db_table, ["subscriber_id", "subscribergroup_id"], memberships)
        progress.advance(size)
    progress.close()


FEATURED_PHONE = "+79161234567"


@seed_step("featured subscriber", order=21)
def seed_featured_subscriber(ctx: SeedContext) -> None:
    """One hand-made subscriber for the demo banner, created through the real actions (so it is audited)."""
    if not ctx.demo or ContactPoint.objects.filter(value=FEATURED_PHONE).exists():
        ctx.facts.setdefault("featured_phone", FEATURED_PHONE)
        return
    from abonent.staff.models import StaffUser

    from .actions import (
        AddressData,
        ContactData,
        SubscriberData,
        do_assign_equipment,
        do_create_subscriber,
        do_register_equipment,
    )

    admin = StaffUser.objects.filter(role="admin", is_active=True).order_by("pk").first()
    branch = Branch.objects.get(code="tver")
    subscriber = do_create_subscriber(
        SubscriberData(
            branch_id=branch.pk,
            last_name="Иванов",
            first_name="Иван",
            middle_name="Петрович",
            passport_series="2804",
            passport_number="123456",
            passport_issued_by="УМВД России по Тверской области",
            consent_personal_data=True,
            contacts=[
                ContactData(kind="phone", value="8 (916) 123-45-67"),
                ContactData(kind="email", value="ivanov@example.ru"),
            ],
            addresses=[AddressData(city="Тверь", street="ул. Ленина", house="5", apartment="12")],
        ),
        acting_user=admin,
    )
    ont = do_register_equipment(
        kind="ont",
        vendor="ZTE",
        model="F660",
        serial_number="ZTEGC8A1B2C3",
        mac_address="00:1e:73:aa:bb:cc",
        branch_id=branch.pk,
        acting_user=admin,
    )
    do_assign_equipment(ont, subscriber, ownership="rent", acting_user=admin)
    ctx.facts["featured_phone"] = FEATURED_PHONE
