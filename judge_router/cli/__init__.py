"""The command line: `judge-router serve | route | demo | eval | report | simulate`."""

from judge_router.cli.main import main

__all__ = ["main"]
