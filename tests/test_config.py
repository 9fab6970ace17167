"""Config loading: the example file, errors that name the key, env overrides, prices."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from judge_router.config import ConfigError, Settings, load_settings
from judge_router.types import Tier
from judge_router.upstream.prices import Pricer

EXAMPLE = Path(__file__).parent.parent / "judge-router.example.yaml"


def test_example_config_loads_and_every_model_is_priced() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.judge.model == "gpt-5-nano"
    assert [e.model for e in settings.tiers[Tier.HIGH]] == ["gpt-5.1", "gemini/gemini-2.5-pro"]
    completions = Pricer(settings)
    assert completions.price("gpt-5-nano").input_per_token == pytest.approx(0.05e-6)
    assert completions.price("gpt-5.1").output_per_token == pytest.approx(10e-6)


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("baseline: gpt-5-mini\njudge: {model: heuristic}\n")
    monkeypatch.setenv("JUDGE_ROUTER_CONFIG", str(path))
    assert load_settings().baseline == "gpt-5-mini"


def test_environment_overrides_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("judge: {model: gpt-5-nano, timeout_s: 3}\n")
    monkeypatch.setenv("JUDGE_ROUTER_JUDGE__MODEL", "heuristic")
    settings = load_settings(path)
    assert settings.judge.model == "heuristic" and settings.judge.timeout_s == 3


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("judge: {modle: gpt-5-nano}\n", "judge.modle"),
        ("judge: {timeout_s: -1}\n", "judge.timeout_s"),
        ("judge: {on_failure: sometimes}\n", "judge.on_failure"),
        ("tiers: {low: [{model: a}]}\n", "tiers"),
        ("tiers: {low: [{name: a}], medium: [{model: b}], high: [{model: c}]}\n", "tiers.low.0"),
        ("cache: {ttl_s: 0}\n", "cache.ttl_s"),
        ("server: {max_body_bytes: lots}\n", "server.max_body_bytes"),
        ("surprise: 1\n", "surprise"),
    ],
)
def test_invalid_config_names_the_key(tmp_path: Path, yaml_text: str, named: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert named in str(raised.value)


def test_unreadable_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("judge: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(tmp_path / "list.yaml")


def test_os_environ_references(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-from-env")
    monkeypatch.delenv("ABSENT_KEY", raising=False)
    settings = make_settings(
        judge={
            "model": "openai/j",
            "litellm_params": {
                "api_key": "os.environ/MY_JUDGE_KEY",
                "api_base": "os.environ/ABSENT_KEY",
                "input_cost_per_token": 1e-7,
                "output_cost_per_token": 1e-7,
            },
        },  # fmt: skip
    )
    params = settings.judge.litellm_params
    assert params.api_key == "sk-from-env"
    assert params.missing_env() == ["ABSENT_KEY"]
    assert "sk-from-env" not in repr(settings)


def test_unpriced_model_is_a_startup_error_naming_it(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        tiers={
            "low": [{"model": "openai/my-private-model"}],
            "medium": [{"model": "gpt-5-mini"}],
            "high": [{"model": "gpt-5.1"}],
        },
        baseline="gpt-5.1",
    )
    with pytest.raises(ConfigError) as raised:
        Pricer(settings)
    assert "openai/my-private-model" in str(raised.value)
    assert "input_cost_per_token" in str(raised.value)


def test_config_prices_override_and_must_come_in_pairs(
    make_settings: Callable[..., Settings],
) -> None:
    priced = make_settings(
        tiers={
            "low": [
                {
                    "model": "gpt-5-nano",
                    "litellm_params": {"input_cost_per_token": 1e-9, "output_cost_per_token": 2e-9},
                }
            ],
            "medium": [{"model": "gpt-5-mini"}],
            "high": [{"model": "gpt-5.1"}],
        },  # fmt: skip
        baseline="gpt-5.1",
    )
    assert Pricer(priced).cost("gpt-5-nano", 1000, 1000) == pytest.approx(3e-6)
    half = make_settings(
        tiers={
            "low": [{"model": "openai/x", "litellm_params": {"input_cost_per_token": 1e-9}}],
            "medium": [{"model": "gpt-5-mini"}],
            "high": [{"model": "gpt-5.1"}],
        },
        baseline="gpt-5.1",
    )
    with pytest.raises(ConfigError, match="set both"):
        Pricer(half)
