"""Secret scrubbing in text and in log records."""

from __future__ import annotations

import logging

from judge_router.upstream.redact import REDACTED, RedactingFilter, Redactor


def test_configured_and_key_shaped_secrets_are_scrubbed() -> None:
    redact = Redactor(["my-long-service-secret"])
    text = redact("auth failed for my-long-service-secret; provider said sk-proj-abcdef123456 bad")
    assert "my-long-service-secret" not in text and "sk-proj-abcdef123456" not in text
    assert text.count(REDACTED) == 2
    assert redact("Authorization: Bearer abc.def-123456") == f"Authorization: {REDACTED}"


def test_log_records_and_their_exceptions_are_scrubbed() -> None:
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "key %s leaked", ("my-long-service-secret",), None
    )
    try:
        raise ValueError("boom my-long-service-secret")
    except ValueError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    assert RedactingFilter(Redactor(["my-long-service-secret"])).filter(record)
    message = logging.Formatter().format(record)
    assert "my-long-service-secret" not in message and "ValueError" in message
