"""A run's results figures, built once and kept: in memory and on disk beside the run.

A stored result never changes, and neither do the epochs of its K, so the figures made
from them (the 2-D animation alone takes ~0.2-0.4 s to build) are built once per run and
K, ever, instead of once per server process:

- the training job (and the importer) builds a K's figures right after that K has
  trained, before it stores the result (``prebuild``), so the page that learns of the
  result finds them ready;
- otherwise (runs stored before this existed, or after an upgrade) the first server that
  needs them builds them and writes them down.

On disk they live in the run's folder (``RunStore.run_dir``, removed with the run) as
gzipped plotly JSON, ~0.15 MB per bump-hunt run with two K. File names carry
``FIGURES_VERSION``, a hash of the code that draws them and of the plotly version, so a
changed figure is rebuilt rather than an old one shown, and the old file is removed. Files
are written whole and renamed into place, so a reader never sees half a file, and the job
and the server may write the same file at the same time.

Figures are plain dicts (what ``fig.to_plotly_json()`` gives, after a round trip through
plotly's JSON, so arrays are plotly's typed-array dicts). Callers must not mutate them.
No Dash import: the training job uses this module.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import plotly
import plotly.io as pio

from .figures import catalogue
from .runtime import run_facts

if TYPE_CHECKING:
    from .runtime.run_store import RunStore

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent
FIGURES_DIR = "figures"
#: gzip level for the files: ~1 MB of JSON per K becomes ~0.1 MB in ~10 ms.
GZIP_LEVEL = 5
#: Most figure files kept beside one run; past it the oldest are removed. A run has at most
#: 8 K (config.py), each with three files (K figures, linear and log axes), plus one file
#: of run-level figures per result count: 32. Only keys of what the store holds are
#: written at all (``FigureCache.get``); this bound also clears files of older versions.
MAX_FILES_PER_RUN = 48


def _code_version() -> str:
    """Hash of everything that shapes a cached figure (this module, the figure builders,
    plotly): a cache file made by other code has another name and is never read."""
    digest = hashlib.sha1(plotly.__version__.encode())
    for path in sorted([Path(__file__), *(PACKAGE / "figures").glob("*.py")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


FIGURES_VERSION = _code_version()


# --------------------------------------------------------------------------------------
# What is cached: per K (first tab), per K and log switch, per run and result count
# --------------------------------------------------------------------------------------

def k_key(run_id: str, n_cats: int) -> tuple:
    return ("k", run_id, int(n_cats))


def log_key(run_id: str, n_cats: int, log_scale: bool) -> tuple:
    return ("log", run_id, int(n_cats), bool(log_scale))


def run_key(run_id: str, n_results: int) -> tuple:
    """The result count is in the key: a running run gains results, and the run-level
    figures made from n results never change."""
    return ("run", run_id, int(n_results))


def build_figures(key: tuple, run: dict, results: Sequence[dict],
                  epochs: Sequence[dict] = ()) -> dict:
    """The figures that ``key`` names, built from the catalogue, as plotly JSON dicts.

    - ``k_key``: K's figures that do not follow the log switch (density contours
      hidden); the only ones that draw ``epochs``, which must be K's;
    - ``log_key``: the figures that follow the log switch at K, the run's inclusive mass
      spectrum included (it is drawn beside that K's spectra);
    - ``run_key``: the run-level figures of ``results``.

    ``results`` are the run's results, K's among them (LookupError if not). The run's
    score dimension comes from gato_dash.runtime.run_facts: the figures are drawn from
    what is passed in.
    """
    kind, run_id, count, *rest = key
    dim = run_facts.dim_of(run)
    if kind == "run":
        wanted = catalogue.names(run, dim=dim, per_k=False)
        inputs = catalogue.Inputs(run, dim, results=results)
    else:
        result = next((r for r in results if int(r["n_cats"]) == int(count)), None)
        if result is None:
            raise LookupError(f"run {run_id} has no result for K = {count}")
        if kind == "k":
            wanted = catalogue.names(run, result, dim=dim, per_k=True, follows_log=False)
            inputs = catalogue.Inputs(run, dim, epochs, result)
        elif kind == "log":
            wanted = catalogue.names(run, result, dim=dim, follows_log=True)
            inputs = catalogue.Inputs(run, dim, result=result, log=bool(rest[0]))
        else:
            raise ValueError(f"not a figure cache key: {key!r}")
    return {name: fig.to_plotly_json() for name, fig in catalogue.build(wanted, inputs).items()}


# --------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------

class FigureCache:
    """Memory (LRU) in front of the run's folder on disk, in front of the builder.

    The page's callbacks run in parallel server threads; a per-key lock makes a second
    asker wait for the first build instead of repeating it (``functools.lru_cache`` would
    build twice). ``store()`` gives the run store whose run folders hold the files (a
    callable: the app's store is chosen after import); None keeps figures in memory only.

    Keys come from requests, which anyone can craft (any K, any result count): with a
    store, figures are kept (in memory and on disk) only for keys of what the store holds,
    a K that has a result or the run's current result count; others are built and
    returned, never kept, so crafted requests cannot grow the cache.
    """

    def __init__(self, size: int, store: Callable[[], "RunStore"] | None = None):
        self.size = size
        self.store = store
        self._values: OrderedDict = OrderedDict()
        self._locks: dict = {}
        self._guard = threading.Lock()

    def get(self, key: tuple, build: Callable[[], dict]) -> dict:
        with self._guard:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            lock = self._locks.setdefault(key, threading.Lock())
        try:
            with lock:
                with self._guard:
                    if key in self._values:
                        return self._values[key]
                value = self._read(key)
                if value is None:
                    text = pio.json.to_json_plotly(build())
                    # from the same text as the file: memory and disk hold the same figures
                    value = json.loads(text)
                    if not self._is_stored(key):
                        return value  # see the class doc: built, not kept
                    self._write(key, text)
                with self._guard:
                    self._values[key] = value
                    while len(self._values) > self.size:
                        self._values.popitem(last=False)
                return value
        finally:
            # also when the build raised (a K without a result): a lock per crafted key
            # would otherwise stay forever
            with self._guard:
                self._locks.pop(key, None)

    def _is_stored(self, key: tuple) -> bool:
        """Whether ``key`` names figures of what the store holds (always, without a store:
        memory only, bounded by ``size``)."""
        if self.store is None:
            return True
        kind, run_id, count, *_ = key
        if not isinstance(run_id, str):
            return False
        ks = self.store().result_ks(run_id)
        return count == len(ks) if kind == "run" else count in ks

    def put(self, key: tuple, value: dict) -> None:
        """Write a figure set built elsewhere (the training job, the importer) beside its
        run, where the servers' caches read it; nothing is kept in this cache's memory (the
        job's cache is thrown away). Without a store this does nothing."""
        self._write(key, pio.json.to_json_plotly(value))

    def clear(self) -> None:
        """Forget what is in memory (the files stay)."""
        with self._guard:
            self._values.clear()

    # ----- disk ---------------------------------------------------------------------
    def path(self, key: tuple) -> Path | None:
        if self.store is None:
            return None
        kind, run_id, *rest = key
        stem = "-".join([kind, *(str(int(part)) for part in rest)])
        return self.store().run_dir(run_id) / FIGURES_DIR / f"{stem}.{FIGURES_VERSION}.json.gz"

    def _read(self, key: tuple) -> dict | None:
        path = self.path(key)
        if path is None or not path.is_file():
            return None
        try:
            return json.loads(gzip.decompress(path.read_bytes()))
        except (OSError, ValueError, EOFError):  # damaged: build it again
            log.warning("figure cache file %s is unreadable; rebuilding it", path)
            return None

    def _write(self, key: tuple, text: str) -> None:
        """Write the figures' JSON ``text`` to the key's file, if this cache has a store."""
        path = self.path(key)
        if path is not None:
            scratch = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                scratch.write_bytes(gzip.compress(text.encode(), GZIP_LEVEL))
                os.replace(scratch, path)
                stem = path.name.split(".", 1)[0]
                for stale in path.parent.glob(f"{stem}.*.json.gz"):  # older code's figures
                    if stale != path:
                        stale.unlink(missing_ok=True)
                _evict_oldest(path.parent, keep=path)
                if self.store().run_status(key[1]) is None:
                    # deleted meanwhile: delete() has removed the folder already, or will
                    shutil.rmtree(path.parent.parent, ignore_errors=True)
            except OSError:  # a full or read-only disk costs a rebuild later, nothing else
                log.warning("could not keep figures in %s", path, exc_info=True)
                with contextlib.suppress(OSError):
                    scratch.unlink(missing_ok=True)


def _evict_oldest(folder: Path, keep: Path) -> None:
    """Remove the oldest figure files of ``folder`` beyond MAX_FILES_PER_RUN."""
    files = []
    for file in folder.glob("*.json.gz"):
        with contextlib.suppress(OSError):  # removed meanwhile by another writer
            files.append((file.stat().st_mtime, file.name, file))
    if len(files) <= MAX_FILES_PER_RUN:
        return
    files.sort()
    for _, _, file in files[:len(files) - MAX_FILES_PER_RUN]:
        if file != keep:
            file.unlink(missing_ok=True)


def prebuild(cache: FigureCache, run: dict, epochs: list[dict], result: dict,
             results: list[dict]) -> None:
    """Build what a page asks for first when it learns of ``result`` (that K's figures,
    linear axes, and the run-level figures of ``results``, which include ``result``)."""
    run_id, n_cats = run["id"], result["n_cats"]
    for key in (k_key(run_id, n_cats), log_key(run_id, n_cats, False),
                run_key(run_id, len(results))):
        cache.put(key, build_figures(key, run, results, epochs))


def prebuild_figures(store: RunStore, run_id: str, result: dict, results: list[dict]) -> None:
    """Build and keep the results figures of a K that has just been stored. Never fails
    the run: whatever goes wrong here, the page builds the figures itself when asked."""
    try:
        run = store.get_run(run_id)
        if run is not None:
            prebuild(FigureCache(size=3, store=lambda: store), run,
                     store.epochs(run_id, n_cats=result["n_cats"]), result, results)
    except Exception:
        log.exception("building the figures of run %s, K = %s failed", run_id,
                      result.get("n_cats"))
