"""Check the files an eval run will write before it judges anything: a run can cost money, and a
report that cannot be saved at the end of it is that money lost."""

from __future__ import annotations

import os
from pathlib import Path


def unwritable_reason(path: Path) -> str | None:
    """Why `path` cannot be written, or None when it can.

    Trying is the only reliable test (permissions, ACLs, read-only mounts, a root user), so a regular
    file is opened for appending, which leaves an existing one as it was, and a file that this check
    created is removed again: a run that fails later leaves no empty report behind.
    """
    parent = path.parent
    if path.is_dir():
        return f"{path} is a directory"
    if not parent.exists():
        return f"directory {parent} does not exist"
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if path.exists() and not path.is_file():
        # A device or a named pipe: opening a pipe would wait for a reader, so only ask.
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    existed = path.exists()
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    if not existed:
        path.unlink(missing_ok=True)
    return None


def same_file(first: Path, second: Path) -> bool:
    """Whether two paths name one file (through links and relative parts), existing or not."""
    try:
        return first.resolve() == second.resolve()
    except OSError:  # a loop of symbolic links: not a file either path could write anyway
        return False
