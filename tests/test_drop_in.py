"""Drop-in for OpenAI clients: every documented parameter, non-text content, model aliases."""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml
from openai.types.chat import completion_create_params

from judge_router.config import ConfigError, Settings, load_settings
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app
from judge_router.serving.bodies import ChatCompletionRequest
from judge_router.types import Tier

from fakes import chat_reply, fake_upstream, verdict_reply

# What a client may send for each parameter OpenAI documents that the fakes cannot infer.
SAMPLE_VALUES: dict[str, Any] = {
    "audio": {"voice": "alloy", "format": "wav"},
    "frequency_penalty": 0.1,
    "function_call": "auto",
    "functions": [{"name": "f", "parameters": {"type": "object", "properties": {}}}],
    "logit_bias": {"50256": -100},
    "logprobs": True,
    "max_completion_tokens": 50,
    "max_tokens": 50,
    "modalities": ["text"],
    "moderation": {"model": "omni-moderation-latest"},
    "n": 1,
    "parallel_tool_calls": False,
    "prediction": {"type": "content", "content": "draft"},
    "presence_penalty": 0.1,
    "prompt_cache_key": "team-a",
    "prompt_cache_options": {"mode": "auto"},
    "prompt_cache_retention": "24h",
    "reasoning_effort": "low",
    "response_format": {"type": "text"},
    "safety_identifier": "user-1234",
    "seed": 7,
    "service_tier": "auto",
    "stop": ["\n\n"],
    "store": False,
    "stream_options": {"include_usage": True},
    "temperature": 0.2,
    "tool_choice": "none",
    "tools": [{"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}}],
    "top_logprobs": 2,
    "top_p": 0.9,
    "user": "u-1",
    "verbosity": "low",
    "web_search_options": {"search_context_size": "low"},
}
# Parameters with a meaning of their own here, tested elsewhere.
ROUTER_HANDLED = {"messages", "model", "stream", "metadata"}


def openai_chat_parameters() -> set[str]:
    """The request parameters of the installed `openai` package's chat.completions.create."""
    streaming = completion_create_params.CompletionCreateParamsStreaming
    return set(typing.get_type_hints(streaming))


def test_every_parameter_openai_documents_is_accepted() -> None:
    documented = openai_chat_parameters()
    accepted = set(ChatCompletionRequest.model_fields)
    assert documented - accepted == set(), "OpenAI documents parameters the router refuses"
    assert documented - ROUTER_HANDLED - set(SAMPLE_VALUES) == set(), "add a sample value"


@pytest.fixture
def proxy(client: httpx.AsyncClient, settings: Settings) -> tuple[httpx.AsyncClient, Settings]:
    """conftest's app client and its settings, together."""
    return client, settings


async def test_each_parameter_reaches_the_provider_or_is_listed_as_dropped(
    proxy: tuple[httpx.AsyncClient, Settings], respx_mock: respx.MockRouter
) -> None:
    client, _ = proxy
    upstream = fake_upstream(respx_mock, {})
    body = {"model": "auto:low", "messages": [{"role": "user", "content": "hi"}]}
    response = await client.post("/v1/chat/completions", json={**body, **SAMPLE_VALUES})
    assert response.status_code == 200, response.text
    sent = json.loads(upstream.calls.last.request.content)
    dropped = set(response.json()["router"].get("dropped_params", []))
    for name in SAMPLE_VALUES:
        if name == "stream_options":
            continue  # only sent with stream=True
        assert (name in sent) != (name in dropped), name
    assert sent["store"] is False and sent["prompt_cache_key"] == "team-a"
    assert "moderation" in dropped  # litellm does not know it for this model: never sent


@pytest.mark.parametrize(
    ("field", "fragment"),
    [
        ("api_base", "cannot redirect its credentials"),
        ("api_key", "cannot redirect its credentials"),
        ("base_url", "cannot redirect its credentials"),
        ("colour", "unknown field"),
    ],
)
async def test_provider_settings_in_a_request_are_refused_by_name(
    proxy: tuple[httpx.AsyncClient, Settings], field: str, fragment: str
) -> None:
    client, _ = proxy
    body = {"messages": [{"role": "user", "content": "hi"}], field: "http://evil.example"}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message.startswith(f"{field}: ") and fragment in message


IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}


async def test_non_text_parts_reach_the_provider_and_the_judge_sees_placeholders(
    proxy: tuple[httpx.AsyncClient, Settings],
    respx_mock: respx.MockRouter,
    judge_route: respx.Route,
) -> None:
    client, _ = proxy
    upstream = fake_upstream(respx_mock, {})
    content = [{"type": "text", "text": "What is in this picture?"}, IMAGE, AUDIO]
    body = {"model": "auto", "messages": [{"role": "user", "content": content}]}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["router"]["source"] == "llm"
    judged = json.loads(judge_route.calls.last.request.content)["messages"][-1]["content"]
    assert "What is in this picture?" in judged and "[image]" in judged and "[audio]" in judged
    assert "iVBORw0KGgo" not in judged  # the judge never gets the image itself
    sent = json.loads(upstream.calls.last.request.content)["messages"][0]["content"]
    assert sent == content


@pytest.mark.parametrize("model", ["auto", "auto:low", "openai/mid-a"])
async def test_a_request_without_text_is_routed_never_refused(
    make_settings: Callable[..., Settings],
    respx_mock: respx.MockRouter,
    judge_route: respx.Route,
    model: str,
) -> None:
    settings = make_settings(routing={"no_text_tier": "medium"})
    engine = build_engine(settings)
    upstream = fake_upstream(respx_mock, {})
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as client:
        body = {"model": model, "messages": [{"role": "user", "content": [IMAGE]}]}
        response = await client.post("/v1/chat/completions", json=body)
    await engine.aclose()
    assert response.status_code == 200, response.text
    router = response.json()["router"]
    expected = {
        "auto": ("medium", "rule", "openai/mid-a"),
        "auto:low": ("low", "forced", "openai/cheap-a"),
        "openai/mid-a": ("medium", "passthrough", "openai/mid-a"),
    }[model]
    assert (router["tier"], router["source"], router["model"]) == expected
    assert not judge_route.called  # nothing for a judge to read
    assert upstream.called


async def test_an_image_only_route_uses_the_default_no_text_tier(
    client: httpx.AsyncClient, judge_route: respx.Route
) -> None:
    for content in ([IMAGE], "   "):
        body = {"messages": [{"role": "user", "content": content}]}
        answer = (await client.post("/route", json=body)).json()
        assert (answer["tier"], answer["source"]) == ("high", "rule"), answer
        assert "routing.no_text_tier" in answer["reason"]
    assert not judge_route.called


def alias_settings(make_settings: Callable[..., Settings]) -> Settings:
    """A LiteLLM-style config: model_list entries, named by model_name in the tiers."""
    price = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    base = {"api_base": "http://127.0.0.1:9/upstream/v1", "api_key": "sk-test-upstream", **price}
    model_list = [
        {"model_name": "fast", "litellm_params": {"model": "openai/cheap-a", **base}},
        {"model_name": "smart", "litellm_params": {"model": "openai/big-a", **base}},
    ]
    tiers = {"low": ["fast"], "medium": ["fast"], "high": ["smart"]}
    return make_settings(model_list=model_list, tiers=tiers, baseline="smart")


async def test_model_list_aliases_are_what_clients_see_and_name(
    make_settings: Callable[..., Settings], respx_mock: respx.MockRouter
) -> None:
    settings = alias_settings(make_settings)
    assert settings.baseline == "openai/big-a"
    engine = build_engine(settings)
    upstream = fake_upstream(respx_mock, {})
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://router.test") as client:
        listed = [m["id"] for m in (await client.get("/v1/models")).json()["data"]]
        one = await client.get("/v1/models/smart")
        missing = await client.get("/v1/models/smrat")
        by_its_litellm_name = await client.get("/v1/models/openai/big-a")
        by_alias = await client.post(
            "/v1/chat/completions",
            json={"model": "smart", "messages": [{"role": "user", "content": "hi"}]},
        )
        by_litellm_name = await client.post(
            "/v1/chat/completions",
            json={"model": "openai/cheap-a", "messages": [{"role": "user", "content": "hi"}]},
        )
    await engine.aclose()
    assert listed == ["auto", "auto:low", "auto:medium", "auto:high", "fast", "smart"]
    assert one.status_code == 200 and one.json()["id"] == "smart"
    assert missing.status_code == 404
    assert by_its_litellm_name.status_code == 200  # accepted as `model`, so retrievable
    assert missing.json()["error"]["type"] == "model_not_found"
    assert "'smart'" in missing.json()["error"]["message"]
    assert by_alias.status_code == 200, by_alias.text
    assert by_alias.json()["router"]["source"] == "passthrough"
    assert json.loads(upstream.calls[0].request.content)["model"] == "big-a"
    assert by_litellm_name.json()["router"]["model"] == "openai/cheap-a"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"tiers": {"low": ["fats"], "medium": ["fast"], "high": ["smart"]}},
         "tiers.low[0]: 'fats' is not a model_name of model_list; known: ['fast', 'smart']"),
        ({"router_settings": {"routing_strategy": "simple-shuffle"}},
         "router_settings: LiteLLM proxy settings that judge-router does not use"),
        ({"model_list": [{"model_name": "fast", "litellm_params": {}}]},
         "model_list[0]: needs litellm_params.model"),
        ({"tiers": {"low": [{"model": "openai/x", "model_name": "auto:high"}],
                    "medium": ["fast"], "high": ["smart"]}},
         "reserved for routing"),
    ],
)  # fmt: skip
def test_a_litellm_style_config_that_cannot_work_says_how_to_fix_it(
    tmp_path: Path, change: dict[str, Any], fragment: str
) -> None:
    model_list = [
        {"model_name": "fast", "litellm_params": {"model": "gpt-5-nano"}},
        {"model_name": "smart", "litellm_params": {"model": "gpt-5.1"}},
    ]
    config = {
        "model_list": model_list,
        "tiers": {"low": ["fast"], "medium": ["fast"], "high": ["smart"]},
        **change,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    assert fragment in str(refused.value)


def test_two_models_may_not_share_a_client_name(make_settings: Callable[..., Settings]) -> None:
    entry = {"model": "openai/other", "model_name": "openai/cheap-a"}
    data_tiers = {
        "low": [{"model": "openai/cheap-a"}],
        "medium": [entry],
        "high": [{"model": "openai/big-a"}],
    }
    with pytest.raises(ValueError, match="the name 'openai/cheap-a' already means"):
        make_settings(tiers=data_tiers)


async def test_answers_say_why_the_judge_failed(
    proxy: tuple[httpx.AsyncClient, Settings],
    respx_mock: respx.MockRouter,
    judge_route: respx.Route,
) -> None:
    client, _ = proxy
    fake_upstream(respx_mock, {})
    judge_route.mock(return_value=httpx.Response(500, json={"error": {"message": "down"}}))
    routed = (await client.post("/route", json={"prompt": "hello there"})).json()
    body = {"messages": [{"role": "user", "content": "hello again"}]}
    proxied = (await client.post("/v1/chat/completions", json=body)).json()["router"]
    for answer in (routed, proxied):
        assert answer["source"] == "heuristic"
        assert answer["judge_error"] and "provider_error" in answer["judge_error"], answer
    judge_route.mock(return_value=verdict_reply(tier="low"))
    fine = (await client.post("/route", json={"prompt": "a new prompt"})).json()
    assert fine["source"] == "llm" and fine["judge_error"] is None


def decimals(value: float) -> int:
    text = repr(value)
    if "e-" in text:
        mantissa, exponent = text.split("e-")
        return int(exponent) + len(mantissa.partition(".")[2])
    return len(text.partition(".")[2])


async def test_usd_figures_in_answers_carry_no_float_noise(
    proxy: tuple[httpx.AsyncClient, Settings],
    respx_mock: respx.MockRouter,
    judge_route: respx.Route,
) -> None:
    client, _ = proxy
    # 0.1 and 0.2 of a price: sums like these are where 0.30000000000000004 comes from.
    fake_upstream(respx_mock, {"mid-a": chat_reply("mid-a", usage=(1, 3))})
    body = {"model": "auto:medium", "messages": [{"role": "user", "content": "one two three"}]}
    router = (await client.post("/v1/chat/completions", json=body)).json()["router"]
    routed = (await client.post("/route", json={"prompt": "x " * 11})).json()
    stats = (await client.get("/stats")).json()["totals"]
    figures = [router[k] for k in ("cost_usd", "baseline_cost_usd", "saved_usd")]
    figures += [routed["estimated_cost_usd"], routed["estimated_baseline_cost_usd"]]
    figures += [v for k, v in stats.items() if k.endswith("_usd")]
    assert all(decimals(figure) <= 10 for figure in figures), figures
    assert repr(1 * 5e-7 + 3 * 2e-6) == "6.5000000000000004e-06"  # the noise, unrounded
    assert (router["cost_usd"], router["baseline_cost_usd"]) == (6.5e-06, 3.2e-05)


def test_the_shipped_litellm_style_example_loads_with_its_aliases() -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "litellm-style.yaml"
    settings = load_settings(example)
    assert [entry.name for entry in settings.tiers[Tier.HIGH]] == ["smart", "smart-backup"]
    assert settings.tiers[Tier.HIGH][0].model == "gpt-5.1" == settings.baseline
    assert settings.judge.model == "gpt-5-nano"
    assert settings.judge.litellm_params.env_references == {"api_key": "OPENAI_API_KEY"}


def test_one_litellm_model_at_two_deployments_is_refused_not_merged(
    make_settings: Callable[..., Settings],
) -> None:
    price = {"input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7}
    model_list = [
        {"model_name": name, "litellm_params": {"model": "openai/x", "api_base": base, **price}}
        for name, base in (("fast", "http://127.0.0.1:1"), ("fast-eu", "http://127.0.0.1:2"))
    ]
    tiers = {"low": ["fast", "fast-eu"], "medium": ["fast"], "high": ["fast"]}
    with pytest.raises(ValueError, match="'openai/x' is also at low\\[0\\] with other litellm_params"):
        make_settings(model_list=model_list, tiers=tiers, baseline="fast")


async def test_a_part_type_no_provider_takes_is_the_clients_400_before_any_model_is_tried(
    proxy: tuple[httpx.AsyncClient, Settings], respx_mock: respx.MockRouter
) -> None:
    client, _ = proxy
    upstream = fake_upstream(respx_mock, {})
    content = [{"type": "text", "text": "look"}, {"type": "hologram", "data": "x"}]
    body = {"model": "auto:low", "messages": [{"role": "user", "content": content}]}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "messages[0].content[1].type: 'hologram' is not a content part type" in message
    assert not upstream.called  # refused before any model was tried: no breaker counts it
