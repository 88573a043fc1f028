"""The outage snapshot: the in-memory policy and the NAS table on disk, so a process restarted while the
database is away still answers (docs/radius.md, "Resilience").

A data file, never a pickle: loading a pickle from a directory someone else can write is running their code.
One JSON document behind a header line that carries its length and an HMAC-SHA256 under the field key
(``secrets.sign``): a torn, corrupt or planted file is refused whole. Written mode 0600 from creation and
replaced atomically (``core.files.write_private_file``). What it holds stays as protected as in the
database: passwords and NAS secrets as their encrypted values, decrypted when used or restored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import json
import logging
import os
import stat
import time
from pathlib import Path

from abonent.billing.rating.time_budget import TimeBudget
from abonent.core import secrets
from abonent.core.files import write_private_file

from ..policy import PolicyStore
from ..selectors import LoginPolicy, PlanSpeeds
from ..vendors import Speed
from ..vendors.base import DebtorSettings
from .nas import NasEntry

logger = logging.getLogger("abonent.radius")

FORMAT = "abonent-radius-snapshot"
VERSION = 3  # 2 and before were pickles
# Keys added to version 3 later are optional when read: "denied" (the access states refused) came with dunning,
# and a file written before it denied nobody. A key added so is no reason for a new version, which would refuse
# the snapshot a process just wrote before an upgrade, at the moment the database may be away.
# A file written by a version whose records had other fields is refused rather than misread.
SHAPE = {
    "login": [f.name for f in dataclasses.fields(LoginPolicy)],
    "plan": [f.name for f in dataclasses.fields(PlanSpeeds)],
    "speed": [f.name for f in dataclasses.fields(Speed)],
}
# The most of a snapshot file that is read: a PPPoE login with its encrypted password takes about 200 bytes, so
# ten million logins. Larger is no snapshot we wrote, and reading it would take the memory the server needs.
MAX_BYTES = 2 * 1024**3
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def snapshot_path(spool_dir: Path, node: str) -> Path:
    return spool_dir / f"policy-{node.replace(':', '-')}.json"


def remove_pickles(spool_dir: Path) -> None:
    """Snapshots of earlier versions were pickles (``policy-*.pickle``, ``nas.pickle``): never read, removed."""
    for path in [*spool_dir.glob("policy-*.pickle"), spool_dir / "nas.pickle"]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            logger.warning("radius: removed %s, a snapshot of an earlier version (a pickle, never read)", path)


# --- encoding --------------------------------------------------------------------------------------------------


def _speed(speed: Speed | None) -> list | None:
    return None if speed is None else [getattr(speed, name) for name in SHAPE["speed"]]


def _moment(value: dt.datetime | dt.time | None) -> str | None:
    return None if value is None else value.isoformat()


def _login(policy: LoginPolicy) -> list:
    row = []
    for name in SHAPE["login"]:
        value = getattr(policy, name)
        if name == "turbo":
            value = _speed(value)
        elif name == "turbo_until":
            value = _moment(value)
        elif name == "time_budget" and value is not None:
            value = [[list(p) for p in v] if isinstance(v, tuple) else v for v in value]
        row.append(value)
    return row


def _plan(plan_id: int, plan: PlanSpeeds) -> list:
    row: list = [plan_id]
    for name in SHAPE["plan"]:
        value = getattr(plan, name)
        if isinstance(value, Speed):
            value = _speed(value)
        elif isinstance(value, dt.time):
            value = _moment(value)
        row.append(value)
    return row


def _nas(address: str, nas: NasEntry) -> list:
    return [
        address,
        nas.id,
        nas.name,
        nas.secret_encrypted,
        nas.vendor,
        nas.interim_interval,
        nas.require_ma,
        nas.debtor.address_list,
        nas.debtor.pool,
    ]


def encode(store: PolicyStore, nas_table: dict[str, NasEntry]) -> bytes:
    body = _ENCODER.encode(
        {
            "shape": SHAPE,
            "as_of": store.as_of,
            "saved_at": time.time(),
            "last_change_id": store.last_change_id,
            "logins": [_login(policy) for policy in store.by_login.values()],
            "plans": [_plan(plan_id, plan) for plan_id, plan in store.plans.items()],
            "debtors": sorted(store.debtors),
            "denied": sorted([subscriber_id, state] for subscriber_id, state in store.denied.items()),
            "over_quota": sorted(store.over_quota),
            "online": sorted(store.online_logins()),
            "nas": [_nas(address, nas) for address, nas in nas_table.items() if nas.secret_encrypted],
        }
    ).encode()
    header = _ENCODER.encode({"format": FORMAT, "version": VERSION, "length": len(body), "mac": secrets.sign(body)})
    return header.encode() + b"\n" + body


def save(path: Path, store: PolicyStore, nas_table: dict[str, NasEntry]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private_file(path, encode(store, nas_table))


# --- decoding --------------------------------------------------------------------------------------------------


class Refused(ValueError):
    pass


def _read_speed(value) -> Speed | None:
    return None if value is None else Speed(*value)


def _read_login(row: list) -> LoginPolicy:
    values = dict(zip(SHAPE["login"], row, strict=True))
    values["turbo"] = _read_speed(values["turbo"])
    if values["turbo_until"] is not None:
        values["turbo_until"] = dt.datetime.fromisoformat(values["turbo_until"])
    if values.get("time_budget") is not None:
        # Lists are the tuples of tuples (pending sessions, packages); a snapshot written before the later fields
        # leaves them at their defaults.
        values["time_budget"] = TimeBudget(
            *(tuple(tuple(p) for p in v) if isinstance(v, list) else v for v in values["time_budget"])
        )
    return LoginPolicy(**values)


def _read_plan(row: list) -> tuple[int, PlanSpeeds]:
    values = dict(zip(SHAPE["plan"], row[1:], strict=True))
    for name in ("day", "night", "fup"):
        values[name] = _read_speed(values[name])
    for name in ("night_from", "night_until"):
        if values[name] is not None:
            values[name] = dt.time.fromisoformat(values[name])
    return int(row[0]), PlanSpeeds(**values)


def _read_nas(row: list) -> tuple[str, NasEntry] | None:
    address, nas_id, name, encrypted, vendor, interval, require_ma, address_list, pool = row
    try:
        secret = secrets.decrypt(encrypted)
    except secrets.SecretError:
        logger.error("radius: the snapshot's secret of NAS %s cannot be decrypted (field key changed?)", name)
        return None
    entry = NasEntry(
        id=nas_id,
        name=name,
        secret=secret.encode(),
        vendor=vendor,
        interim_interval=interval,
        require_ma=require_ma,
        debtor=DebtorSettings(address_list=address_list, pool=pool),
        secret_encrypted=encrypted,
    )
    return address, entry


def decode(data: bytes) -> dict:
    """The snapshot's content, checked whole; ``Refused`` says why not."""
    head, sep, body = data.partition(b"\n")
    if not sep:
        raise Refused("no header line")
    try:
        header = json.loads(head)
    except ValueError as exc:
        raise Refused("unreadable header") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise Refused("not a snapshot")
    if header.get("version") != VERSION:
        raise Refused(f"version {header.get('version')!r}, this one reads {VERSION}")
    if header.get("length") != len(body):
        raise Refused(f"{len(body)} bytes of {header.get('length')} (torn)")
    if not secrets.signed(body, str(header.get("mac", ""))):
        raise Refused("its signature does not match (corrupt, or written under another ABONENT_FIELD_KEY)")
    state = json.loads(body)
    if state.get("shape") != SHAPE:
        raise Refused("written by another version of Abonent")
    return state


