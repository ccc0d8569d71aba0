"""What the integration bench's business routes answer (``host_app.py``, ``resource_app.py``):
the same small JSON with auth and without, so a ratio measures the check alone."""

from __future__ import annotations

OWNER = "5b0e7c2e-2f5c-4c1e-9f4e-0a8d6c3b9e21"
NOTES: list[dict[str, object]] = [
    {"id": i, "title": f"Note {i}", "body": "Remember the milk."} for i in range(3)
]


def notes_of(owner: str) -> dict[str, object]:
    return {"owner": owner, "notes": NOTES}


async def nobody() -> str:
    """A dependency that does nothing: FastAPI's own cost of one."""
    return OWNER
