"""schemathesis against the service's own OpenAPI schema: no 5xx, answers match the schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import respx
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from judge_router.config import Settings
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app

from fakes import fake_upstream, settings_data

_tmp = Path(__import__("tempfile").mkdtemp(prefix="jr-fuzz-"))
# A body limit above anything generated: a 413 for an invalid body would count as accepting it.
_settings = Settings(
    **settings_data(_tmp, judge={"model": "heuristic"}, server={"max_body_bytes": 5_000_000})
)
_engine = build_engine(_settings)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_settings, _engine))


@pytest.fixture(autouse=True)
def upstream() -> Iterator[None]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        fake_upstream(mock, {})
        yield


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples every run: CI stays deterministic
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_answers_match_the_schema(case: schemathesis.Case) -> None:
    # Every check but "schema-valid data is accepted": some rules are semantic and live outside
    # the schema (a message needs text to judge; `since` must be an ISO date), so a 400 there is
    # the documented answer, not a violation.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


def test_request_bodies_are_documented_although_the_endpoints_parse_them() -> None:
    document = create_app(_settings, _engine).openapi()
    components = document["components"]["schemas"]
    for path, model in (
        ("/route", "RouteRequest"),
        ("/complete", "ChatCompletionRequest"),
        ("/v1/chat/completions", "ChatCompletionRequest"),
    ):
        body = document["paths"][path]["post"]["requestBody"]
        assert body["required"] is True
        ref = body["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{model}"
        assert components[model]["additionalProperties"] is False
    assert components["ChatCompletionRequest"]["required"] == ["messages"]
    assert "ChatMessage" in components and "Tier" in components  # the models they refer to
