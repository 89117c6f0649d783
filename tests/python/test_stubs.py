"""The .pyi stubs of labyrinth._core name exactly what the module has."""

from __future__ import annotations

import ast
from pathlib import Path

import labyrinth
from labyrinth import _core


def _stub_names() -> tuple[set[str], dict[str, set[str]]]:
    src = Path(labyrinth.__file__).with_name("_core.pyi").read_text()
    tree = ast.parse(src)
    top: set[str] = set()
    members: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            top.add(node.name)
            members[node.name] = {
                n.name if isinstance(n, ast.FunctionDef) else n.target.id  # type: ignore[union-attr]
                for n in node.body
                if isinstance(n, ast.FunctionDef) or (isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name))
            }
        elif isinstance(node, ast.FunctionDef):
            top.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            top.add(node.target.id)
    return top, members


def test_stubs_match_module() -> None:
    top, members = _stub_names()
    actual = {n for n in dir(_core) if not n.startswith("__") or n == "__version__"}
    actual.discard("__version__")
    top.discard("__version__")
    assert top == actual, (sorted(top - actual), sorted(actual - top))
    for cls, names in members.items():
        have = {n for n in vars(getattr(_core, cls)) if not n.startswith(("__", "_pybind11"))}
        dunder = {n for n in names if n.startswith("__")} - {"__buffer__"}
        assert {n for n in names if not n.startswith("__")} == have, (cls, sorted(names ^ have))
        for d in dunder:
            assert hasattr(getattr(_core, cls), d), (cls, d)


def test_package_is_typed() -> None:
    assert Path(labyrinth.__file__).with_name("py.typed").exists()
