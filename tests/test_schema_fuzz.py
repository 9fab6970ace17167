"""schemathesis against the service's own OpenAPI schema: no 5xx, answers match the schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import respx
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from judge_router.config import Settings
from judge_router.service.factory import build_engine
from judge_router.serving.app import create_app

from fakes import fake_upstream, settings_data

pytestmark = pytest.mark.slow  # real processes or servers: run with -m slow, or all


@pytest.fixture
async def fuzzed_app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    # A body limit above anything generated: a 413 for an invalid body would count as accepting it.
    settings = Settings(
        **settings_data(
            tmp_path, judge={"model": "heuristic"}, server={"max_body_bytes": 5_000_000}
        )
    )
    engine = build_engine(settings)
    yield create_app(settings, engine)
    await engine.aclose()


@pytest.fixture
def app_schema(fuzzed_app: FastAPI, request: pytest.FixtureRequest) -> schemathesis.BaseSchema:
    # schemathesis' lazy loader renames the test through Node._nodeid, which pytest 9 no longer
    # has; give it one (it only affects how schemathesis labels its sub-tests).
    request.node._nodeid = request.node.nodeid
    return schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)


schema = schemathesis.pytest.from_fixture("app_schema")


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


def test_request_bodies_are_documented_although_the_endpoints_parse_them(
    fuzzed_app: FastAPI,
) -> None:
    document = fuzzed_app.openapi()
    components = document["components"]["schemas"]
    for path, model in (
        ("/route", "RouteRequest"),
        ("/complete", "ChatCompletionRequest"),
        ("/v1/chat/completions", "ChatCompletionRequest"),
        ("/v1/responses", "ResponsesRequest"),
        ("/v1/messages", "MessagesRequest"),
    ):
        body = document["paths"][path]["post"]["requestBody"]
        assert body["required"] is True
        ref = body["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{model}"
        assert components[model]["additionalProperties"] is False
    assert components["ChatCompletionRequest"]["required"] == ["messages"]
    assert "ChatMessage" in components and "Tier" in components  # the models they refer to
