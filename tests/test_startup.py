"""Importing the package changes nothing: litellm is loaded, and its settings made, by a start-up
step (upstream.litellm_runtime.load_litellm) that the engine runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # a fresh interpreter imports litellm (~5 s)

CHECK = """
import json, os, sys
import judge_router.cli.main, judge_router.serving.app, judge_router.service.factory
before = {"litellm_imported": "litellm" in sys.modules,
          "cost_map_env": os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP")}
from judge_router.upstream.litellm_runtime import load_litellm
litellm = load_litellm()
after = {"cost_map_env": os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP"),
         "aiohttp": litellm.disable_aiohttp_transport is True,
         "quiet": litellm.suppress_debug_info is True,
         "bundled_map": len(litellm.model_cost) > 1000}
print(json.dumps({"before": before, "after": after}))
"""


def test_importing_changes_nothing_and_load_litellm_configures_it() -> None:
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["before"] == {"litellm_imported": False, "cost_map_env": None}
    assert result["after"] == {
        "cost_map_env": "True",
        "aiohttp": True,
        "quiet": True,
        "bundled_map": True,
    }


REDACTION = """
import logging
from judge_router.upstream.redact import Redactor, install_log_redaction
install_log_redaction(Redactor(["the-configured-secret-123xyz"]))  # before litellm is loaded
from judge_router.upstream.litellm_runtime import load_litellm
load_litellm()  # as build_engine does, later
logging.getLogger("LiteLLM").warning("provider said: bad key the-configured-secret-123xyz")
"""


def test_litellms_own_log_handlers_are_redacted_when_litellm_loads_later() -> None:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [sys.executable, "-c", REDACTION], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout + done.stderr
    assert "provider said: bad key" in printed
    assert "the-configured-secret-123xyz" not in printed


DEFERRED = """
import json, logging, sys
from judge_router.upstream import litellm_runtime
litellm_runtime.defer_loading()
handle = litellm_runtime.load_litellm()  # what build_engine's parts keep
before = "litellm" in sys.modules
configured = handle.disable_aiohttp_transport is True  # the first use imports and configures it
print(json.dumps({
    "before": before, "after": "litellm" in sys.modules, "configured": configured,
    "own_handlers": [len(logging.getLogger(n).handlers) for n in litellm_runtime.LITELLM_LOGGERS],
}))
"""


def test_deferred_loading_imports_at_first_use_and_litellm_logs_through_the_host() -> None:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [sys.executable, "-c", DEFERRED], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "before": False,
        "after": True,
        "configured": True,
        "own_handlers": [0, 0, 0],  # litellm's own handler is gone: one line per record, ours
    }
