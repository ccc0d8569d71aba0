"""The notes API's routes, written once for both ways of checking the caller: ``notes_router``
takes the two dependencies (the signed-in caller; an admin) from whichever package checks
tokens — ``kizuna_verifier.fastapi`` in ``app.py``, ``kizuna.embedding`` in ``embedded.py``."""

from collections.abc import Callable
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from notes_api.store import Notes


class Caller(Protocol):
    @property
    def user_id(self) -> str: ...


class NoteIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=10_000)


class NoteOut(BaseModel):
    id: str
    title: str
    body: str
    created_at: str


class NoteList(BaseModel):
    notes: list[NoteOut]


class Totals(BaseModel):
    notes: int
    authors: int


def notes_of(request: Request) -> Notes:
    notes: Notes = request.app.state.notes
    return notes


Store = Annotated[Notes, Depends(notes_of)]


def notes_router(caller: Callable[..., Any], admin: Callable[..., Any]) -> APIRouter:
    router = APIRouter()
    Signed = Annotated[Caller, Depends(caller)]
    Admin = Annotated[Caller, Depends(admin)]

    @router.get("/notes")
    async def list_notes(user: Signed, store: Store) -> NoteList:
        notes = await store.of(user.user_id)
        return NoteList(notes=[NoteOut(id=n.id, title=n.title, body=n.body, created_at=n.created_at) for n in notes])

    @router.post("/notes", status_code=201)
    async def add_note(note: NoteIn, user: Signed, store: Store) -> NoteOut:
        n = await store.add(user.user_id, note.title, note.body)
        return NoteOut(id=n.id, title=n.title, body=n.body, created_at=n.created_at)

    @router.delete("/notes/{note_id}", status_code=204)
    async def delete_note(note_id: str, user: Signed, store: Store) -> Response:
        if not await store.remove(user.user_id, note_id):
            raise HTTPException(404, "no such note")
        return Response(status_code=204)

    @router.get("/admin/totals")
    async def totals(_admin: Admin, store: Store) -> Totals:
        notes, authors = await store.totals()
        return Totals(notes=notes, authors=authors)

    return router
