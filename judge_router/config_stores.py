"""The config's store sections (cache, ledger, state): embedded by default, Redis and PostgreSQL
for several replicas. URLs are checked here, so a typo stops start-up naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from judge_router.config_sections import ENV_REFERENCE_PREFIX, resolve_env_reference

REDIS_SCHEMES = ("redis", "rediss", "unix")
POSTGRES_SCHEMES = ("postgresql", "postgres")


def _from_env(value: Any) -> Any:
    """`os.environ/NAME` read now; an unset variable is an error naming it."""
    if isinstance(value, str) and value.startswith(ENV_REFERENCE_PREFIX):
        found = resolve_env_reference(value)
        if found is None:
            raise ValueError(
                f"environment variable {value.removeprefix(ENV_REFERENCE_PREFIX)} is not set"
            )
        return found
    return value


def check_url(url: str, schemes: tuple[str, ...], example: str) -> str:
    """`url` if its scheme is one of `schemes` and it names a host (or a socket path)."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"not a URL ({exc}); expected e.g. {example}") from None
    if parts.scheme not in schemes:
        allowed = ", ".join(f"{scheme}://" for scheme in schemes)
        raise ValueError(
            f"scheme {parts.scheme or '(none)'!r} is not one of {allowed}; e.g. {example}"
        )
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"no host in the URL; expected e.g. {example}")
    if parts.scheme == "unix" and not parts.path:
        raise ValueError("a unix:// URL needs the socket's path, e.g. unix:///run/redis.sock")
    if port == 0:
        raise ValueError("port 0 is not a port a server listens on")
    return url


def url_password(url: str | None) -> str | None:
    """The password in a URL (scrubbed from logs like every other secret)."""
    return None if url is None else urlsplit(url).password


