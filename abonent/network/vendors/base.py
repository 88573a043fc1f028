"""The interface every vendor profile implements, and the plain values it renders from."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

Attributes = list[tuple[str, str | int]]


@dataclass(frozen=True)
class Speed:
    """A shaping decision in kbit/s (1 kbit = 1,000 bit/s, as NAS attributes take it)."""

    down_kbps: int
    up_kbps: int
    burst_down_kbps: int | None = None
    burst_up_kbps: int | None = None
    burst_seconds: int | None = None

    @property
    def has_burst(self) -> bool:
        return bool(self.burst_down_kbps and self.burst_up_kbps and self.burst_seconds)


# The attributes that name the session in a CoA or Disconnect-Request (``identify``); everything else in a
# request is what it changes.
IDENTITY_ATTRIBUTES = frozenset({"User-Name", "Acct-Session-Id", "Framed-IP-Address"})

# Attributes whose values are ``key=value`` pairs, each setting its own thing (Cisco's AV pairs: a QoS policy
# and a service command share the attribute and change different things on the session).
AV_PAIR_ATTRIBUTES = frozenset({"Cisco-AVPair"})


def changed_keys(attributes: Mapping[str, Sequence[str | int]]) -> frozenset[str]:
    """What a request with these attributes changes on the session: each attribute but the identity ones, and
    within an AV-pair attribute each key (``Cisco-AVPair/ip:sub-qos-policy-in``). A service command and the
    service it names are one change, keyed by the service, so activating and deactivating the same service
    set the same thing (the newer wins) and a command for another service sets something else."""
    keys: set[str] = set()
    for name, values in attributes.items():
        if name in IDENTITY_ATTRIBUTES:
            continue
        if name not in AV_PAIR_ATTRIBUTES:
            keys.add(name)
            continue
        pairs = dict(str(value).partition("=")[::2] for value in values)
        service = pairs.pop("subscriber:service-name", None)
        if service is not None and pairs.pop("subscriber:command", None) is not None:
            keys.add(f"{name}/subscriber:service={service}")
        elif service is not None:
            pairs["subscriber:service-name"] = service
        keys.update(f"{name}/{key}" for key in pairs)
    return frozenset(keys)


@dataclass(frozen=True)
class SessionRef:
    """What identifies one session to the NAS in a CoA or Disconnect-Request, and what kind of link it is.

    ``ipoe``: True for an IPoE session (MAC or option 82 login), False for a dialled one (PPPoE, hotspot),
    None when the session is bound to no login. A NAS may change one kind live and not the other.
    """

    username: str
    acct_session_id: str
    framed_ip: str | None = None
    ipoe: bool | None = None


@dataclass(frozen=True)
class DebtorSettings:
    """The NAS's settings for the debtor redirect."""

    address_list: str = "debtors"
    pool: str = ""


def is_control_character(ch: str) -> bool:
    """A control or format character, or a line or paragraph separator: what can end a line of a config file."""
    category = unicodedata.category(ch)
    return category[0] == "C" or category in ("Zl", "Zp")


def one_line(value: str) -> str:
    """``value`` with every control or format character and line/paragraph separator taken out: what goes into
    one line of a NAS's configuration cannot end that line and start one of its own. Names and secrets are
    refused with such characters on the way in (``Nas.name``, the secret's validator); this is the second guard."""
    return "".join(ch for ch in value if not is_control_character(ch))


@dataclass(frozen=True)
class RadiusClientConfig:
    """What a NAS is told to use Abonent as its RADIUS server (docs/radius.md, "Registering a NAS"): Abonent's
    address as the NAS reaches it, the shared secret, Abonent's ports, the NAS's own CoA port and interim interval
    (seconds), the name it sends as NAS-Identifier, whether Message-Authenticator is required of it."""

    server: str
    secret: str
    auth_port: int
    acct_port: int
    coa_port: int
    interim_seconds: int
    nas_identifier: str
    message_authenticator: bool = True

    def __post_init__(self):
        # Every vendor's lines are built from these strings: none may carry a line break into them.
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, str):
                object.__setattr__(self, field.name, one_line(value))

    @property
    def interim(self) -> str:
        """The interval as RouterOS writes a time: ``5m``, ``90s``."""
        minutes, seconds = divmod(self.interim_seconds, 60)
        return f"{minutes}m" if minutes and not seconds else f"{self.interim_seconds}s"


class VendorProfile:
    """Renders a NAS's attributes. Subclasses override the speed and debtor parts; the rest is RFC."""

    name = "generic"
    # Whether a speed change for a session in the debtor redirect is rendered by ``access_change`` (the redirect
    # sent along, as the NAS sets both with one request or cannot change one live without the other); False
    # where the two are independent (Cisco ISG: a QoS push and a service), and the speed goes alone.
    speed_change_carries_redirect = True

    def speed(self, speed: Speed) -> Attributes:
        raise NotImplementedError

    def radius_config(self, config: RadiusClientConfig) -> list[str]:
        """The NAS's configuration lines that point it at Abonent, to paste as they are; none for a NAS whose
        syntax we do not know."""
        return []

    def debtor(self, debtor: DebtorSettings) -> Attributes:
        """Attributes that put a session into the debtor redirect (payment page only)."""
        return [("Framed-Pool", debtor.pool)] if debtor.pool else []

    def pool(self, pool_name: str) -> Attributes:
        return [("Framed-Pool", pool_name)]

    def identify(self, session: SessionRef) -> Attributes:
        attrs: Attributes = [("User-Name", session.username), ("Acct-Session-Id", session.acct_session_id)]
        if session.framed_ip:
            attrs.append(("Framed-IP-Address", session.framed_ip))
        return attrs

    def coa(self, session: SessionRef, *, speed: Speed | None, debtor: DebtorSettings | None) -> Attributes:
        """A CoA-Request that changes a live session's speed, or moves it into (or out of) the redirect."""
        attrs = self.identify(session)
        if speed is not None:
            attrs += self.speed(speed)
        if debtor is not None:
            attrs += self.debtor(debtor)
        return attrs

    def disconnect(self, session: SessionRef) -> Attributes:
        return self.identify(session)

    def access_change(
        self, session: SessionRef, *, restricted: bool, speed: Speed | None, debtor: DebtorSettings
    ) -> tuple[str, Attributes]:
        """Move a live session into the debtor redirect or out of it: ``("coa", attrs)`` where the NAS can
        switch it in place, else ``("disconnect", attrs)`` and the subscriber re-authenticates into the new
        state. The generic answer is the disconnect, which every NAS honours."""
        return "disconnect", self.disconnect(session)
