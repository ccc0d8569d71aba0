"""Notes in a SQLite file (aiosqlite: the event loop never waits on the disk)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_by_owner ON notes (owner, created_at);
"""


@dataclass(frozen=True, slots=True)
class Note:
    id: str
    owner: str
    title: str
    body: str
    created_at: str


class Notes:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path)
        await self._db.executescript(_SCHEMA)
        await self._db.commit()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the notes store is not open")
        return self._db

    async def of(self, owner: str) -> list[Note]:
        cursor = await self.db.execute(
            "SELECT id, owner, title, body, created_at FROM notes WHERE owner = ? "
            "ORDER BY created_at DESC, id",
            (owner,),
        )
        return [Note(*row) for row in await cursor.fetchall()]

    async def add(self, owner: str, title: str, body: str) -> Note:
        note = Note(str(uuid.uuid4()), owner, title, body, datetime.now(UTC).isoformat())
        await self.db.execute(
            "INSERT INTO notes (id, owner, title, body, created_at) VALUES (?, ?, ?, ?, ?)",
            (note.id, note.owner, note.title, note.body, note.created_at),
        )
        await self.db.commit()
        return note

    async def remove(self, owner: str, note_id: str) -> bool:
        cursor = await self.db.execute(
            "DELETE FROM notes WHERE id = ? AND owner = ?", (note_id, owner)
        )
        await self.db.commit()
        return cursor.rowcount > 0

    async def totals(self) -> tuple[int, int]:
        """(notes, authors) over everyone: what the admin page shows."""
        cursor = await self.db.execute("SELECT COUNT(*), COUNT(DISTINCT owner) FROM notes")
        row = await cursor.fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)
