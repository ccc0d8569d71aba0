"""An application that builds and runs Kizuna's app in its own process is left as it was:
no interpreter setting, garbage-collector setting, logging configuration or PyJWT algorithm
changes. Only ``kizuna serve`` tunes its own process (kizuna.process_tuning)."""

from __future__ import annotations

import gc
import sys
from datetime import UTC, datetime
from pathlib import Path

import jwt
import structlog
from jwt.algorithms import HMACAlgorithm

from kizuna import migrate
from kizuna.app import create_app
from kizuna.process_tuning import tuned
from kizuna.settings import Settings


async def test_building_and_running_the_app_changes_nothing_process_wide(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    migrate.upgrade(settings)
    before = (
        sys.getswitchinterval(),
        gc.get_threshold(),
        gc.get_freeze_count(),
        structlog.get_config()["processors"],
        type(jwt.get_algorithm_by_name("HS256")),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services = app.state.kizuna
        token = services.refresh_tokens.encode(
            token_id="t",
            session_id="s",
            user_id="u",
            issued_at=datetime.now(UTC),
            expires_at=datetime.now(UTC),
            key_id=services.keyring.mac_key.kid,
        )
        assert token
        after = (
            sys.getswitchinterval(),
            gc.get_threshold(),
            gc.get_freeze_count(),
            structlog.get_config()["processors"],
            type(jwt.get_algorithm_by_name("HS256")),
        )
    assert after == before
    assert type(jwt.get_algorithm_by_name("HS256")) is HMACAlgorithm


async def test_kizuna_serve_tunes_its_own_process(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    migrate.upgrade(settings)
    interval, threshold = sys.getswitchinterval(), gc.get_threshold()
    app = tuned(create_app(settings))
    try:
        async with app.router.lifespan_context(app):
            assert sys.getswitchinterval() < interval
            assert gc.get_threshold()[0] > threshold[0]
            assert gc.get_freeze_count() > 0
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*threshold)
        gc.unfreeze()
