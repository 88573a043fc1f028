"""The 1C client-bank exchange format (``1CClientBankExchange``), read without the ORM.

The format (1C's "Стандарт обмена с системами «Клиент банка»", v1.02/1.03, http://v8.1c.ru/edi/edi_stnd/100/101.htm)
is lines of ``Key=Value``: a header (``ВерсияФормата``, ``Кодировка``, ``ДатаНачала``, ``ДатаКонца``,
``РасчСчет``…), then ``СекцияРасчСчет`` … ``КонецРасчСчет`` with the balances of each account, then one
``СекцияДокумент=<kind>`` … ``КонецДокумента`` per document, and ``КонецФайла``. ``Кодировка=Windows`` is
cp1251, ``Кодировка=DOS`` is cp866; banks also send UTF-8 (often with a BOM) while still writing ``Windows``.

``parse_statement`` turns the bytes into documents; ``read_document`` turns one document into a
``StatementEntry``: an incoming payment to one of our accounts, or the reason it is not one (outgoing, another
account) or cannot be read (a broken amount or date, a missing field) — the caller quarantines those and
imports the rest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from abonent.core import clock

MAGIC = "1CClientBankExchange"
# Keys any real statement has (in the header or every document): a decoding that does not show one of them
# is the wrong one (cp866 bytes read as cp1251 decode, into nonsense).
_KNOWN_KEYS = ("ВерсияФормата=", "СекцияДокумент=", "КонецФайла", "РасчСчет=", "ДатаНачала=")
_DECLARED = {"windows": "cp1251", "dos": "cp866", "utf-8": "utf-8", "utf8": "utf-8"}
MAX_AMOUNT = Decimal("9999999999.99")  # the ledger's numeric(14,2) column; the intake bounds it further
_AMOUNT = re.compile(r"^[0-9]{1,12}(?:[.,][0-9]{1,2})?$")
_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_DATE = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})$")
MAX_KEY = 100  # Payment.external_id


class StatementError(ValueError):
    """The file as a whole cannot be read: ``code`` says why (for the API and the form)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class Document:
    """One ``СекцияДокумент`` … ``КонецДокумента`` block: its kind, fields as written and its raw text."""

    position: int  # 1-based, in file order
    kind: str
    fields: dict[str, str]
    raw: str
    closed: bool = True


@dataclass
class ParsedStatement:
    encoding: str
    header: dict[str, str]
    # The file's own settlement accounts: the header's РасчСчет and each СекцияРасчСчет's.
    accounts: list[str]
    documents: list[Document] = field(default_factory=list)

    def date(self, key: str) -> dt.date | None:
        return parse_date(self.header.get(key, ""))


@dataclass
class StatementEntry:
    """What a document is for the import: ``status`` ``incoming``, ``ignored`` (with ``reason``: not a payment
    to us) or ``broken`` (with ``reason`` and ``code``). ``key`` is the document's stable id: the same payment
    in tomorrow's overlapping statement has the same key."""

    status: str
    key: str
    reason: str = ""
    code: str = ""
    number: str = ""
    date: dt.date | None = None
    received_on: dt.date | None = None
    amount: Decimal | None = None
    payer: str = ""
    payer_account: str = ""
    payer_inn: str = ""
    recipient_account: str = ""
    purpose: str = ""


