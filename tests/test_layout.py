"""Imports flow one way: nas -> search_spaces/scaling/storage/dashboards; dashboards -> storage;
scaling -> search_spaces."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"nas", "search_spaces", "scaling", "storage", "dashboards"}
ALLOWED = {
    "storage": set(),
    "search_spaces": set(),
    "scaling": {"search_spaces"},
    "dashboards": {"storage"},
    "nas": {"search_spaces", "scaling", "storage", "dashboards"},  # the CLI opens the views
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_one_way(package):
    for path in (ROOT / package).rglob("*.py"):
        wrong = (_imports(path) & OURS) - ALLOWED[package] - {package}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"
