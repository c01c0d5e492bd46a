"""The figure builders are pure (docs/ARCHITECTURE.md, "A figure"): gato_dash/figures/
draws what it is given and reads nothing. Nothing there imports the runtime layer (the
run store, run_facts and its dataset manifests), directly or through another module, and
nothing there opens a file."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "gato_dash" / "figures"
MODULES = sorted(FIGURES.glob("*.py"))

#: Imports that would let a figure module read the store, a manifest or any file.
FORBIDDEN_PREFIXES = ("gato_dash.runtime", "gato_core.datasets", "pathlib", "os", "shutil",
                      "glob", "io", "sqlite3", "gzip")
#: Calls that read a file: open(...), path.read_text(), path.read_bytes(), path.open().
FILE_CALLS = {"open", "read_text", "read_bytes"}


def imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, as absolute names (relative imports resolved)."""
    package = "gato_dash.figures"
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # "from .. import runtime" imports the module gato_dash.runtime
            names += [module] + [f"{module}.{alias.name}" for alias in node.names]
    return names


def file_calls(path: Path) -> list[str]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else \
                func.attr if isinstance(func, ast.Attribute) else None
            if name in FILE_CALLS:
                calls.append(f"{name}() at line {node.lineno}")
    return calls


def forbidden(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in FORBIDDEN_PREFIXES)


def test_the_walk_sees_relative_imports():
    """The check below would pass vacuously if relative imports were not resolved."""
    imports = imported_modules(FIGURES / "catalogue.py")
    assert "gato_dash.figures.spectra" in imports
    assert forbidden("gato_dash.runtime.run_facts") and forbidden("os.path")
    assert not forbidden("gato_dash.runtime_extra") and not forbidden("osmium")


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_a_figure_module_imports_no_runtime_and_reads_no_file(path):
    assert [name for name in imported_modules(path) if forbidden(name)] == []
    assert file_calls(path) == []


def test_importing_every_figure_module_loads_no_runtime_module():
    """Also not through another module (e.g. figures/compare needs the compared runs'
    type, and comparison/loading reads the store)."""
    modules = [f"gato_dash.figures.{p.stem}" for p in MODULES if p.stem != "__init__"]
    script = ("import importlib, sys\n"
              f"for name in {modules!r}:\n"
              "    importlib.import_module(name)\n"
              "print(sorted(m for m in sys.modules if m.startswith('gato_dash.runtime')))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
