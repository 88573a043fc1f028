"""Statement files as banks export them (1CClientBankExchange v1.03), built for the tests."""

from __future__ import annotations

OUR_ACCOUNT = "40702810900000012345"
OTHER_ACCOUNT = "40702810100000099999"


def document(
    *,
    number="101",
    date="01.12.2026",
    amount="1500.00",
    payer="Петров Пётр Петрович",
    payer_account="40817810500000000001",
    payer_inn="",
    recipient_account=OUR_ACCOUNT,
    purpose="Оплата услуг связи",
    received="",
    kind="Платежное поручение",
    extra: dict | None = None,
    drop: tuple = (),
) -> str:
    fields = {
        "Номер": number,
        "Дата": date,
        "Сумма": amount,
        "ПлательщикСчет": payer_account,
        "Плательщик": f"ИНН {payer_inn} {payer}" if payer_inn else payer,
        "ПлательщикИНН": payer_inn,
        "Плательщик1": payer,
        "ПлательщикБИК": "044525225",
        "ПолучательСчет": recipient_account,
        "ДатаПоступило": received or date,
        "Получатель": "ИНН 6950000000 ООО «Тверьлайн»",
        "ПолучательИНН": "6950000000",
        "Получатель1": "ООО «Тверьлайн»",
        "ВидОплаты": "01",
        "Очередность": "5",
        "НазначениеПлатежа": purpose,
        **(extra or {}),
    }
    lines = [f"СекцияДокумент={kind}"]
    lines += [f"{k}={v}" for k, v in fields.items() if k not in drop]
    lines.append("КонецДокумента")
    return "\n".join(lines)


def statement(*documents: str, account=OUR_ACCOUNT, start="01.12.2026", end="01.12.2026", encoding="Windows") -> str:
    head = [
        "1CClientBankExchange",
        "ВерсияФормата=1.03",
        f"Кодировка={encoding}",
        "Отправитель=Бухгалтерия предприятия",
        "Получатель=",
        f"ДатаСоздания={end}",
        "ВремяСоздания=09:15:00",
        f"ДатаНачала={start}",
        f"ДатаКонца={end}",
        f"РасчСчет={account}",
        "Документ=Платежное поручение",
        "СекцияРасчСчет",
        f"ДатаНачала={start}",
        f"ДатаКонца={end}",
        f"РасчСчет={account}",
        "НачальныйОстаток=10000.00",
        "ВсегоПоступило=0.00",
        "ВсегоСписано=0.00",
        "КонечныйОстаток=10000.00",
        "КонецРасчСчет",
    ]
    return "\r\n".join([*head, *documents, "КонецФайла", ""])


def cp1251(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("cp1251")
