"""Store functions: keyword-only, synchronous, each given the ``Tx`` of a unit of work (see
``kizuna.db``) and answering with frozen dataclasses, never ORM objects. Every statement is a
module-level constant, compiled once (``tests/test_sqlite_writer.py`` runs each of them both
ways: straight on ``sqlite3`` and through SQLAlchemy)."""


class NotFound(LookupError):
    """The thing a unit of work was asked to change does not exist."""
