"""One way to say what pydantic refused: "where: what", for config files, bodies and verdicts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def describe_errors(
    errors: Iterable[Any], root: str = "(top level)", skip: Sequence[str] = ()
) -> list[str]:
    """One "dotted.location: message" per error; `skip` drops location parts such as "body".

    An error with no location (after skipping) is named `root`, or is its message alone if `root`
    is empty.
    """
    described = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in skip) or root
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        described.append(f"{where}: {message}" if where else message)
    return described
