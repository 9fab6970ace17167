"""The body litellm would send an OpenAI-compatible model, for the requests it sends unchanged.

litellm rewrites some requests on their way to OpenAI's chat API: image parts given as a bare URL,
`developer` messages, cache-control marks, tool schemas with regex patterns or combinators, legacy
`functions`, and more with each release. A request with none of that goes out as the client wrote it
(minus what litellm always leaves out, below); `direct_body` builds exactly that body, and returns
None for any other request, which the direct transport then hands to litellm. Checking costs a few
microseconds; every shape allowed here is compared with what litellm sends in
tests/test_transport_parity.py.
"""

from __future__ import annotations

from typing import Any

# Parameters litellm passes through untouched to OpenAI's plain chat configuration.
PLAIN_PARAMS = frozenset(
    {
        "messages",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "n",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "seed",
        "user",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "service_tier",
        "store",
        "prompt_cache_key",
        "safety_identifier",
    }
)
_ROLES = frozenset({"system", "user", "assistant", "tool"})
_MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id"})
# Keys anywhere in a tool's schema that litellm rewrites (or may, depending on the endpoint).
_SCHEMA_REWRITTEN = frozenset(
    {"pattern", "cache_control", "prompt_cache_breakpoint", "oneOf", "anyOf", "allOf", "not"}
)
_TOP_LEVEL_REWRITTEN = frozenset({"enum", "const"})  # flattened at a schema's top level


def _plain_content(content: Any) -> bool:
    if isinstance(content, str):
        return True
    if not isinstance(content, list):
        return False
    return all(
        isinstance(part, dict)
        and part.get("type") == "text"
        and isinstance(part.get("text"), str)
        and len(part) == 2
        for part in content
    )


def _plain_message(message: Any) -> bool:
    if not isinstance(message, dict) or message.get("role") not in _ROLES:
        return False
    if not _MESSAGE_KEYS.issuperset(message):
        return False
    if "tool_calls" in message and message["role"] != "assistant":
        return False
    content = message.get("content")
    if content is None:  # litellm drops an assistant's null content beside its tool calls
        return message["role"] == "assistant" and bool(message.get("tool_calls"))
    return _plain_content(content)


def _schema_is_plain(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not _SCHEMA_REWRITTEN.isdisjoint(item):
                return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _plain_tools(tools: Any) -> bool:
    if not isinstance(tools, list):
        return False
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") != "function" or len(tool) != 2:
            return False
        function = tool.get("function")
        if not isinstance(function, dict) or not _schema_is_plain(function):
            return False
        parameters = function.get("parameters")
        if isinstance(parameters, dict) and not _TOP_LEVEL_REWRITTEN.isdisjoint(parameters):
            return False
    return True


def direct_body(model: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """What litellm would send `model` for `params`, or None when litellm would rewrite them."""
    if not PLAIN_PARAMS.issuperset(params):
        return None
    messages = params.get("messages")
    if not isinstance(messages, list) or not all(_plain_message(m) for m in messages):
        return None
    tools = params.get("tools")
    if tools is not None and not _plain_tools(tools):
        return None
    body: dict[str, Any] = {"model": model}
    for key, value in params.items():
        if value is not None:  # litellm leaves out what is unset
            body[key] = value
    body["messages"] = [_as_sent(m) for m in messages]
    if not body.get("tools"):
        body.pop("tools", None)
        body.pop("tool_choice", None)  # litellm drops a tool_choice with no tools to choose
    return body


def _as_sent(message: dict[str, Any]) -> dict[str, Any]:
    if "content" in message and message["content"] is None:
        return {key: value for key, value in message.items() if key != "content"}
    return message
