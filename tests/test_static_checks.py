"""Static checks that ARCHITECTURE promises before a merge, run with every test run: no
unused import and no undefined name anywhere in the code, tests and benchmarks
(pyflakes, requirements-dev.txt)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["app.py", "gato_core", "gato_dash", "tests", "bench", "tools"]


def pyflakes(*paths) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pyflakes", *map(str, paths)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_pyflakes_finds_nothing_in_the_tree():
    found = pyflakes(*(p for p in CHECKED if (ROOT / p).exists()))
    assert found.returncode == 0 and not found.stdout.strip(), found.stdout + found.stderr


def test_pyflakes_would_report_an_unused_import(tmp_path):
    """The check above can fail: the same call on a module with an unused import."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n")
    found = pyflakes(bad)
    assert found.returncode != 0 and "'os' imported but unused" in found.stdout
