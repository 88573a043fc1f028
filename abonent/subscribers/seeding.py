"""Realistic fake subscribers, written with bulk SQL (COPY on PostgreSQL) so a million take minutes.

Rows go straight into the tables with ids chosen here, bypassing the actions on purpose: this is test
data at benchmark scale, and it is built to satisfy the same invariants the actions keep (valid
account numbers with check digits, E.164 phones, current ``search_text``, one open assignment per device).
"""

from __future__ import annotations

import datetime as dt
import random

from django.db import connection, transaction
from django.utils import timezone

from abonent.core import sequences
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
from .search import address_search_text, build_search_text
from .validators import account_serial_start, make_account_number

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


def _female(surname: str) -> str:
    for ending, female in (("ский", "ская"), ("ой", "ая"), ("ов", "ова"), ("ев", "ева"), ("ёв", "ёва"), ("ин", "ина")):
        if surname.endswith(ending):
            return surname[: -len(ending)] + female
    return surname


def _inn10(rng: random.Random) -> str:
    body = "69" + "".join(str(rng.randrange(10)) for _ in range(7))
    weights = (2, 4, 10, 3, 5, 9, 4, 6, 8)
    return body + str(sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11 % 10)


def _ensure_reference_data(ctx: SeedContext) -> tuple[list[tuple[Branch, list[str]]], list[int]]:
    branches = []
    for code, name, towns in BRANCHES:
        branch, _ = Branch.objects.get_or_create(code=code, defaults={"name": name})
        branches.append((branch, towns))
    group_ids = [SubscriberGroup.objects.get_or_create(name=n, defaults={"description": d})[0].pk for n, d in GROUPS]
    return branches, group_ids


def _next_id(model) -> int:
    last = model.objects.order_by("-pk").values_list("pk", flat=True).first()
    return (last or 0) + 1


class _Writer:
    """Bulk insert: COPY on PostgreSQL, executemany elsewhere."""

    def __init__(self):
        self.pg = connection.vendor == "postgresql"

    def write(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        if not rows:
            return
        with connection.cursor() as cursor:
            if self.pg:
                with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(columns))
                cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def reset_sequences(self, models) -> None:
        if not self.pg:
            return
        with connection.cursor() as cursor:
            for model in models:
                table = model._meta.db_table
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table}), 1))"
                )


def _person(rng: random.Random) -> tuple[str, str, str]:
    surname = rng.choice(SURNAMES)
    base = rng.choice(PATRONYMIC_BASES)
    if rng.random() < 0.5:
        return surname, rng.choice(MALE_NAMES), base + "ич"
    return _female(surname), rng.choice(FEMALE_NAMES), base + "на"


