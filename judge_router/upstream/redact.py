"""Scrubs configured credentials out of text before it reaches a log, a ledger row or an answer."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from judge_router.upstream.litellm_runtime import load_litellm

REDACTED = "[redacted]"
# Provider error messages echo keys in these shapes even when we never configured them.
_KEY_SHAPES = re.compile(
    r"\b(sk-[A-Za-z0-9_*-]{6,}|AIza[0-9A-Za-z_-]{20,}|Bearer\s+[A-Za-z0-9._~+/-]{8,})"
)


class Redactor:
    def __init__(self, secrets: Iterable[str]):
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return _KEY_SHAPES.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's formatted message in place."""

    def __init__(self, redactor: Redactor):
        super().__init__()
        self._redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks carry exception messages; keep the type and a scrubbed message only.
            exc = record.exc_info[1]
            record.msg = f"{record.msg} [{type(exc).__name__}: {self._redact(str(exc))}]"
            record.exc_info = None
            record.exc_text = None
        return True


# Loggers with handlers of their own (they do not only propagate to the root logger).
_OWN_HANDLERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "uvicorn", "uvicorn.error")


def install_log_redaction(redactor: Redactor) -> None:
    """Attach the filter to every handler that may print our or litellm's messages.

    litellm adds its handlers when it is loaded, so it is loaded first: a handler added later
    would print unredacted.
    """
    load_litellm()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    log_filter = RedactingFilter(redactor)
    for name in ("", *_OWN_HANDLERS):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(log_filter)
