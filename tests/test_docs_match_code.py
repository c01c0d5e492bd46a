"""The maintainer docs name real things: every file, module and attribute that
docs/ARCHITECTURE.md and docs/CONTRACTS.md write in backticks (and every module the layer
drawing lists) exists in the repository, so a rename that forgets the docs fails here.

Names are checked from the source text (``ast``), not by importing: importing
``gato_core.training`` would pull TensorFlow into the test process for a doc check.
Only what can be checked mechanically is checked: a name with a placeholder (``<name>``),
an expression (``kind == "run_info"``) or a local variable (``store.location``) is prose.
"""
from __future__ import annotations

import ast
import functools
import itertools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("docs/ARCHITECTURE.md", "docs/CONTRACTS.md")
PACKAGES = ("gato_core", "gato_dash")
#: Short module paths in the docs (``figures/colours.py``, ``runtime/jobs.run_training``)
#: are written relative to one of these folders.
BASES = ("", "gato_dash/", "gato_core/")
FILE_SUFFIXES = (".py", ".md", ".txt", ".ini", ".css", ".js", ".json")
IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
DOTTED = re.compile(rf"{IDENTIFIER}(?:\.{IDENTIFIER})+")


# ----- what the repository holds (from the source text) -----------------------------------
@functools.cache
def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the two packages."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


@functools.cache
def module_tree(dotted: str) -> ast.Module:
    return ast.parse(module_files()[dotted].read_text())


def names_defined_in(body: list[ast.stmt], with_self_attributes: bool = False) -> dict:
    """Top-level names of a module or class body -> their node (None for plain names):
    functions, classes, assignments, imports; for a class also ``self.x = ...``."""
    names: dict = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Name):
                        names.setdefault(leaf.id, None)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.setdefault((alias.asname or alias.name).split(".")[0], None)
        elif isinstance(node, (ast.If, ast.Try)):  # guarded definitions count too
            inner = node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", [])
            for handler in getattr(node, "handlers", []):
                inner = inner + handler.body
            names = {**names_defined_in(inner), **names}
    if with_self_attributes:
        for node in ast.walk(ast.Module(body=body, type_ignores=[])):
            if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                    and isinstance(node.value, ast.Name) and node.value.id == "self"):
                names.setdefault(node.attr, None)
    return names


@functools.cache
def classes() -> dict[str, list[str]]:
    """Class name -> the modules that define it at top level."""
    found: dict[str, list[str]] = {}
    for dotted in module_files():
        for name, node in names_defined_in(module_tree(dotted).body).items():
            if isinstance(node, ast.ClassDef):
                found.setdefault(name, []).append(dotted)
    return found


def missing_attributes(dotted_module: str, chain: list[str]) -> str | None:
    """Why ``dotted_module.chain[0].chain[1]...`` does not exist, or None if it does.
    Only classes are looked into: an attribute of a function's result is prose."""
    scope = names_defined_in(module_tree(dotted_module).body)
    where = dotted_module
    for name in chain:
        if name not in scope:
            submodule = f"{where}.{name}"
            if submodule in module_files():  # a package's module
                scope, where = names_defined_in(module_tree(submodule).body), submodule
                continue
            return f"{where} has no {name!r}"
        node = scope[name]
        if not isinstance(node, ast.ClassDef):
            return None
        scope, where = names_defined_in(node.body, with_self_attributes=True), f"{where}.{name}"
    return None


# ----- what the docs name ----------------------------------------------------------------
def backticked(text: str) -> list[str]:
    """Inline code spans (fenced blocks are read separately)."""
    without_fences = re.sub(r"```.*?```", "", text, flags=re.S)
    # a span may run over a line break, as Markdown allows
    return [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", without_fences)]


def drawing(text: str) -> str:
    fenced = re.findall(r"```\n(.*?)```", text, flags=re.S)
    return fenced[0] if fenced else ""


def expand_braces(word: str) -> list[str]:
    """``gato_dash/{app,store}.py`` -> both paths (the shell's brace expansion)."""
    parts = re.split(r"\{([^}]*)\}", word)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(combo) for combo in itertools.product(*choices)]


def check_path(word: str) -> str | None:
    """A file or folder path, optionally followed by ``.attribute`` or ``::test``."""
    word, _, test_name = word.partition("::")
    word = word.rstrip(":")
    attribute = []
    stem, dot, last = word.rpartition("/")[2].partition(".")
    if dot and not any(word.endswith(suffix) for suffix in FILE_SUFFIXES):
        # runtime/jobs.run_training: the module's file, then its attribute
        word, attribute = word[: -len(dot + last)] + ".py", last.split(".")
    for base in BASES:
        path = ROOT / base / word
        if path.exists():
            break
    else:
        return f"{word} is not a file or folder of the repository"
    if test_name and not re.search(rf"^def {re.escape(test_name)}\(", path.read_text(), re.M):
        return f"{word} has no test {test_name}"
    if attribute:
        dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        return missing_attributes(dotted, attribute)
    return None


def check_dotted(name: str) -> str | None:
    """A dotted name: a module of ours, a class of ours, or an attribute of ``dash``."""
    parts = name.split(".")
    if parts[0] in PACKAGES:
        for cut in range(len(parts), 0, -1):
            module = ".".join(parts[:cut])
            if module in module_files():
                return missing_attributes(module, parts[cut:]) if cut < len(parts) else None
        return f"no module {name}"
    if parts[0] == "dash":
        import dash

        return None if _has_attributes(dash, parts[1:]) else f"dash has no {'.'.join(parts[1:])}"
    # a short module name as the docs write it (live.poll, training.COMPILED_FROM_EPOCH)
    modules = [m for m in module_files() if m.rsplit(".", 1)[-1] == parts[0]]
    if len(modules) == 1:
        return missing_attributes(modules[0], parts[1:])
    if len(classes().get(parts[0], [])) == 1:
        return missing_attributes(classes()[parts[0]][0], parts)
    return None  # a variable in prose (store.location, go.Figure)


