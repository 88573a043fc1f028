"""Channels: the ledger account money of a channel passes through, and which channels refund by themselves.

A gateway (YooKassa) holds the money it took in its clearing account until it settles to the bank; cash, bank
transfers and terminal agents pay into a cash account per channel. A channel that can send money back itself
(a gateway's refund call) registers here; for the others a refund is paid out by hand (the cash desk, a bank
transfer) and is done when it is recorded.
"""

from __future__ import annotations

from collections.abc import Callable

from abonent.billing import ledger

# Gateway code → its refund starter, called after commit with the refund's id (the gateway module registers).
_online_refunds: dict[str, Callable[[int], None]] = {}
_clearing_channels: set[str] = set()


def register_gateway(channel: str, *, refund: Callable[[int], None] | None = None) -> None:
    _clearing_channels.add(channel)
    if refund is not None:
        _online_refunds[channel] = refund


def is_gateway(channel: str) -> bool:
    return channel in _clearing_channels


def online_refund(channel: str) -> Callable[[int], None] | None:
    return _online_refunds.get(channel)


def channel_account(channel: str):
    """The ledger account a payment of ``channel`` comes from (and a refund goes back to)."""
    return ledger.clearing_account(channel) if is_gateway(channel) else ledger.cash_account(channel)


def validate_channel(channel: str) -> str:
    if not channel or len(channel) > 40 or not channel.isprintable() or ":" in channel.replace("agent:", "", 1):
        raise ValueError(f"bad channel {channel!r}")
    return channel
