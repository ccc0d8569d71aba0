"""UTC time in one place: the API speaks ISO 8601 UTC strings with second precision.

``utcnow`` is this host's clock. Rotation's grace and reuse decisions read the store's clock
instead (``store.refresh_tokens.StoreNow``), so that API replicas whose clocks disagree decide
alike (docs/protocol.md §6, "Which clock")."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def utc_seconds(moment: datetime) -> datetime:
    """Drop sub-second precision: token timestamps are whole seconds."""
    return moment.replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_epoch(seconds: int | float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def seconds_until(moment: datetime) -> int:
    return max(0, int(moment.timestamp() - datetime.now(UTC).timestamp()))
