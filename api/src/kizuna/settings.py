"""Configuration: every setting is an environment variable prefixed ``KIZUNA_``."""

from __future__ import annotations

import ipaddress
import os
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SigningAlg = Literal["ES256", "RS256", "EdDSA"]
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DOMAIN = re.compile(r"\.?[A-Za-z0-9.-]+")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KIZUNA_", extra="ignore", frozen=True)

    data_dir: Path = Path("./data")
    # Unset means a SQLite file in the data dir.
    database_url: str | None = None
    # Throttling counters shared by replicas (kizuna.throttle_counters); unset: in the store.
    redis_url: str | None = None
    # How long to wait for Redis (connect, and each command) before counting in the store, and
    # how long to count there before asking Redis again.
    redis_timeout: float = Field(0.25, gt=0, le=5)
    redis_recheck: float = Field(1.0, gt=0, le=60)

    issuer: str = "kizuna"
    audience: str = "kizuna-web"
    signing_alg: SigningAlg = "ES256"

    access_token_ttl: int = Field(300, ge=1, le=3600)
    refresh_token_ttl: int = Field(2_592_000, ge=60)
    session_max_age: int = Field(7_776_000, ge=60)
    refresh_grace: int = Field(10, ge=0, le=120)
    # How much of a wait in the web tier's queues a refresh may claim (Kizuna-Request-Age): the
    # grace window is judged by when a refresh was sent, so that a queue cannot turn a racing
    # tab into a thief (issue 11). Bounded, since a proxy's word widens the window by it.
    refresh_max_request_age: float = Field(30.0, ge=0, le=120)
    # Leeway for exp/nbf/iat; docs/protocol.md §3 allows at most 5 s.
    clock_leeway: int = Field(5, ge=0, le=5)

    allow_signup: bool = True
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = Field(
        default_factory=lambda: [
            ipaddress.ip_network("127.0.0.1/32"),
            ipaddress.ip_network("::1/128"),
        ]
    )

    access_cookie: str = "access_token"
    refresh_cookie: str = "refresh_token"
    device_cookie: str = "device_id"
    refresh_cookie_path: str = "/auth/refresh"
    # Dev-only switch: Secure is on by default; browsers accept Secure cookies on http://localhost.
    cookie_secure: bool = True
    cookie_domain: str | None = None

    # Failed-login throttling (per account and per client address).
    login_fail_window: int = Field(900, ge=1)
    login_fail_per_account: int = Field(10, ge=1)
    login_fail_per_ip: int = Field(100, ge=1)
    # Sign-ups per client address in the same window: each one costs an argon2 hash and
    # tells whether an address has an account.
    signup_per_ip: int = Field(30, ge=1)

    # Hashing processes per server process (worker).
    hash_concurrency: int = Field(1, ge=1, le=64)
    # Cores given to password hashing, over all workers: hashing runs only on the last N of
    # the cores the server may use, at most N hashes at once (lock files in the data dir).
    # Unset: all but one, at least one, so that request handling keeps a core to itself.
    hash_cores: int | None = Field(None, ge=1, le=1024)
    # Hash requests one server process queues before answering 503 (Retry-After) at once.
    hash_queue: int = Field(64, ge=1)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    # How long a session's liveness may be cached per process; bounds revocation latency.
    session_cache_ttl: float = Field(0.5, ge=0.0, le=1.0)
    # Store hygiene (kizuna.purge): seconds between purges in each server process, jittered
    # (0: never; processes take turns through a lock); how long ended sessions, expired or
    # revoked refresh-token records and change-feed entries are kept; how long security events
    # are kept; rows deleted per transaction.
    purge_interval: float = Field(3600.0, ge=0.0)
    purge_retention: int = Field(604_800, ge=3600)
    security_event_retention: int = Field(7_776_000, ge=86_400)
    purge_batch: int = Field(1000, ge=1, le=100_000)
    jwks_max_age: int = Field(300, ge=0)
    log_level: str = "info"
    # ``kizuna serve`` tunes its own process (kizuna.process_tuning); an embedding app never is.
    process_tuning: bool = True
    # Dev-only: serve the OpenAPI document at /openapi.json.
    api_docs: bool = False
    log_json: bool = True

    @field_validator("access_cookie", "refresh_cookie", "device_cookie")
    @classmethod
    def _cookie_name(cls, value: str) -> str:
        if not _COOKIE_NAME.fullmatch(value):
            raise ValueError("a cookie name is letters, digits and !#$%&'*+-.^_`|~ only")
        return value

    @field_validator("cookie_domain")
    @classmethod
    def _cookie_domain(cls, value: str | None) -> str | None:
        if value is not None and not _DOMAIN.fullmatch(value):
            raise ValueError("not a domain name")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies", mode="after")
    @classmethod
    def _strict_networks(cls, value: list[IPNetwork]) -> list[IPNetwork]:
        return [ipaddress.ip_network(net, strict=False) for net in value]

    @cached_property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'kizuna.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"


def ensure_data_dir(settings: Settings) -> None:
    """The data dir holds keys and (on SQLite) password hashes: owner-only, from the start."""
    directory = settings.data_dir
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
    if settings.database_url is None:
        database = directory / "kizuna.db"
        if not database.exists():
            # SQLite gives its -wal and -shm files the permissions of the database file.
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))


def load_settings() -> Settings:
    return Settings()
