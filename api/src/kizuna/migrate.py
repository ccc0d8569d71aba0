"""Schema migrations (Alembic), callable from the CLI and from tests."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from kizuna.settings import Settings


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", "kizuna:migrations")
    # Alembic's ini interpolation treats % specially.
    config.set_main_option("sqlalchemy.url", settings.db_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), revision)
