"""Issue 25: the house rules, checked on the source rather than by reading: who may import whom, no
circle of files, dev tooling outside the product, modules of a readable size."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import Final

from tests.conftest import REPO

AGENT: Final = REPO / "agent"
MAX_LINES: Final = 425
"""The guide's "under ~400 lines", with the margin a docstring needs."""
MAY_IMPORT: Final = {
    # A room: the other rooms it may import (every room may import the bottom leaves below).
    "store": set(),
    "web": {"store"},
    "audio": set(),
    "asr": {"audio"},
    "tts": {"audio"},
    "llm": set(),
    "dialogue": {"llm"},
    "telephony": {"audio"},
    "actions": {"telephony", "tts", "dialogue", "store"},
    "session": {"actions", "telephony", "dialogue", "asr", "tts", "llm", "audio", "store"},
    "bench": {"devtools", "store", "audio", "admin"},
}
LEAVES: Final = {"errors", "files", "yamlnode", "passwords", "engine_hooks", "background"}
"""Bottom modules that import nothing of the project's rooms (or only each other)."""
DEVTOOLS_USERS: Final = {"devtools", "bench", "cli"}
"""Who may import agent.devtools: itself, the measuring tool, and the CLI's `dev`/`demo` commands."""


def _modules() -> dict[str, Path]:
    out = {}
    for path in AGENT.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports() -> dict[str, set[str]]:
    """Each module's imports of project modules, at any depth (lazy and TYPE_CHECKING ones too)."""
    modules = _modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            edges[name] |= {t for t in targets if t in modules and t != name}
    return edges


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _upward(edges: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, targets in edges.items():
        room = _room(module)
        if room not in MAY_IMPORT:
            continue
        allowed = MAY_IMPORT[room] | LEAVES | {room, ""}
        wrong += [f"{module} imports {t}" for t in sorted(targets) if _room(t) not in allowed]
    return wrong


def test_rooms_import_only_downwards() -> None:
    assert _upward(_imports()) == []


def test_the_leaves_import_no_room() -> None:
    wrong = [f"{m} imports {t}" for m, targets in _imports().items() if _room(m) in LEAVES
             for t in targets if _room(t) not in LEAVES | {""}]
    assert wrong == []


def test_the_product_never_imports_the_dev_tooling() -> None:
    wrong = [f"{m} imports {t}" for m, targets in _imports().items() if _room(m) not in DEVTOOLS_USERS
             for t in targets if _room(t) == "devtools"]
    assert wrong == []


def test_no_circle_of_files() -> None:
    edges = _imports()
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        order[v] = low[v] = len(order)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in _modules():
        if module not in order:
            visit(module)
    assert circles == []


def test_modules_stay_readable() -> None:
    long = {str(p.relative_to(REPO)): n for p in AGENT.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_checks_see_a_wrong_import() -> None:
    """The checker itself: an upward import added to the real graph is found, and only that one."""
    edges = _imports()
    edges["agent.store.db"] = edges["agent.store.db"] | {"agent.session.live"}
    edges["agent.dialogue.policy"] = edges["agent.dialogue.policy"] | {"agent.telephony.call"}
    assert sorted(_upward(edges)) == ["agent.dialogue.policy imports agent.telephony.call",
                                      "agent.store.db imports agent.session.live"]
