"""The ``kizuna`` command: serve, migrate, manage users, sessions and keys."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from kizuna import log
from kizuna.settings import load_settings

T = TypeVar("T")

app = typer.Typer(help="Kizuna API server.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
sessions_app = typer.Typer(help="Sessions (logins on devices).", no_args_is_help=True)
keys_app = typer.Typer(help="The signing key ring.", no_args_is_help=True)
services_app = typer.Typer(
    help="Service credentials: resource servers reading the revocation feed.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(sessions_app, name="sessions")
app.add_typer(keys_app, name="keys")
app.add_typer(services_app, name="services")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Run the API server."""
    import uvicorn

    from kizuna import serving

    settings = load_settings()
    if settings.is_sqlite and workers > 1:
        typer.echo(
            "note: several workers share one SQLite file; writes queue on its lock. "
            "Use PostgreSQL to scale writes.",
            err=True,
        )
    if workers > 1 and serving.reuse_port_supported():
        try:
            serving.serve(host=host, port=port, workers=workers, log_level=settings.log_level)
        except serving.ServeError as exc:
            raise _fail(str(exc)) from None
        return
    uvicorn.run(
        serving.APP,
        host=host,
        port=port,
        workers=workers,
        **serving.uvicorn_options(settings.log_level),
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply schema migrations."""
    from kizuna import migrate

    migrate.upgrade(load_settings(), revision)
    typer.echo("database is up to date")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="Email address (login name).")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    role: Annotated[list[str] | None, typer.Option(help="Role to grant; repeatable.")] = None,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="Succeed quietly when the user exists.")
    ] = False,
) -> None:
    """Create a user. The password comes from standard input, never from the command line."""
    from kizuna import accounts, services
    from kizuna.password_policy import WeakPassword
    from kizuna.store.users import EmailTaken

    if not password_stdin:
        raise _fail("pass --password-stdin and the password on standard input")
    password = sys.stdin.readline().rstrip("\r\n")

    async def create() -> str:
        built = services.build(load_settings())
        try:
            user = await accounts.register(
                built, email=email, password=password, name=name, roles=role or []
            )
            return user.id
        finally:
            await built.close()

    try:
        user_id = _run(create())
    except WeakPassword as exc:
        raise _fail(f"weak password: {exc.reason}") from None
    except EmailTaken:
        if if_missing:
            typer.echo(f"user {email} exists already")
            return
        raise _fail(f"a user with email {email} exists already") from None
    typer.echo(f"created user {user_id} ({email})")


@users_app.command("list")
def users_list() -> None:
    """List users as JSON lines."""
    from kizuna import services
    from kizuna.clock import iso
    from kizuna.store import users as user_store

    async def fetch() -> list[dict[str, Any]]:
        built = services.build(load_settings())
        try:
            users = await built.db.read(user_store.list_all)
            return [
                {
                    "id": u.id,
                    "email": u.email,
                    "name": u.name,
                    "roles": u.roles,
                    "disabled": u.disabled,
                    "created_at": iso(u.created_at),
                }
                for u in users
            ]
        finally:
            await built.close()

    for row in _run(fetch()):
        typer.echo(json.dumps(row))


@sessions_app.command("revoke")
def sessions_revoke(
    session_id: Annotated[
        list[str] | None, typer.Option("--id", help="Session id; repeatable.")
    ] = None,
    email: Annotated[str | None, typer.Option(help="Revoke every session of this user.")] = None,
) -> None:
    """Revoke sessions by id, or all sessions of a user."""
    from kizuna import accounts, services
    from kizuna.store import users as user_store

    if not session_id and not email:
        raise _fail("give --id or --email")

    async def revoke() -> int:
        built = services.build(load_settings())
        try:
            count = 0
            if session_id:
                count += len(
                    await accounts.revoke_sessions(
                        built, session_ids=session_id, reason="admin_cli"
                    )
                )
            if email:
                user = await built.db.read(lambda tx: user_store.get_by_email(tx, email=email))
                if user is None:
                    raise _fail(f"no user with email {email}")
                count += len(await accounts.revoke_user(built, user_id=user.id, reason="admin_cli"))
            return count
        finally:
            await built.close()

    typer.echo(f"revoked {_run(revoke())} session(s)")


@keys_app.command("rotate")
def keys_rotate(
    alg: Annotated[
        str | None, typer.Option(help="Algorithm of the new key (ES256, RS256, EdDSA).")
    ] = None,
) -> None:
    """Start signing with a new key; older keys stay published until their tokens expire."""
    from kizuna.keys import ASYMMETRIC_ALGS
    from kizuna.services import keyring_lock, open_keyring

    if alg is not None and alg not in ASYMMETRIC_ALGS:
        raise _fail(f"alg must be one of {', '.join(ASYMMETRIC_ALGS)}")
    settings = load_settings()
    keyring = open_keyring(settings)
    with keyring_lock(settings):
        key = keyring.rotate(alg)
    typer.echo(f"now signing with {key.kid} ({key.alg})")


@keys_app.command("list")
def keys_list() -> None:
    """Show the key ring."""
    from kizuna.services import open_keyring

    for entry in open_keyring(load_settings()).describe():
        typer.echo(json.dumps(entry))


@services_app.command("create")
def services_create(
    name: Annotated[str, typer.Argument(help="What the credential is for, e.g. billing-api.")],
) -> None:
    """Create a credential for GET /api/revocations and print it, this once."""
    from kizuna import revocation_feed, services
    from kizuna.store.service_credentials import NameTaken

    async def create() -> str:
        built = services.build(load_settings())
        try:
            secret, _ = await revocation_feed.create_credential(built, name=name)
            return secret
        finally:
            await built.close()

    try:
        secret = _run(create())
    except ValueError as exc:
        raise _fail(str(exc)) from None
    except NameTaken:
        raise _fail(
            f"a service credential named {name!r} exists already (names are not reused)"
        ) from None
    # The secret alone on stdout (SECRET=$(kizuna services create NAME)), the words on stderr.
    typer.echo(f"created service credential {name}", err=True)
    typer.echo(secret)
    typer.echo("Store it now: it will not be shown again (only its hash is kept).", err=True)


@services_app.command("list")
def services_list() -> None:
    """List service credentials as JSON lines (never their secrets)."""
    from kizuna import services
    from kizuna.clock import iso
    from kizuna.store import service_credentials as credential_store

    async def fetch() -> list[dict[str, Any]]:
        built = services.build(load_settings())
        try:
            records = await built.db.read(credential_store.list_all)
        finally:
            await built.close()
        return [
            {
                "name": r.name,
                "created_at": iso(r.created_at),
                "revoked_at": None if r.revoked_at is None else iso(r.revoked_at),
            }
            for r in records
        ]

    for row in _run(fetch()):
        typer.echo(json.dumps(row))


@services_app.command("revoke")
def services_revoke(
    name: Annotated[str, typer.Argument(help="The credential's name.")],
) -> None:
    """Revoke a service credential: the feed refuses it from the next request on."""
    from kizuna import services
    from kizuna.clock import utcnow
    from kizuna.store import NotFound
    from kizuna.store import service_credentials as credential_store

    async def revoke() -> bool:
        built = services.build(load_settings())
        now = utcnow()
        try:
            return await built.db.write(lambda tx: credential_store.revoke(tx, name=name, now=now))
        finally:
            await built.close()

    try:
        revoked = _run(revoke())
    except NotFound:
        raise _fail(f"no service credential named {name!r}") from None
    typer.echo(f"revoked service credential {name}" if revoked else f"{name} was revoked already")


@app.command()
def purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
) -> None:
    """Delete what no rule needs any more: ended sessions, expired or revoked refresh-token
    records, old change-feed entries, throttling attempts and security events (retention:
    KIZUNA_PURGE_RETENTION, KIZUNA_SECURITY_EVENT_RETENTION). Prints a count per kind."""
    from kizuna import purge as hygiene
    from kizuna import services

    async def run() -> dict[str, int]:
        built = services.build(load_settings())
        try:
            if dry_run:
                return await hygiene.purgeable(built)
            return await hygiene.purge_exclusive(built)
        finally:
            await built.close()

    try:
        counts = _run(run())
    except hygiene.PurgeBusy:
        raise _fail("another process is purging the store; try again later") from None
    typer.echo("would delete (dry run):" if dry_run else "deleted:")
    for kind, count in counts.items():
        typer.echo(f"{kind}: {count}")


@app.command()
def openapi(
    out: Annotated[
        Path | None, typer.Option(help="Write the document to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the OpenAPI document of the API, built from the app object (no server, no store).

    The web tier generates its TypeScript types from it (web/scripts/api-types.sh).
    """
    import tempfile

    from kizuna.app import create_app
    from kizuna.settings import Settings

    # Default settings, not the environment's: the document must not depend on where it
    # is built. A throwaway data dir, although building the app opens nothing.
    with tempfile.TemporaryDirectory() as data_dir:
        document = create_app(Settings.model_construct(data_dir=Path(data_dir))).openapi()
    text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def main() -> None:
    try:
        settings = load_settings()
    except ValidationError as exc:
        # A configuration mistake deserves one clear line per setting, not a traceback.
        seen: set[str] = set()
        for error in exc.errors():
            name = "KIZUNA_" + str(error["loc"][0]).upper() if error["loc"] else "configuration"
            if name not in seen:
                seen.add(name)
                typer.echo(f"error: {name}: {error['msg']}", err=True)
        raise SystemExit(2) from None
    log.configure(level=settings.log_level, json=settings.log_json)
    app()
