"""The Redis settings without a server: what they imply of each other, how a bad URL is refused,
that passwords stay out of logs, and the parts build_engine chooses (nothing connects at build)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from judge_router.config import ConfigError, Settings, load_settings
from judge_router.config_stores import safe_url
from judge_router.routing.memory_layer import MemoryLayer
from judge_router.routing.redis_store import RedisVerdictStore
from judge_router.service.factory import build_engine
from judge_router.service.redis_limits import RedisRateLimiter
from judge_router.upstream.breaker import MemoryBreaker
from judge_router.upstream.redis_breaker import RedisBreaker

URL = "redis://:s3cret-passw0rd@127.0.0.1:1/0"  # port 1: nothing is ever sent there


def test_state_follows_the_cache_to_redis(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(cache={"backend": "redis", "redis_url": URL})
    assert settings.state.backend == "redis" and settings.state.redis_url == URL
    assert make_settings().state.backend == "memory"
    own = make_settings(state={"redis_url": "redis://127.0.0.1:2/1"})
    assert own.state.backend == "redis" and own.cache.backend == "disk"
    kept_local = make_settings(
        cache={"backend": "redis", "redis_url": URL}, state={"backend": "memory"}
    )
    assert kept_local.state.backend == "memory"


def test_the_password_is_a_secret_and_left_out_of_shown_urls(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(cache={"backend": "redis", "redis_url": URL})
    assert "s3cret-passw0rd" in settings.secrets()
    assert safe_url(URL) == "redis://:***@127.0.0.1:1/0"
    assert "s3cret" not in repr(settings.cache)


def test_the_url_may_come_from_the_environment(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JR_TEST_REDIS_URL", "rediss://cache.internal:6380/2")
    settings = make_settings(
        cache={"backend": "redis", "redis_url": "os.environ/JR_TEST_REDIS_URL"}
    )
    assert settings.cache.redis_url == "rediss://cache.internal:6380/2"


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("cache: {backend: redis}\n", "cache.redis_url is not set"),
        ("cache: {backend: redis, redis_url: 'http://x:6379'}\n", "scheme 'http'"),
        ("cache: {backend: redis, redis_url: 'redis://:6379'}\n", "no host"),
        ("cache: {redis_url: 'os.environ/JR_UNSET_VARIABLE_X'}\n", "JR_UNSET_VARIABLE_X"),
        ("state: {backend: redis}\n", "neither state.redis_url nor cache.redis_url"),
        ("cache: {lock_s: 0}\n", "cache.lock_s"),
    ],
)
def test_a_bad_redis_setting_is_refused_naming_it(
    tmp_path: Path, yaml_text: str, named: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert named in str(raised.value)


def test_build_engine_chooses_the_redis_parts(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        cache={"backend": "redis", "redis_url": URL}, server={"rate_limit_per_minute": 5}
    )
    engine = build_engine(settings)
    try:
        assert isinstance(engine.verdicts, MemoryLayer)
        assert isinstance(engine.verdicts.store, RedisVerdictStore)
        assert engine.pipeline.shared is engine.verdicts.store
        assert isinstance(engine.model_breaker, RedisBreaker)
        assert isinstance(engine.judges.breaker, RedisBreaker)
        assert isinstance(engine.rate_limiter, RedisRateLimiter)
        (link,) = engine.redis  # one connection pool for the cache and the state
        assert link.uses == ["cache", "state"] and "s3cret" not in link.url
    finally:
        asyncio.run(engine.aclose())


def test_the_default_engine_has_no_redis(make_settings: Callable[..., Settings]) -> None:
    engine = build_engine(make_settings())
    try:
        assert engine.redis == [] and engine.pipeline.shared is None
        assert isinstance(engine.model_breaker, MemoryBreaker)
    finally:
        asyncio.run(engine.aclose())


def test_a_claim_shorter_than_the_judges_timeout_is_reported(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(cache={"backend": "redis", "redis_url": URL, "lock_s": 1})
    engine = build_engine(settings)
    try:
        assert any("cache.lock_s (1 s)" in line for line in engine.startup_report())
    finally:
        asyncio.run(engine.aclose())


def test_the_shipped_replicas_example_loads_and_its_compose_file_runs_three(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """examples/replicas: the config every replica loads, and the compose file that starts them."""
    import yaml

    folder = Path(__file__).resolve().parent.parent / "examples" / "replicas"
    monkeypatch.setenv("JUDGE_ROUTER_REDIS_URL", "redis://redis:6379/0")
    monkeypatch.setenv("JUDGE_ROUTER_LEDGER_URL", "postgresql://jr:pw@postgres:5432/judge_router")
    monkeypatch.setenv("JR_KEY_OPS", "ops-key-0123456789")
    monkeypatch.setenv("JR_KEY_TEAM_A", "team-a-key-0123456789")
    settings = load_settings(folder / "judge-router.yaml")
    assert (settings.cache.backend, settings.state.backend) == ("redis", "redis")
    assert settings.state.redis_url == settings.cache.redis_url == "redis://redis:6379/0"
    assert settings.ledger.backend == "postgresql"
    assert settings.cache.lock_s > settings.judge.timeout_s
    compose = yaml.safe_load((folder / "docker-compose.yml").read_text(encoding="utf-8"))
    replicas = [name for name in compose["services"] if name.startswith("replica-")]
    assert len(replicas) == 3
    for name in replicas:
        service = compose["services"][name]
        assert "./judge-router.yaml:/config/judge-router.yaml:ro" in service["volumes"]
        assert set(service["depends_on"]) == {"redis", "postgres"}
    upstreams = (folder / "nginx.conf").read_text(encoding="utf-8")
    assert all(f"server {name}:8080" in upstreams for name in replicas)