def safe_url(url: str) -> str:
    """`url` without its password, for logs and /healthz."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + netloc).geturl()


REDIS_URL_HELP = (
    "`redis://[:PASSWORD@]HOST:PORT/DB`, `rediss://` for TLS, or `unix:///PATH`; "
    "`os.environ/NAME` reads it from a variable"
)


class CacheConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="turn the verdict cache off")
    backend: Literal["disk", "redis"] = Field(
        default="disk",
        description="where verdicts are kept: `disk` (diskcache under `cache.dir`, one machine) or "
        "`redis` (`cache.redis_url`, shared by every replica, one judge call per prompt across them)",
    )
    dir: Path = Field(
        default=Path("~/.judge-router/cache"),
        validate_default=True,
        description="diskcache directory",
    )
    ttl_s: int = Field(default=604_800, gt=0, description="verdict lifetime (7 days)")
    memory_entries: int = Field(
        default=4096,
        ge=0,
        description="verdicts and prompt readings kept in process memory in front of the store "
        "(`0`: none); at most ~5 KB each with the default `judge.max_input_tokens`",
    )
    redis_url: str | None = Field(
        default=None,
        repr=False,
        description=f"the Redis server of `backend: redis`: {REDIS_URL_HELP}",
        json_schema_extra={"shown_default": "none"},
    )
    redis_password: str | None = Field(
        default=None,
        repr=False,
        description="the Redis password when it is not in the URL, e.g. `os.environ/REDIS_PASSWORD`",
        json_schema_extra={"shown_default": "none"},
    )
    lock_s: float = Field(
        default=15.0,
        gt=0,
        description="with Redis: how long a replica's claim on judging one prompt lasts; the other "
        "replicas wait for its verdict, and judge themselves if it has not landed by then (a "
        "crashed replica's claim); keep it above `judge.timeout_s`",
    )

    @field_validator("dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("redis_url", "redis_password", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        return _from_env(value)

    @field_validator("redis_url", mode="after")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value, REDIS_SCHEMES, "redis://redis:6379/0")


class LedgerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["sqlite", "postgresql"] | None = Field(
        default=None,
        description="where rows are kept: `sqlite` (the file at `ledger.path`) or `postgresql` "
        "(`ledger.url`, shared by every replica)",
        json_schema_extra={"shown_default": "`postgresql` when `ledger.url` is set, else `sqlite`"},
    )
    path: Path = Field(
        default=Path("~/.judge-router/ledger.sqlite"),
        validate_default=True,
        description="the SQLite ledger",
    )
    url: str | None = Field(
        default=None,
        repr=False,
        description="the PostgreSQL ledger: `postgresql://USER[:PASSWORD]@HOST:PORT/DB` "
        "(libpq's `PGPASSWORD` and `?sslmode=` work too); `os.environ/NAME` reads it from a variable",
        json_schema_extra={"shown_default": "none"},
    )
    pool_size: int = Field(
        default=10,
        ge=1,
        le=100,
        description="PostgreSQL connections each process keeps at most",
    )
    store_prompts: bool = Field(
        default=False,
        description="store each request's conversation text in the ledger (off: only its hash)",
    )
    recovery_path: Path | None = Field(
        default=None,
        description="where rows the ledger still cannot write at shutdown are saved, to be "
        "written at the next start; put it on another disk than the ledger (with `ledger.url`: "
        "each process saves to `<recovery_path>.<pid>`, and a starting one claims them all)",
        json_schema_extra={
            "shown_default": "`<ledger.path>.pending.jsonl`; with `ledger.url`, "
            "`ledger.postgresql.pending.jsonl` beside `ledger.path`"
        },
    )
    max_pending_rows: int = Field(
        default=10_000,
        ge=0,
        description="rows kept in memory while the ledger cannot be written (PostgreSQL "
        "unreachable, a locked or full disk); beyond it the oldest are dropped and counted",
    )

    @field_validator("path", "recovery_path")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @field_validator("url", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        return _from_env(value)

    @field_validator("url", mode="after")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        example = "postgresql://judge_router@db:5432/judge_router"
        return None if value is None else check_url(value, POSTGRES_SCHEMES, example)

    @property
    def uses_postgres(self) -> bool:
        return (self.backend or ("postgresql" if self.url else "sqlite")) == "postgresql"


class StateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["memory", "redis"] | None = Field(
        default=None,
        description="where circuit breakers, rate-limit counters and budget spend counters live: "
        "`memory` (per worker process) or `redis` (shared by every replica)",
        json_schema_extra={
            "shown_default": "`redis` when `state.redis_url` is set or `cache.backend` is "
            "`redis`, else `memory`"
        },
    )
    redis_url: str | None = Field(
        default=None,
        repr=False,
        description=f"the Redis server for shared state: {REDIS_URL_HELP}",
        json_schema_extra={"shown_default": "`cache.redis_url`"},
    )
    redis_password: str | None = Field(
        default=None,
        repr=False,
        description="the password for `state.redis_url` when it is not in the URL",
        json_schema_extra={"shown_default": "`cache.redis_password`"},
    )

    @field_validator("redis_url", "redis_password", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        return _from_env(value)

    @field_validator("redis_url", mode="after")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value, REDIS_SCHEMES, "redis://redis:6379/0")


def resolve_stores(cache: CacheConfig, ledger: LedgerConfig, state: StateConfig) -> None:
    """Fill in what the sections imply of each other; ValueError naming the key that is missing."""
    if cache.backend == "redis" and cache.redis_url is None:
        raise ValueError("cache.backend is redis but cache.redis_url is not set")
    if ledger.backend == "postgresql" and ledger.url is None:
        raise ValueError("ledger.backend is postgresql but ledger.url is not set")
    if ledger.backend == "sqlite" and ledger.url is not None:
        raise ValueError("ledger.url is set but ledger.backend is sqlite: remove one of them")
    ledger.backend = "postgresql" if ledger.url else "sqlite"
    shared_cache = cache.redis_url if cache.backend == "redis" else None
    if state.redis_url is None and shared_cache is not None:
        state.redis_url = shared_cache
        state.redis_password = state.redis_password or cache.redis_password
    if state.backend is None:
        state.backend = "redis" if state.redis_url else "memory"
    if state.backend == "redis" and state.redis_url is None:
        raise ValueError(
            "state.backend is redis but neither state.redis_url nor cache.redis_url is set"
        )
