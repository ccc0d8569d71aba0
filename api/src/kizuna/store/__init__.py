"""Store functions: keyword-only, synchronous, each working inside the transaction of a unit of
work (see ``kizuna.db``)."""