def read_snapshot_file(path: Path) -> bytes:
    """The bytes of the snapshot file at ``path``, if it is one: a regular file of ours, not too big.

    Opened without following a symlink and without blocking: a FIFO planted there would hold the start forever
    waiting for a writer, a symlink to ``/dev/zero`` would be read until memory runs out, and a file someone
    else owns is not one we wrote. ``Refused`` (or OSError) says why not."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW's answer for a symlink
            raise Refused("a symbolic link, not a file") from exc
        raise
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused("not a regular file")
        if st.st_uid != os.geteuid():
            raise Refused(f"owned by uid {st.st_uid}, not by this process's user ({os.geteuid()})")
        if st.st_size > MAX_BYTES:
            raise Refused(f"{st.st_size} bytes, over the {MAX_BYTES} a snapshot may have")
        data = fh.read(st.st_size + 1)  # one more: a file that grew while read is not the one measured
    if len(data) != st.st_size:
        raise Refused("changed while it was read")
    return data


def restore(path: Path, store: PolicyStore) -> dict[str, NasEntry] | None:
    """Fill ``store`` from the snapshot at ``path`` and return its NAS table; None (the store untouched) when
    there is none or it is refused."""
    try:
        data = read_snapshot_file(path)
    except FileNotFoundError:
        logger.error("radius: no policy snapshot at %s", path)
        return None
    except Refused as exc:
        logger.error("radius: policy snapshot %s refused: %s", path, exc)
        return None
    except OSError as exc:
        logger.error("radius: cannot read the policy snapshot %s: %s", path, exc)
        return None
    try:
        state = decode(data)
        policies = [_read_login(row) for row in state["logins"]]
        plans = dict(_read_plan(row) for row in state["plans"])
        nas_rows = state["nas"]
        as_of, last_change_id = float(state["as_of"]), int(state["last_change_id"])
        debtors, over_quota, online = state["debtors"], state["over_quota"], state["online"]
        denied = {int(subscriber_id): str(access) for subscriber_id, access in state.get("denied") or ()}
    except (Refused, ValueError, TypeError, KeyError) as exc:
        logger.error("radius: policy snapshot %s refused: %s", path, exc)
        return None
    nas_table = dict(filter(None, (_read_nas(row) for row in nas_rows)))
    store.install_snapshot(policies, plans, debtors, over_quota, last_change_id, online, as_of, denied=denied)
    age = store.age()
    limit = f"new logins refused from {store.max_age:.0f} s on" if store.max_age > 0 else "no age limit set"
    logger.warning(
        "radius policy restored from %s: read from the database %.0f s ago (%s), %d logins, %d NAS; %s",
        path,
        age,
        dt.datetime.fromtimestamp(as_of, dt.UTC).isoformat(timespec="seconds"),
        len(store.by_login),
        len(nas_table),
        limit,
    )
    return nas_table
