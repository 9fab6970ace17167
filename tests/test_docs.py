"""The docs hold together: the configuration table says what the settings say, every relative link
resolves, and nothing points outside the repository."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from judge_router.config import LitellmParams, Settings, load_settings
from judge_router.types import Tier

ROOT = Path(__file__).resolve().parent.parent
CONFIGURATION = ROOT / "docs" / "configuration.md"
PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
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


def table_rows() -> list[tuple[str, str, str]]:
    text = CONFIGURATION.read_text(encoding="utf-8")
    table = text.split("| key | default | meaning |", 1)[1].split("\n\n", 1)[0]
    return [m.groups() for line in table.splitlines() if (m := ROW.match(line))]  # type: ignore[misc]


def test_every_setting_has_a_description() -> None:
    assert [key for key, _, meaning in documented_rows() if not meaning] == []


def test_the_configuration_table_matches_the_settings() -> None:
    expected = documented_rows()
    rendered = "\n".join(f"| `{k}` | {d} | {m} |" for k, d, m in expected)
    assert table_rows() == expected, f"docs/configuration.md's table should read:\n{rendered}"


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces to dashes."""
    found = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_every_relative_link_resolves() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists() or not resolved.is_relative_to(ROOT):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_the_docs_name_no_file_outside_the_repository() -> None:
    outside = ("ENGINEERING.md", "DESIGN.md", "../shared", "eval-figures.md")
    found = [
        f"{page.relative_to(ROOT)}: {name}"
        for page in PAGES
        for name in outside
        if name in page.read_text(encoding="utf-8")
    ]
    assert found == []


def test_the_readmes_realistic_config_is_a_valid_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = tmp_path / "config.yaml"
    config.write_text(block)
    monkeypatch.setenv("JR_KEY_TEAM_A", "a-service-key-of-enough-length")
    settings = load_settings(config)
    assert [entry.name for entry in settings.tiers[Tier.HIGH]] == ["smart", "gemini/gemini-2.5-pro"]
    assert settings.server.api_keys[0].id == "team-a"
