"""The NAS table as the server keeps it in memory."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import selectors
from ..models import Nas
from ..vendors.base import DebtorSettings


@dataclass
class NasEntry:
    """A NAS as the server keeps it: the decrypted secret and the rendered reply settings. The encrypted
    secret is kept too: the outage snapshot on disk holds that, never the clear text."""

    id: int
    name: str
    secret: bytes = field(repr=False)
    vendor: str
    interim_interval: int
    require_ma: bool
    debtor: DebtorSettings
    secret_encrypted: str = field(default="", repr=False)

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
            secret_encrypted=nas.secret_encrypted,
        )


def load_nas_table() -> dict[str, NasEntry]:
    return {ip: NasEntry.from_model(nas) for ip, nas in selectors.nas_by_address().items()}
