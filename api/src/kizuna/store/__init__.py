"""Store functions: keyword-only, each working inside a transaction its caller opened."""
