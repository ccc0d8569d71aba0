"""Schema migrations (Alembic), callable from the CLI and from tests."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from alembic import command
from alembic.config import Config

from kizuna.settings import Settings, ensure_data_dir


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", "kizuna:migrations")
    # Alembic's ini interpolation treats % specially.
    config.set_main_option("sqlalchemy.url", settings.db_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    ensure_data_dir(settings)
    config = alembic_config(settings)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(config, revision)
        return
    # Called from async code: the migration environment runs its own event loop, so give it
    # a thread of its own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.upgrade, config, revision).result()
