"""`serve`'s logging: one dictConfig for the parent and every worker (uvicorn applies it in each).

Text or JSON lines on stderr, secrets scrubbed by a filter on the one handler, litellm's per-call
INFO chatter hidden below DEBUG, and the access log (`judge_router.access`) on or off.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from judge_router.upstream.litellm_runtime import LITELLM_LOGGERS
from judge_router.upstream.redact import RedactingFilter, Redactor

ACCESS_LOGGER = "judge_router.access"  # serving/access_log.py logs here
LEVELS = ("critical", "error", "warning", "info", "debug")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and an access line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "access", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{seconds}.{int(record.msecs):03d}Z"


def redacting_filter(secrets: list[str]) -> logging.Filter:
    """dictConfig's factory for the filter (its arguments must survive pickling to workers)."""
    return RedactingFilter(Redactor(secrets))


def logging_config(
    level: str, log_format: str, access_log: bool, secrets: list[str]
) -> dict[str, Any]:
    """The dictConfig for `serve` (also handed to uvicorn, which applies it in each worker)."""
    level = level.upper()
    quiet = "DEBUG" if level == "DEBUG" else max(level, "WARNING", key=logging.getLevelName)
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    loggers: dict[str, Any] = {
        name: {"level": quiet, "handlers": [], "propagate": True} for name in LITELLM_LOGGERS
    }
    # uvicorn's own loggers print through the root handler, in the same format.
    for name in ("uvicorn", "uvicorn.error"):
        loggers[name] = {"level": level, "handlers": [], "propagate": True}
    loggers["uvicorn.access"] = {"handlers": [], "propagate": False}  # ours replaces it
    loggers[ACCESS_LOGGER] = {"level": level if access_log else "WARNING", "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": f"{__name__}.redacting_filter", "secrets": secrets}},
        "formatters": {"main": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "main",
                "filters": ["redact"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": loggers,
    }
