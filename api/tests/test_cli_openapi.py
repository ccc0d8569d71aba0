"""``kizuna openapi``: the API's OpenAPI document, from the app object alone. The web tier
generates its TypeScript types from it, so it must be the same wherever it is built."""

from __future__ import annotations

import json
from pathlib import Path

from kizuna.app import create_app
from kizuna.settings import Settings
from tests.test_cli import cli


def test_prints_the_apps_own_document_without_touching_a_store(tmp_path: Path) -> None:
    data_dir = tmp_path / "never-created"
    printed = cli(data_dir, "openapi")
    assert printed.returncode == 0, printed.stderr
    document = json.loads(printed.stdout)
    assert document == create_app(Settings(data_dir=tmp_path / "other")).openapi()
    assert "/api/userinfo" in document["paths"]
    assert not data_dir.exists()


def test_writes_the_same_bytes_to_a_file_every_time(tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    assert cli(tmp_path / "data", "openapi", "--out", str(out)).returncode == 0
    printed = cli(tmp_path / "data", "openapi").stdout
    assert out.read_text(encoding="utf-8") == printed
    assert (
        printed
        == json.dumps(json.loads(printed), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    )
