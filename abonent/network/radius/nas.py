"""The NAS table as the server keeps it in memory."""

from __future__ import annotations

from dataclasses import dataclass

from .. import selectors
from ..models import Nas
from ..vendors.base import DebtorSettings


@dataclass
class NasEntry:
    """A NAS as the server keeps it: the decrypted secret and the rendered reply settings."""

    id: int
    name: str
    secret: bytes
    vendor: str
    interim_interval: int
    require_ma: bool
    debtor: DebtorSettings

    @classmethod
    def from_model(cls, nas: Nas) -> NasEntry:
        return cls(
            id=nas.pk,
            name=nas.name,
            secret=nas.secret.encode(),
            vendor=nas.vendor,
            interim_interval=nas.interim_interval,
            require_ma=nas.require_message_authenticator,
            debtor=DebtorSettings(address_list=nas.debtor_address_list, pool=nas.debtor_pool),
        )


def load_nas_table() -> dict[str, NasEntry]:
    return {ip: NasEntry.from_model(nas) for ip, nas in selectors.nas_by_address().items()}
