"""The eval's output files are checked by trying them, and the check leaves no file behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from judge_router.evaluation.outputs import same_file, unwritable_reason


def test_a_writable_new_file_passes_and_is_not_left_behind(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    assert unwritable_reason(target) is None
    assert not target.exists()


def test_an_existing_file_passes_and_keeps_its_content(tmp_path: Path) -> None:
    target = tmp_path / "rows.csv"
    target.write_text("kept\n", encoding="utf-8")
    assert unwritable_reason(target) is None
    assert target.read_text(encoding="utf-8") == "kept\n"


def test_paths_that_cannot_be_written_say_why(tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x", encoding="utf-8")
    assert unwritable_reason(tmp_path / "absent" / "r.json") == (
        f"directory {tmp_path / 'absent'} does not exist"
    )
    assert unwritable_reason(a_file / "r.json") == f"{a_file} is not a directory"
    assert unwritable_reason(tmp_path) == f"{tmp_path} is a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only directory")
def test_a_read_only_directory_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        reason = unwritable_reason(locked / "r.json")
    finally:
        locked.chmod(0o700)
    assert reason is not None and reason.startswith(f"cannot write {locked / 'r.json'}")


def test_same_file_sees_through_relative_parts(tmp_path: Path) -> None:
    assert same_file(tmp_path / "a" / ".." / "x.json", tmp_path / "x.json")
    assert not same_file(tmp_path / "x.json", tmp_path / "y.json")


def test_a_device_is_asked_not_opened() -> None:
    # Opening a named pipe would wait for a reader; a device is checked by permission instead.
    assert unwritable_reason(Path(os.devnull)) is None
