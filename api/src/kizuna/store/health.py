"""Whether the store answers at all (``/readyz``)."""

from __future__ import annotations

from sqlalchemy import literal, select

from kizuna.db import Tx

_PING = select(literal(1))


def ping(tx: Tx) -> None:
    """One round trip to the store; raises if it cannot answer."""
    tx.execute(_PING).all()