def decode(content: bytes) -> tuple[str, str]:
    """The text of the file and the encoding it was read in. UTF-8 when it decodes as such (a BOM or not);
    otherwise what ``Кодировка`` declares, else cp1251 then cp866. Refused when no reading shows the format."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise StatementError("statement_encoding", "utf16")  # a 1C format file is never UTF-16
    if not content.lstrip().startswith((MAGIC.encode(), b"\xef\xbb\xbf" + MAGIC.encode())):
        raise StatementError("statement_format", "not_1c")
    if b"\x00" in content:
        raise StatementError("statement_encoding", "nul")
    candidates = ["utf-8-sig"]
    declared = _declared_encoding(content)
    if declared:
        candidates.append(declared)
    candidates += ["cp1251", "cp866"]
    for encoding in dict.fromkeys(candidates):
        try:
            text = content.decode(encoding)
        except UnicodeDecodeError:
            continue
        if any(key in text for key in _KNOWN_KEYS):
            return text, "utf-8" if encoding == "utf-8-sig" else encoding
    raise StatementError("statement_encoding", "undecodable")


def _declared_encoding(content: bytes) -> str | None:
    for name in ("cp1251", "cp866", "utf-8"):
        marker = "Кодировка=".encode(name)
        at = content.find(marker)
        if at >= 0:
            end = content.find(b"\n", at)
            value = content[at + len(marker) : end if end >= 0 else None].decode("ascii", "replace")
            return _DECLARED.get(value.strip().lower())
    return None


def parse_statement(content: bytes) -> ParsedStatement:
    """Split the file into its header, account sections and documents. A document left unclosed at the end
    of the file (a truncated download) is kept, marked ``closed=False``, so that it is quarantined, not lost."""
    text, encoding = decode(content)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    header: dict[str, str] = {}
    accounts: list[str] = []
    documents: list[Document] = []
    current: Document | None = None
    raw: list[str] = []
    in_account = False
    for line in lines[1:]:
        line = line.strip()
        if not line:
            continue
        key, _eq, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if current is not None:
            if key == "КонецДокумента":
                current.raw = "\n".join([*raw, line])
                documents.append(current)
                current = None
                continue
            if key == "СекцияДокумент" or key == "КонецФайла":
                # The next document began (or the file ended) with this one unclosed: keep what it had.
                current.raw, current.closed = "\n".join(raw), False
                documents.append(current)
                current = None
            else:
                raw.append(line)
                # A repeated key (НазначениеПлатежа split by a careless exporter) is joined, not lost.
                current.fields[key] = f"{current.fields[key]} {value}".strip() if key in current.fields else value
                continue
        if key == "СекцияДокумент":
            current = Document(position=len(documents) + 1, kind=value, fields={}, raw="")
            raw = [line]
        elif key == "СекцияРасчСчет":
            in_account = True
        elif key == "КонецРасчСчет":
            in_account = False
        elif key == "КонецФайла":
            break
        elif in_account:
            if key == "РасчСчет" and value and value not in accounts:
                accounts.append(value)
        elif key not in header:
            header[key] = value
            if key == "РасчСчет" and value and value not in accounts:
                accounts.insert(0, value)
    if current is not None:
        current.raw, current.closed = "\n".join(raw), False
        documents.append(current)
    return ParsedStatement(encoding=encoding, header=header, accounts=accounts, documents=documents)


def parse_date(value: str) -> dt.date | None:
    match = _DATE.match((value or "").strip())
    if not match:
        return None
    day, month, year = (int(g) for g in match.groups())
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def parse_amount(value: str) -> Decimal | None:
    """``1500``, ``1500.5``, ``1500,50``, ``1 500,50``: banks write all of them. None when it is not an amount."""
    text = _SPACES.sub("", value or "")
    if not _AMOUNT.match(text):
        return None
    try:
        amount = Decimal(text.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern admits only digits and one separator
        return None
    return amount.quantize(Decimal("0.01"))


def _first(fields: dict[str, str], *keys: str) -> str:
    for key in keys:
        if fields.get(key, "").strip():
            return fields[key].strip()
    return ""


def _purpose(fields: dict[str, str]) -> str:
    # Some exporters split the purpose into НазначениеПлатежа1..6 (the 1C standard's lines of the printed form).
    parts = [fields.get("НазначениеПлатежа", "")] + [fields.get(f"НазначениеПлатежа{i}", "") for i in range(1, 7)]
    return " ".join(p.strip() for p in parts if p.strip())


def document_key(*, date: dt.date, number: str, payer_account: str, amount: Decimal, payer_inn: str) -> str:
    """The stable id of a payment order: its date, number, the payer's account, the amount and the payer's INN.
    Two statements listing the same order give the same key, so it is taken in once."""
    key = f"{date.isoformat()}/{number}/{payer_account}/{amount}/{payer_inn}"
    if len(key) > MAX_KEY or not key.isprintable():
        key = f"{date.isoformat()}/h:{hashlib.sha256(key.encode()).hexdigest()[:40]}"
    return key


def raw_key(document: Document) -> str:
    """The id of a document that cannot be read: its text, so the same broken line is quarantined once."""
    return "raw:" + hashlib.sha256(_SPACES.sub(" ", document.raw).encode()).hexdigest()[:60]


# Dates a payment order can carry: none before 2000 and none more than a year ahead of today. A date outside is a
# garbled or hostile line (31.12.9999 would be credited in the year 9999, 01.01.0001 cannot even be converted to
# UTC on SQLite): quarantined as ``date_invalid``, never credited.
EARLIEST_DATE = dt.date(2000, 1, 1)
MAX_DAYS_AHEAD = 366


def sane_date(value: dt.date | None, today: dt.date) -> dt.date | None:
    if value is None or value < EARLIEST_DATE or value > today + dt.timedelta(days=MAX_DAYS_AHEAD):
        return None
    return value


def read_document(document: Document, our_accounts: set[str], today: dt.date | None = None) -> StatementEntry:
    """What one document is: an incoming payment to one of ``our_accounts``, ignored, or broken. ``today``
    (``clock.today()`` by default) bounds the dates taken (``sane_date``)."""
    if today is None:
        today = clock.today()
    f = document.fields
    number = _first(f, "Номер")
    raw_date = _first(f, "Дата")
    raw_amount = _first(f, "Сумма")
    payer_account = _first(f, "ПлательщикСчет", "ПлательщикРасчСчет")
    recipient_account = _first(f, "ПолучательСчет", "ПолучательРасчСчет")
    payer_inn = _first(f, "ПлательщикИНН")
    common = {
        "number": number[:40],
        "payer": _first(f, "Плательщик1", "Плательщик")[:255],
        "payer_account": payer_account[:34],
        "payer_inn": payer_inn[:12],
        "recipient_account": recipient_account[:34],
        "purpose": _purpose(f)[:2000],
    }

    def broken(code: str, reason: str) -> StatementEntry:
        return StatementEntry(status="broken", key=raw_key(document), code=code, reason=reason, **common)

    if not document.closed:
        return broken("document_unclosed", "unclosed")
    missing = [
        name
        for name, value in (
            ("Номер", number),
            ("Дата", raw_date),
            ("Сумма", raw_amount),
            ("ПлательщикСчет", payer_account),
            ("ПолучательСчет", recipient_account),
        )
        if not value
    ]
    if missing:
        return broken("fields_missing", ", ".join(missing))
    date = sane_date(parse_date(raw_date), today)
    if date is None:
        return broken("date_invalid", raw_date[:40])
    amount = parse_amount(raw_amount)
    if amount is None or amount <= 0 or amount > MAX_AMOUNT:
        return broken("amount_invalid", raw_amount[:40])
    received_raw = _first(f, "ДатаПоступило")
    received_on = sane_date(parse_date(received_raw), today) if received_raw else date
    if received_on is None:
        return broken("date_invalid", received_raw[:40])
    if payer_inn and not (payer_inn.isdigit() and len(payer_inn) in (10, 12)):
        payer_inn = ""  # "0" and other placeholders for a payer without an INN
        common["payer_inn"] = ""
    key = document_key(date=date, number=number, payer_account=payer_account, amount=amount, payer_inn=payer_inn)
    values = {**common, "date": date, "received_on": received_on, "amount": amount}
    if recipient_account not in our_accounts:
        reason = "outgoing" if payer_account in our_accounts else "other_account"
        return StatementEntry(status="ignored", key=key, code=reason, **values)
    if payer_account in our_accounts:
        return StatementEntry(status="ignored", key=key, code="own_transfer", **values)
    return StatementEntry(status="incoming", key=key, **values)
