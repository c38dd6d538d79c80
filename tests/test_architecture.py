"""Imports point inward: gateway → ingest, policies, catalog; ingest → catalog; policies →
catalog; catalog → none of ours. An arrow the other way fails here, naming the import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("catalog", "ingest", "policies", "gateway")
ALLOWED: dict[str, frozenset[str]] = {
    "catalog": frozenset(),
    "ingest": frozenset({"catalog"}),
    "policies": frozenset({"catalog"}),
    "gateway": frozenset({"ingest", "policies", "catalog"}),
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(our top-level package, line) for every absolute import in ``path``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {(n.split(".")[0], node.lineno) for n in names if n.split(".")[0] in PACKAGES}
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_inward(package: str) -> None:
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {target}"
        for path in sorted((REPO / package).rglob("*.py"))
        for target, line in sorted(imported_packages(path))
        if target != package and target not in ALLOWED[package]
    ]
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package])}: " + "; ".join(wrong)


def test_the_check_sees_a_wrong_arrow(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import json\nfrom gateway.app import create_app\nimport policies.model\n")
    assert imported_packages(module) == {("gateway", 2), ("policies", 3)}


def test_the_gateway_process_does_not_import_great_expectations() -> None:
    """Great Expectations (and scipy, altair, ... behind it) is the ingest worker's: importing
    it cost every gateway start ~3 s of CPU, and each test that starts one paid it too."""
    probe = "import sys, gateway.server; print(sorted({m.split('.')[0] for m in sys.modules}))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(ast.literal_eval(done.stdout.strip()))
    assert "gateway" in loaded
    assert not loaded & {"great_expectations", "scipy", "altair"}
