"""No import cycle between the packages under `bot/` (each subpackage, and each top-level
module, is one node). Imports inside functions count too: a cycle hidden in a function body
is still a cycle. Imports under `if TYPE_CHECKING:` do not (they never run)."""

from __future__ import annotations

import ast
import gc
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

BOT = Path(__file__).resolve().parents[1] / "bot"


def node_of(module: str) -> str | None:
    """`bot.sop.authoring.loader` → `bot.sop`; `bot.daemon` → `bot.daemon`; outside bot → None."""
    parts = module.split(".")
    if parts[0] != "bot" or len(parts) == 1:
        return None
    return ".".join(parts[:2])


def module_name(path: Path) -> str:
    relative = path.relative_to(BOT.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def parse(path: Path) -> ast.Module:
    # CPython 3.11 < 3.11.8 (gh-106905): a garbage collection that runs Python code (an
    # asyncio task's finalizer left over by an earlier test) in the middle of `ast.parse`
    # raises "AST constructor recursion depth mismatch"
    gc.disable()
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    finally:
        gc.enable()


def imports(path: Path) -> Iterator[str]:
    tree = parse(path)
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                yield ".".join([*base, node.module] if node.module else base)
            elif node.module:
                yield node.module
                # `from bot import recorder` imports the module bot.recorder
                yield from (f"{node.module}.{alias.name}" for alias in node.names)


def is_module(name: str) -> bool:
    """`bot.sop` or `bot.daemon`, not a name such as `bot.__version__`."""
    path = BOT.parent / name.replace(".", "/")
    return path.is_dir() or path.with_suffix(".py").is_file()


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in BOT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        source = node_of(module_name(path))
        if source is None:
            continue
        targets = graph.setdefault(source, set())
        for imported in imports(path):
            target = node_of(imported)
            if target is not None and target != source and is_module(target):
                targets.add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_packages_under_bot() -> None:
    graph = package_graph()
    assert len(graph) > 10  # the walk found the packages
    found = cycles(graph)
    detail = [
        " ↔ ".join(group)
        + ": "
        + "; ".join(f"{a} → {b}" for a in group for b in sorted(graph[a]) if b in group)
        for group in found
    ]
    assert found == [], "\n".join(detail)


@pytest.mark.parametrize(
    ("command", "never"),
    [
        ("version", ("sqlalchemy", "jinja2", "bot.store.models", "bot.sop.authoring.loader")),
        ("check", ("sqlalchemy", "bot.store.models", "wechaty", "grpclib")),
    ],
)
def test_quick_commands_do_not_load_what_they_do_not_use(
    tmp_path: Path, command: str, never: tuple[str, ...]
) -> None:
    """What keeps `sopbot version` at ~0.2 s and `check` at ~0.5 s (bench/bench_cli.py has the
    figures): the database layer and the WeChat client stay unloaded."""
    for name in ("sop", "templates"):
        shutil.copytree(REPO / name, tmp_path / name)
    shutil.copy(REPO / "settings.toml", tmp_path / "settings.toml")
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['sopbot', {command!r}]\n"
        "try:\n    runpy.run_module('bot', run_name='__main__')\nexcept SystemExit as done:\n    code = done.code\n"
        f"loaded = sorted(m for m in {never!r} if m in sys.modules)\n"
        "print('LOADED', loaded)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPBOT_")}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "LOADED []" in result.stdout, result.stdout + result.stderr
    assert "OK:" in result.stdout or command == "version", result.stdout
