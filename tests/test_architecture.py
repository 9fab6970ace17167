"""The package's shape: imports run one way between folders, frameworks stay at their edges, and
no module grows past ~350 lines."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "judge_router"

# Higher may import lower, never the reverse; equal ranks of different folders may not import each
# other. Rank 0 is the package's top level: config, its sections, the shared types.
RANKS = {
    "cli": 8,
    "serving": 7,
    "evaluation": 6,
    "service": 5,
    "quality": 4,
    "routing": 3,
    "upstream": 2,
    "accounting": 1,
    "testing": 1,
    "": 0,
}
# Third-party frameworks that belong to their edges (DESIGN: framework-free core, thin edges). The
# fake provider is an HTTP server of its own, so it may use Starlette's ASGI types.
OWNED = {
    "fastapi": {"serving"},
    "starlette": {"serving", "testing"},
    "click": {"cli"},
    "litellm": {"upstream"},
}
MAX_LINES = 350
LONGER_ALLOWED = {"testing/fake_upstream.py"}  # one self-contained server, shared by tests


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside functions, absolute or relative."""
    found = set()
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else None
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = (package or module_name(path)).split(".")
                base = ".".join([*anchor[: len(anchor) - node.level + 1], *filter(None, [base])])
            found.add(base)
            if base.startswith("judge_router"):  # `from judge_router.x import y` may name a module
                found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def folder(module: str) -> str:
    """The folder of judge_router.FOLDER[.module]; "" for the top-level modules (config, types)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANKS else ""


def violations(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """'importer imports imported' for each import against the direction, or of a framework
    outside the folder that owns it."""
    wrong = []
    for importer, imported in sorted(graph.items()):
        source = folder(importer)
        for target in sorted(set(imported)):
            top = target.split(".")[0]
            if top in OWNED and source not in OWNED[top]:
                owners = " and ".join(f"{name}/" for name in sorted(OWNED[top]))
                wrong.append(f"{importer} imports {target} (only {owners} may)")
            if top != "judge_router" or target == "judge_router":
                continue
            destination = folder(target)
            if destination != source and RANKS[destination] >= RANKS[source]:
                wrong.append(f"{importer} imports {target} ({source or 'top'}/ is not above it)")
    return wrong


def package_graph() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        imported = imports_of(path)
        # "from judge_router.x import name" also lists judge_router.x.name; keep real modules.
        graph[module_name(path)] = {
            i for i in imported if not i.startswith("judge_router") or _is_module(i)
        }
    return graph


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative).is_dir()


def test_every_folder_is_ranked() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(RANKS) - {""}


def test_imports_run_one_way_and_frameworks_stay_at_their_edges() -> None:
    assert violations(package_graph()) == []


def test_a_planted_violation_is_named() -> None:
    graph = package_graph()
    graph["judge_router.routing.pipeline"] = {
        *graph["judge_router.routing.pipeline"],
        "judge_router.serving.app",
    }
    graph["judge_router.accounting.stats"] = {"judge_router.testing.fake_upstream", "fastapi"}
    assert violations(graph) == [
        "judge_router.accounting.stats imports fastapi (only serving/ may)",
        "judge_router.accounting.stats imports judge_router.testing.fake_upstream "
        "(accounting/ is not above it)",
        "judge_router.routing.pipeline imports judge_router.serving.app (routing/ is not above it)",
    ]


def test_relative_imports_are_resolved() -> None:
    here = PACKAGE / "routing" / "pipeline.py"
    assert "judge_router.routing.reading" in imports_of(here)


def test_no_module_is_over_the_size_limit() -> None:
    too_long = {
        str(path.relative_to(PACKAGE)): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        and str(path.relative_to(PACKAGE)) not in LONGER_ALLOWED
    }
    assert too_long == {}