def _has_attributes(obj, chain) -> bool:
    for name in chain:
        if not hasattr(obj, name):
            return False
        obj = getattr(obj, name)
    return True


def references_in_span(span: str) -> list[tuple[str, str]]:
    """(kind, word) pairs to check in one backticked span."""
    if "<" in span or "==" in span:
        return []  # a placeholder or an expression, not a name
    found = []
    for word in span.split():
        word = word.strip(",;()")
        word = re.sub(r"\(.*$", "", word)  # a call's arguments
        word = re.sub(r"\[.*$", "", word)  # an index
        if not word or word.startswith(("-", '"', "'", "{")) and "/" not in word:
            continue
        if "/" in word or word.endswith(FILE_SUFFIXES):
            if not word.startswith(("http", "K")):  # URLs; K<n>/ folders inside a zip
                found.extend(("path", w) for w in expand_braces(word))
        elif DOTTED.fullmatch(word):
            found.append(("dotted", word))
        elif re.fullmatch(r"[A-Z][a-z]+[A-Z][A-Za-z]*", word):  # a CamelCase class name
            found.append(("class", word))
    return found


def drawing_references(text: str) -> list[str]:
    """Module files the layer drawing lists: each layer's line names folders (``x/``) and
    files (``x.py``), and bare module names inside the folder written before a colon
    (``gato_dash/runtime/: __init__, jobs.py``), else inside the layer's package."""
    layers: list[list[str]] = []
    for line in drawing(text).splitlines():
        if line[:1].strip():  # a layer's first line starts with its name
            layers.append([line.split("  ", 1)[-1].strip()])
        elif layers:
            layers[-1].append(line.strip())
    paths = []
    for layer in layers:
        body = re.sub(r"\([^)]*\)", "", " ".join(layer))
        package = body.split("/", 1)[0].strip()
        base = f"{package}/"
        for item in (i.strip() for i in body.split(",")):
            if ":" in item:  # "gato_dash/runtime/: __init__" sets the folder
                folder, _, item = item.partition(":")
                base = folder.strip() if folder.strip().endswith("/") else base
                item = item.strip()
            if not item:
                continue
            if "/" in item and (item.endswith("/") or item.endswith(".py")):
                paths.append(item)
            elif item.endswith(".py"):
                paths.append(base + item)
            else:  # "model/objective/training", "datasets + readers + mapping"
                for name in re.split(r"[/+\s]+", item):
                    if name:
                        paths.append(f"{base}{name}.py")
    return paths


def problems_in(doc: str) -> list[str]:
    text = (ROOT / doc).read_text()
    problems = []
    for span in backticked(text):
        for kind, word in references_in_span(span):
            if kind == "path":
                why = check_path(word)
            elif kind == "dotted":
                why = check_dotted(word)
            else:
                why = None if word in classes() or _dash_has(word) else f"no class {word}"
            if why:
                problems.append(f"`{span}`: {why}")
    for path in drawing_references(text):
        why = check_path(path)
        if why:
            problems.append(f"layer drawing: {why}")
    return problems


def _dash_has(name: str) -> bool:
    import dash

    return hasattr(dash, name)


# ----- the checks ------------------------------------------------------------------------
@pytest.mark.parametrize("doc", DOCS)
def test_every_name_the_doc_gives_exists(doc):
    problems = problems_in(doc)
    assert not problems, f"{doc} names things the code does not have:\n" + "\n".join(problems)


def test_the_checker_reads_the_docs_it_claims_to():
    """The checks above must not pass by finding nothing: the docs' own key names are read."""
    architecture = (ROOT / "docs/ARCHITECTURE.md").read_text()
    contracts = (ROOT / "docs/CONTRACTS.md").read_text()
    drawn = drawing_references(architecture)
    assert "gato_dash/results_section.py" in drawn and "gato_core/bundle.py" in drawn
    assert "gato_dash/runtime/__init__.py" in drawn and "gato_dash/pages/" in drawn
    spans = [w for s in backticked(architecture) for _, w in references_in_span(s)]
    assert "runtime/jobs.run_training" in spans and "figures/catalogue.py" in spans
    contract_words = [w for s in backticked(contracts) for _, w in references_in_span(s)]
    assert "gato_core.bundle.export_files" in contract_words
    assert "gato_core.config.RunConfig" in contract_words


@pytest.mark.parametrize("word, wrong", [
    ("runtime/store.py", True), ("gato_dash/runtime/run_store.py", False),
    ("runtime/jobs.run_training", False), ("runtime/jobs.no_such_function", True),
    ("tests/test_figure_cache.py::test_no_such_test", True), ("gato_dash/{app,nope}.py", True),
])
def test_paths_that_do_not_exist_are_found(word, wrong):
    assert any(check_path(w) for w in expand_braces(word)) is wrong


@pytest.mark.parametrize("name, wrong", [
    ("gato_dash.app.store", True), ("gato_dash.runtime.store", False),
    ("gato_core.config.RunConfig.defaults", False), ("gato_core.config.RunConfig.nope", True),
    ("RunConfig.from_dict", False), ("TrainingResult.no_field", True),
    ("gato_core.no_module", True), ("dash.page_container", False), ("dash.no_such", True),
])
def test_dotted_names_that_do_not_exist_are_found(name, wrong):
    assert (check_dotted(name) is not None) is wrong
