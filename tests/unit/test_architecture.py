"""Architecture rules that code review alone would let slip (CONVENTIONS rules 1, 2 and 9)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
# Besides the standard library, domain code may import the event contract (and pydantic, its models),
# its own domain package, and the kit's pure dead-letter header vocabulary. Nothing that does I/O.
PURE = ("rastro_events", "rastro_kit.dead_letters", "pydantic")


def imported_names(path: Path) -> set[str]:
    """Every imported module, and every ``from module import name`` as ``module.name``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def domain_files() -> list[Path]:
    return sorted(ROOT.glob("services/*/src/rastro_*/domain/**/*.py"))


def test_there_is_domain_code_to_check() -> None:
    assert {p.parts[p.parts.index("domain") - 1] for p in domain_files()} >= {
        "rastro_normalization",
        "rastro_eta",
        "rastro_notification",
    }


@pytest.mark.parametrize("path", domain_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_code_imports_only_pure_code(path: Path) -> None:
    own = f"{path.parts[path.parts.index('domain') - 1]}.domain"
    allowed = (*PURE, own)
    outside = {
        name
        for name in imported_names(path)
        if name.split(".")[0] not in sys.stdlib_module_names
        and not any(name == a or name.startswith(a + ".") for a in allowed)
    }
    assert not outside, f"{path.name} imports {sorted(outside)}: domain code must stay pure"


@pytest.mark.parametrize("path", domain_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_modules_stay_small(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) < 300


@pytest.mark.parametrize("service", sorted(p.name for p in (ROOT / "services").iterdir() if p.is_dir()))
def test_every_service_is_a_runnable_module_with_a_composition_root(service: str) -> None:
    pkg = ROOT / "services" / service / "src" / f"rastro_{service}"
    assert (pkg / "__main__.py").exists() and (pkg / "app.py").exists()
    assert "def build_app(" in (pkg / "app.py").read_text(encoding="utf-8")
    assert list((pkg / "migrations").glob("0001_*.sql")), "each service owns its schema through migrations"