@seed_step("subscribers", order=20)
def seed_subscribers(ctx: SeedContext) -> None:
    branches, group_ids = _ensure_reference_data(ctx)
    if ctx.demo and Subscriber.objects.exists():
        return
    total = ctx.subscribers
    if total <= 0:
        return
    rng = ctx.rng
    writer = _Writer()
    big = total >= 100_000 and writer.pg
    if big:
        # Building the trigram index once at the end is several times faster than maintaining it per row.
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS subscribers_search_trgm")
    tz = timezone.get_current_timezone()
    now = timezone.now()
    today = timezone.localdate()
    serials = sequences.allocate(ACCOUNT_SEQUENCE, total, start=account_serial_start())
    ids = {
        m: _next_id(m)
        for m in (Subscriber, Contract, ContactPoint, Address, Equipment, EquipmentAssignment, ConnectionEvent)
    }
    used_macs: set[str] = set()
    progress = Progress("subscribers", total, ctx.out)
    serial_iter = iter(serials)

    for start in range(0, total, CHUNK):
        size = min(CHUNK, total - start)
        subs, contracts, contacts, addresses, equipment, assignments, events, memberships = ([] for _ in range(8))
        for _ in range(size):
            sid = ids[Subscriber]
            ids[Subscriber] += 1
            account = make_account_number(next(serial_iter))
            branch, towns = branches[0] if rng.random() < 0.6 else rng.choice(branches)
            signed = today - dt.timedelta(days=rng.randrange(1, 8 * 365))
            created = dt.datetime.combine(signed, dt.time(rng.randrange(9, 19), rng.randrange(60)), tzinfo=tz)
            is_org = rng.random() < 0.04
            if is_org:
                org = f"{rng.choice(ORG_FORMS)} «{rng.choice(ORG_WORDS)}»"
                last = first = middle = ""
                inn = _inn10(rng)
                kpp = inn[:4] + "01001"
                display = org
            else:
                org, inn, kpp = "", "", ""
                last, first, middle = _person(rng)
                display = f"{last} {first} {middle}"
            phone = f"+7{rng.choice(MOBILE_CODES)}{rng.randrange(10_000_000):07d}"
            phones = [phone]
            emails = [f"user{sid}@example.ru"] if rng.random() < 0.3 else []
            town = rng.choice(towns)
            street = rng.choice(STREETS)
            house = str(rng.randrange(1, 120))
            apartment = str(rng.randrange(1, 300)) if rng.random() < 0.85 else ""
            address_text = address_search_text(city=town, street=street, house=house, apartment=apartment)
            contract_number = account
            macs, serial_numbers = [], []
            if rng.random() < 0.4:
                kind, vendor, model = rng.choice(EQUIPMENT_MODELS)
                while True:
                    mac = ":".join(f"{rng.randrange(256):02x}" for _ in range(6))
                    if mac not in used_macs:
                        used_macs.add(mac)
                        break
                serial = f"{vendor[:4].upper()}{sid:010d}"
                eid = ids[Equipment]
                ids[Equipment] += 1
                equipment.append((eid, kind, vendor, model, serial, mac, branch.pk, "installed", ""))
                assignments.append((ids[EquipmentAssignment], eid, sid, "rent", created, None, ""))
                ids[EquipmentAssignment] += 1
                macs.append(mac)
                serial_numbers.append(serial)
            consent = rng.random() < 0.9
            subs.append(
                (
                    sid,
                    account,
                    "organization" if is_org else "individual",
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
                    build_search_text(
                        account_number=account,
                        display_name=display,
                        inn=inn,
                        contract_numbers=[contract_number],
                        phones=phones,
                        emails=emails,
                        addresses=[address_text],
                        macs=macs,
                        serials=serial_numbers,
                    ),
                    consent,
                    created if consent else None,
                    rng.random() < 0.3,
                    None,
                    created,
                    created,
                    None,
                    "",
                )
            )
            contracts.append((ids[Contract], sid, contract_number, signed, "active", None))
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
            if rng.random() < 0.05:
                memberships.append((sid, rng.choice(group_ids)))

        with transaction.atomic():
            writer.write(
                Subscriber._meta.db_table,
                [
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
                    "search_text",
                    "consent_personal_data",
                    "consent_personal_data_at",
                    "consent_marketing",
                    "consent_marketing_at",
                    "created_at",
                    "updated_at",
                    "closed_at",
                    "close_reason",
                ],
                subs,
            )
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
    writer.reset_sequences(
        [
            Subscriber,
            Contract,
            ContactPoint,
            Address,
            Equipment,
            EquipmentAssignment,
            ConnectionEvent,
            Subscriber.groups.through,
        ]
    )
    if big:
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '1GB'")
            cursor.execute(
                "CREATE INDEX IF NOT EXISTS subscribers_search_trgm ON subscribers_subscriber "
                "USING gin (search_text gin_trgm_ops)"
            )
            cursor.execute("ANALYZE subscribers_subscriber")
            cursor.execute("ANALYZE subscribers_contactpoint")
    ctx.facts["subscribers_created"] = total
    ctx.facts["created_at"] = now


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
