"""The package stands alone: it imports nothing of the Kizuna server, and none of the server's
heavy dependencies (SQLAlchemy, argon2), so a resource server installs PyJWT and httpx only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import kizuna_verifier

PACKAGE = Path(kizuna_verifier.__file__).parent
ALLOWED = {"jwt", "httpx", "fastapi", "cryptography", "kizuna_verifier"}


def test_imports_only_the_standard_library_pyjwt_httpx_and_fastapi() -> None:
    offences = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in ALLOWED and top not in sys.stdlib_module_names:
                    offences.append(f"{path.name}: {name}")
    assert not offences, offences


def test_importing_it_loads_no_server_code() -> None:
    probe = (
        "import sys, kizuna_verifier, kizuna_verifier.fastapi\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'kizuna', 'sqlalchemy', 'argon2', 'pwdlib', 'alembic', 'asyncpg'})\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""


def test_the_package_is_typed() -> None:
    assert (PACKAGE / "py.typed").is_file()
