"""The README's configuration table says what the settings' own descriptions and defaults say."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from judge_router.config import LitellmParams, Settings

README = Path(__file__).resolve().parent.parent / "README.md"
ROW = re.compile(r"^\| `([a-z_.]+)` \| (.*?) \| (.*) \|$")


def shown(value: Any) -> str:
    """A default as YAML would spell it."""
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_none=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    return str(value)


def default_of(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "shown_default" in extra:
        return str(extra["shown_default"])
    value = field.get_default(call_default_factory=True)
    return f"`{shown(value)}`"


def documented_rows() -> list[tuple[str, str, str]]:
    """(key, default, meaning) for every setting, in the order the settings declare them."""
    rows = []
    for name, field in Settings.model_fields.items():
        section = field.annotation
        is_section = isinstance(section, type) and issubclass(section, BaseModel)
        if is_section and not issubclass(section, LitellmParams):  # type: ignore[arg-type]
            for key, inner in section.model_fields.items():
                rows.append((f"{name}.{key}", default_of(inner), inner.description or ""))
        else:
            rows.append((name, default_of(field), field.description or ""))
    return rows


def readme_rows() -> list[tuple[str, str, str]]:
    text = README.read_text(encoding="utf-8")
    table = text.split("| key | default | meaning |", 1)[1].split("\n\n", 1)[0]
    return [m.groups() for line in table.splitlines() if (m := ROW.match(line))]  # type: ignore[misc]


def test_every_setting_has_a_description() -> None:
    assert [key for key, _, meaning in documented_rows() if not meaning] == []


def test_the_readme_table_matches_the_settings() -> None:
    expected = documented_rows()
    rendered = "\n".join(f"| `{k}` | {d} | {m} |" for k, d, m in expected)
    assert readme_rows() == expected, f"README's table should read:\n{rendered}"
