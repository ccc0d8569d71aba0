"""Opaque page cursors for the admin's lists: a position in a list, sealed with a MAC, so the
API reads back only positions it handed out. A cursor that was changed, made up, cut short or
given to another list is refused (``BadCursor``: a 422 ``validation_error``), never run as a
query.

The key is derived from the key ring's current MAC key (the refresh tokens' key, under another
name, so a cursor can never pass for anything else). When that key is rotated, older cursors are
refused: the admin starts again from the first page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import orjson

from kizuna.keys import KeyRing

_CONTEXT = b"kizuna/admin-page-cursor/v1"
_TAG_BYTES = 16
MAX_LENGTH = 1024  # characters; a real cursor is a few hundred at most


class BadCursor(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict: only the canonical unpadded encoding of some bytes is accepted (the decoder
    alone would skip stray characters and ignore spare bits)."""
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError(text)
    return data


class PageCursors:
    def __init__(self, keyring: KeyRing) -> None:
        self._keyring = keyring

    def _key(self) -> bytes:
        return hmac.new(self._keyring.mac_key.secret, _CONTEXT, hashlib.sha256).digest()

    def seal(self, list_name: str, position: dict[str, Any]) -> str:
        body = orjson.dumps({"l": list_name, "p": position})
        tag = hmac.new(self._key(), body, hashlib.sha256).digest()[:_TAG_BYTES]
        return f"{_b64(body)}.{_b64(tag)}"

    def open(self, list_name: str, cursor: str) -> dict[str, Any]:
        """The position sealed in ``cursor`` for the list ``list_name``; raises ``BadCursor``."""
        if len(cursor) > MAX_LENGTH or cursor.count(".") != 1:
            raise BadCursor(cursor)
        body_text, tag_text = cursor.split(".")
        try:
            body, tag = _unb64(body_text), _unb64(tag_text)
        except (binascii.Error, ValueError):
            raise BadCursor(cursor) from None
        expected = hmac.new(self._key(), body, hashlib.sha256).digest()[:_TAG_BYTES]
        if not hmac.compare_digest(tag, expected):
            raise BadCursor(cursor)
        sealed = orjson.loads(body)
        if not isinstance(sealed, dict) or sealed.get("l") != list_name:
            raise BadCursor(cursor)
        position = sealed.get("p")
        if not isinstance(position, dict):
            raise BadCursor(cursor)
        return position
