"""Start-up catches mistakes: `serve` refuses (exit status and message read from the process) an
unknown model, an unpriced baseline, a bad environment override and bad flags; and what the CLI
reads from litellm's bundled map file instead of importing litellm is what litellm itself says."""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from judge_router.accounting.prices import thresholds  # noqa: E402
from judge_router.config import ModelEntry, Settings, load_settings  # noqa: E402
from judge_router.upstream import bundled_map  # noqa: E402
from judge_router.upstream.litellm_runtime import load_litellm  # noqa: E402
from judge_router.upstream.model_check import problems  # noqa: E402
from judge_router.upstream.prices import Pricer  # noqa: E402

from fakes import settings_data  # noqa: E402
from servers import clean_env  # noqa: E402

EXAMPLE = Path(__file__).parent.parent / "judge-router.example.yaml"


def serve(tmp_path: Path, data: dict[str, Any] | None, *flags: str, **env: str) -> tuple[int, str]:
    """Run `judge-router serve` to its end (a refusal ends it at once); its status and output."""
    command = [sys.executable, "-m", "judge_router.cli", "serve", "--host", "127.0.0.1", *flags]
    if data is not None:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data))
        command += ["--config", str(config)]
    done = subprocess.run(
        command,
        env={**clean_env(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.slow
def test_a_misspelt_model_stops_serve_naming_it_and_the_closest_names(tmp_path: Path) -> None:
    data = settings_data(tmp_path)
    data["tiers"]["low"] = [{"model": "gpt-5-nanoo"}]
    status, output = serve(tmp_path, data, "--port", "1")  # never reached: it stops before
    assert status == 1, output
    assert "tiers.low[0].model" in output and "'gpt-5-nanoo'" in output
    assert "closest known names: gpt-5-nano" in output
    assert "Traceback" not in output


@pytest.mark.slow
def test_an_unpriced_baseline_names_baseline_litellm_params(tmp_path: Path) -> None:
    data = settings_data(tmp_path, baseline="openai/house-model")  # in no tier, in no price map
    status, output = serve(tmp_path, data, "--port", "1")
    assert status == 1, output
    assert "baseline: 'openai/house-model' is not in litellm's price map" in output
    assert "set baseline_litellm_params.input_cost_per_token and output_cost_per_token" in output
    assert "tiers." not in output  # the test config's models are fine


@pytest.mark.slow
def test_a_bad_environment_override_names_the_variable_not_the_file(tmp_path: Path) -> None:
    status, output = serve(tmp_path, settings_data(tmp_path), JUDGE_ROUTER_JUDGE__TIMEOUT_S="soon")
    assert status == 1, output
    assert "JUDGE_ROUTER_JUDGE__TIMEOUT_S (sets judge.timeout_s)" in output
    assert "config.yaml" not in output


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--port", "0"], "Invalid value for '--port': 0 is not in the range 1<=x<=65535"),
        (["--port", "65536"], "Invalid value for '--port': 65536 is not in the range"),
        (["--log-level", "loud"], "Invalid value for '--log-level': 'loud' is not one of"),
        (["--log-format", "xml"], "Invalid value for '--log-format': 'xml' is not one of"),
        (["--workers", "0"], "Invalid value for '--workers': 0 is not in the range x>=1"),
        (["--colour"], "No such option '--colour'"),
        (["--host", " "], "Invalid value for --host: an empty address"),
    ],
)
def test_bad_flags_are_usage_errors(tmp_path: Path, flags: list[str], expected: str) -> None:
    status, output = serve(tmp_path, None, *flags)
    assert status == 2, output
    assert expected in output and "Traceback" not in output


@pytest.mark.slow
def test_dash_h_prints_help(tmp_path: Path) -> None:
    status, output = serve(tmp_path, None, "-h")
    assert status == 0 and "Run the HTTP service." in output and "--log-format" in output


def test_the_test_configs_and_the_example_pass_the_model_check(tmp_path: Path) -> None:
    assert problems(Settings(**settings_data(tmp_path))) == []  # openai/NAME with an api_base
    assert problems(load_settings(EXAMPLE)) == []


def test_a_bare_name_behind_an_api_base_still_needs_a_provider(tmp_path: Path) -> None:
    data = settings_data(tmp_path)
    data["tiers"]["medium"][0]["model"] = "mid-a"  # no openai/ prefix: litellm cannot route it
    data["judge"]["litellm_params"]["custom_llm_provider"] = "openai"
    data["judge"]["model"] = "judge-nano"  # a provider named in litellm_params is enough
    found = problems(Settings(**data))
    assert len(found) == 1 and found[0].startswith("tiers.medium[0].model:"), found
    assert "write openai/NAME and set tiers.medium[0].litellm_params.api_base" in found[0]


def test_a_known_provider_with_an_unknown_model_is_not_priced_at_zero() -> None:
    # litellm answers get_model_info("openai/gpt-5-nanoo") with a blank entry priced at $0.
    settings = Settings(
        judge={"model": "heuristic"},
        tiers={
            "low": [{"model": "openai/gpt-5-nanoo"}],
            "medium": [{"model": "gpt-5-mini"}],
            "high": [{"model": "gpt-5.1"}],
        },  # fmt: skip
    )
    (found,) = problems(settings)
    assert found.startswith(
        "tiers.low[0]: 'openai/gpt-5-nanoo' is not in litellm's price map (closest known names: "
        "openai/gpt-5-nano, "
    )
    assert found.endswith(
        "; fix the name, or price it: "
        "set tiers.low[0].litellm_params.input_cost_per_token and output_cost_per_token"
    )


def test_a_misspelt_provider_prefix_suggests_the_provider() -> None:
    settings = Settings(
        judge={"model": "heuristic"},
        tiers={
            "low": [{"model": "opnai/gpt-5-mini"}],
            "medium": [{"model": "gpt-5-mini"}],
            "high": [{"model": "gpt-5.1"}],
        },  # fmt: skip
    )
    (found,) = problems(settings)
    assert "closest known names: openai/gpt-5-mini" in found


# -- litellm's bundled map, read as a file --------------------------------------------------------


@functools.cache
def accepted_entries() -> dict[str, dict[str, Any]]:
    path = bundled_map.map_path()
    assert path is not None
    names = json.loads(path.read_bytes())
    return {name: found for name in names if (found := bundled_map.entry(name)) is not None}


def test_bundled_prices_are_litellms_below_every_long_context_tier() -> None:
    litellm = load_litellm()
    accepted = accepted_entries()
    assert len(accepted) > 200
    wrong = []
    for name, found in accepted.items():
        tiers = thresholds(found)
        below = min(tiers) - 1 if tiers else 2_000_000
        price = bundled_map.flat_price(name, below)
        assert price is not None
        for prompt, completion in ((1, 1), (1_000, 300), (below, 4_096)):
            exact = sum(litellm.cost_per_token(model=name, prompt_tokens=prompt,
                                               completion_tokens=completion))  # fmt: skip
            if not math.isclose(exact, prompt * price[0] + completion * price[1], rel_tol=1e-9):
                wrong.append((name, prompt, completion))
        if tiers:
            assert bundled_map.flat_price(name, min(tiers)) is None
    assert wrong == []


def test_bundled_credentials_are_what_litellm_says(monkeypatch: pytest.MonkeyPatch) -> None:
    litellm = load_litellm()
    for names in bundled_map.PROVIDER_KEYS.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    disagree = []
    for name in accepted_entries():
        check = litellm.validate_environment(name)
        theirs = [" or ".join(check["missing_keys"])] if check["missing_keys"] else []
        if bundled_map.missing_keys(ModelEntry(model=name)) != theirs:
            disagree.append(name)
    assert disagree == []
    for provider, names in bundled_map.PROVIDER_KEYS.items():
        monkeypatch.setenv(names[-1], "set")
        model = next(n for n, e in accepted_entries().items() if e["litellm_provider"] == provider)
        assert litellm.validate_environment(model)["keys_in_environment"] is True
        assert bundled_map.missing_keys(ModelEntry(model=model)) == []


def test_the_example_config_priced_from_the_file_costs_what_litellm_says() -> None:
    settings = load_settings(EXAMPLE)
    from_file = bundled_map.with_bundled_prices(settings, prompt_tokens=2_000)
    assert from_file is not None
    by_litellm, by_file = Pricer(settings), Pricer(from_file)
    for entry in settings.priced_models():
        assert by_file.price(entry.model).from_config  # no litellm needed to price it
        for usage in ((2_000, 300), (0, 4_096)):
            assert math.isclose(
                by_file.cost(entry.model, *usage), by_litellm.cost(entry.model, *usage)
            )


def test_a_long_prompt_or_an_unknown_name_is_left_to_litellm() -> None:
    settings = load_settings(EXAMPLE)  # gemini-2.5-pro's price changes above 200k tokens
    assert bundled_map.with_bundled_prices(settings, prompt_tokens=250_000) is None
    assert bundled_map.flat_price("openai/gpt-5-nano", 10) is None  # litellm strips the prefix
    assert bundled_map.flat_price("gpt-5-nanoo", 10) is None


def test_the_credentials_warning_names_only_models_that_will_be_called(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from judge_router.service.factory import build_engine

    def report(data: dict[str, Any]) -> list[str]:
        engine = build_engine(Settings(**data))
        lines = engine.startup_report()
        asyncio.run(engine.aclose())
        return lines

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    # The baseline is only priced (no tier lists it): no key of its own is needed.
    assert report(settings_data(tmp_path, baseline="claude-sonnet-4-5")) == []
    # The same model in a tier will be called, and its missing key is named.
    data = settings_data(tmp_path, baseline="claude-sonnet-4-5")
    data["tiers"]["high"].append({"model": "claude-sonnet-4-5"})
    (line,) = report(data)
    assert "claude-sonnet-4-5: ANTHROPIC_API_KEY" in line
    # Held-back traffic goes to the baseline: then it is called, and its key is needed.
    held = settings_data(tmp_path, baseline="claude-sonnet-4-5", rollout={"low": 50})
    (line,) = report(held)
    assert "claude-sonnet-4-5: ANTHROPIC_API_KEY" in line
