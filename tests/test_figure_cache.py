"""Results figures built once and kept beside the run (gato_dash.figure_cache): what a
second server process reads is what the first built, other code's files are not read, a
damaged file is rebuilt, a deleted run keeps no files; imported records come with their
figures, while the training job builds none (it imports no Plotly)."""
from __future__ import annotations

import gzip
import json
import threading
import time

import plotly.io as pio
import pytest

from helpers import records as rf
from gato_dash import figure_cache as fc
from gato_dash.runtime.recording import store_records
from gato_dash.runtime.run_store import RunStore


def never(*_):
    raise AssertionError("built although the figures were on disk")


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs.sqlite")


@pytest.fixture
def finished(store):
    run_id, _, _ = rf.store_finished_run(store, "bump_hunt", n_cats=(5, 8))
    return run_id


def built_from_store(store, run_id: str, n_cats: int) -> dict:
    """The K figures built directly from the store, as they look after plotly's JSON."""
    figures = fc.build_figures(fc.k_key(run_id, n_cats), store.get_run(run_id),
                               store.results(run_id), store.epochs(run_id, n_cats=n_cats))
    return json.loads(pio.json.to_json_plotly(figures))


def cache_of(store, size=8) -> fc.FigureCache:
    return fc.FigureCache(size=size, store=lambda: store)


def k_build(store, run_id, n_cats):
    return lambda: fc.build_figures(fc.k_key(run_id, n_cats), store.get_run(run_id),
                                    store.results(run_id), store.epochs(run_id, n_cats=n_cats))


class LookedUpBy(str):
    """A key part that notes which threads looked its key up (a dict lookup hashes it), so
    the test can wait until every asker has seen the key missing, instead of sleeping."""

    def __new__(cls, value):
        part = super().__new__(cls, value)
        part.threads = set()
        return part

    def __hash__(self):
        self.threads.add(threading.get_ident())
        return str.__hash__(self)


def wait_until(condition, timeout_s=10.0, what="the condition"):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s} s"
        time.sleep(0.001)


def test_builds_each_key_once_across_threads():
    cache = fc.FigureCache(size=2)  # memory only
    name = LookedUpBy("a")
    key = ("k", name, 1)
    calls = []
    building, finish = threading.Event(), threading.Event()

    def build():
        calls.append(1)
        building.set()
        assert finish.wait(10), "the test never let the build finish"
        return {"built": len(calls)}

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(key, build)))
               for _ in range(4)]
    threads[0].start()
    assert building.wait(10)
    name.threads.clear()
    for t in threads[1:]:
        t.start()
    # every other asker has looked for the key while the first build runs; only then may
    # it finish (a cache without a per-key wait builds again for each of them)
    askers = {t.ident for t in threads[1:]}
    wait_until(lambda: askers <= name.threads, what="the other threads' lookups")
    finish.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1 and results == [{"built": 1}] * 4
    cache.get(("k", "b", 1), lambda: {"v": 2})
    cache.get(("k", "c", 1), lambda: {"v": 3})  # evicts "a" (least recently used)
    assert cache.get(("k", "a", 1), lambda: {"v": "rebuilt"}) == {"v": "rebuilt"}


def test_a_new_server_process_reads_what_the_first_built(store, finished):
    first = cache_of(store).get(fc.k_key(finished, 8), k_build(store, finished, 8))
    path = cache_of(store).path(fc.k_key(finished, 8))
    assert path.is_file() and path.parent.parent == store.run_dir(finished)
    assert fc.FIGURES_VERSION in path.name
    # another process: nothing in memory, the builder must not run
    again = cache_of(store).get(fc.k_key(finished, 8), never)
    assert again == first == built_from_store(store, finished, 8)
    assert len(again["category_map"]["frames"]) == 41
    # the file is gzipped plotly JSON, much smaller than the figures
    assert path.stat().st_size < len(json.dumps(first)) / 4


def test_files_of_other_code_or_damaged_are_not_used(store, finished):
    cache = cache_of(store)
    key = fc.k_key(finished, 5)
    path = cache.path(key)
    path.parent.mkdir(parents=True)
    stale = path.with_name(path.name.replace(fc.FIGURES_VERSION, "0123456789ab"))
    stale.write_bytes(gzip.compress(b'{"category_map": {"data": []}}'))
    path.write_bytes(b"not gzip at all")
    figures = cache.get(key, k_build(store, finished, 5))
    assert figures == built_from_store(store, finished, 5)
    # the damaged file was replaced by a good one, the other code's file removed
    assert json.loads(gzip.decompress(path.read_bytes())) == figures
    assert not stale.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_disk_that_cannot_take_the_files_costs_a_rebuild_not_an_error(store, finished):
    store.run_dir(finished).mkdir(parents=True)
    (store.run_dir(finished) / fc.FIGURES_DIR).write_text("a file where the folder goes")
    figures = cache_of(store).get(fc.k_key(finished, 8), k_build(store, finished, 8))
    assert figures == built_from_store(store, finished, 8)
    assert [p.name for p in store.run_dir(finished).iterdir()] == [fc.FIGURES_DIR]


def test_a_deleted_run_keeps_no_figure_files(store, finished):
    cache = cache_of(store)
    cache.get(fc.k_key(finished, 8), k_build(store, finished, 8))
    assert store.run_dir(finished).is_dir()
    figures = cache.get(fc.k_key(finished, 8), never)
    store.delete(finished)
    assert not store.run_dir(finished).exists()
    # a writer that was still busy when the run was deleted (the job, a page) leaves nothing
    cache.put(fc.k_key(finished, 5), figures)
    assert not store.run_dir(finished).exists()


def test_stored_records_can_come_with_their_figures(store, monkeypatch):
    """The importer's path: each K's figures are built before its result is stored, so a
    page that learns of the result finds them ready."""
    run, epochs, results = rf.run_record("bump_hunt", n_cats=(5, 8))
    run_id = store.create_run(run["config"])
    seen_at_store_time = {}
    put_result = RunStore.put_result

    def watching_put_result(self, run_id_, result):
        cache = cache_of(self)
        k = result["n_cats"]
        seen_at_store_time[k] = [cache.path(key).is_file() for key in (
            fc.k_key(run_id_, k), fc.log_key(run_id_, k, False),
            fc.run_key(run_id_, len(self.results(run_id_)) + 1))]
        put_result(self, run_id_, result)

    monkeypatch.setattr(RunStore, "put_result", watching_put_result)
    records = [run["run_info"], *epochs[:400], results[0], *epochs[400:], results[1]]
    assert store_records(store, run_id, records, on_result=fc.prebuild_figures) is not None
    assert seen_at_store_time == {5: [True, True, True], 8: [True, True, True]}
    # what was built is what a server builds from the stored run
    for k in (5, 8):
        assert cache_of(store).get(fc.k_key(run_id, k), never) == \
            built_from_store(store, run_id, k)
    run_figures = cache_of(store).get(fc.run_key(run_id, 2), never)
    assert run_figures == json.loads(pio.json.to_json_plotly(
        fc.build_figures(fc.run_key(run_id, 2), store.get_run(run_id), store.results(run_id))))


TRAIN_IN_A_FRESH_PROCESS = """
import sys
from types import SimpleNamespace
sys.path.insert(0, {tests!r})
from helpers import records as rf
from gato_dash.runtime.jobs import run_training
from gato_dash.runtime.run_store import RunStore

store = RunStore({path!r})
run, epochs, results = rf.run_record("bump_hunt", n_cats=(5,))
run_id = store.create_run(run["config"])

def train(config, should_stop=None, cache_dir=None, events=None, datasets_dir=None):
    for record in [run["run_info"], *epochs, results[0]]:
        yield SimpleNamespace(to_dict=lambda record=record: record)

assert run_training(store.path, run_id, train=train) == "finished"
print(sorted(m for m in ("plotly", "dash", "gato_dash.figure_cache") if m in sys.modules))
"""


def test_the_training_job_builds_no_figures_and_imports_no_plotly(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = TRAIN_IN_A_FRESH_PROCESS.format(tests=str(Path(__file__).parent),
                                             path=str(tmp_path / "runs.sqlite"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"  # the web process draws; the job only trains
    store = RunStore(tmp_path / "runs.sqlite")
    (run,) = store.list_runs()
    assert store.result_ks(run["id"]) == [5]
    assert not (store.run_dir(run["id"]) / fc.FIGURES_DIR).exists()


def test_figure_trouble_never_fails_the_storing(store, monkeypatch):
    run, epochs, results = rf.run_record("bump_hunt", n_cats=(5,))
    run_id = store.create_run(run["config"])

    def broken(*_):
        raise ValueError("a figure builder bug")

    monkeypatch.setattr(fc, "build_figures", broken)
    stored = store_records(store, run_id, [run["run_info"], *epochs, results[0]],
                           on_result=fc.prebuild_figures)
    assert [r["n_cats"] for r in stored] == [5]
    assert store.result_ks(run_id) == [5]
    assert not cache_of(store).path(fc.k_key(run_id, 5)).exists()


# ----- bounded: crafted requests cannot grow the cache (issue #21) ------------------------
def figure_files(store, run_id) -> list[str]:
    folder = store.run_dir(run_id) / fc.FIGURES_DIR
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_crafted_keys_are_built_but_never_kept(store, finished):
    """A K without a result, a result count the run does not have, a run that does not
    exist: the figures are built for the asker, and no file or memory entry stays."""
    cache = cache_of(store, size=1000)
    for n in range(500):
        assert cache.get(fc.run_key(finished, n), lambda n=n: {"results": n}) == {"results": n}
    for k in (1, 3, 10**12):
        with pytest.raises(LookupError):  # the page's builder refuses a K without a result
            cache.get(fc.k_key(finished, k), lambda: (_ for _ in ()).throw(LookupError(k)))
    cache.get(fc.log_key("no-such-run", 5, True), lambda: {"v": 1})
    assert not store.run_dir("no-such-run").exists()
    # only what the store holds is kept: the run's two results, its K = 5 and 8
    cache.get(fc.run_key(finished, 2), lambda: {"results": 2})
    cache.get(fc.k_key(finished, 5), k_build(store, finished, 5))
    assert figure_files(store, finished) == sorted(
        f"{stem}.{fc.FIGURES_VERSION}.json.gz" for stem in ("run-2", "k-5"))
    assert cache.get(fc.run_key(finished, 2), never) == {"results": 2}
    assert cache.get(fc.run_key(finished, 7), lambda: {"again": 7}) == {"again": 7}
    # nothing of the crafted keys stays in memory either (a lock per key stayed before)
    assert sorted(cache._values) == sorted([fc.run_key(finished, 2), fc.k_key(finished, 5)])
    assert cache._locks == {}


def test_figure_files_beside_a_run_are_bounded_oldest_first(store, finished):
    cache = cache_of(store)
    written = []
    for k in range(2, 2 + fc.MAX_FILES_PER_RUN + 12):  # put: the job's and importer's path
        cache.put(fc.k_key(finished, k), {"k": k})
        written.append(cache.path(fc.k_key(finished, k)).name)
    assert figure_files(store, finished) == sorted(written[-fc.MAX_FILES_PER_RUN:])


def test_crafted_callback_requests_leave_at_most_the_bound_in_viewer_mode(tmp_path):
    from gato_dash import runtime
    from gato_dash.app import create_app

    app = create_app(tmp_path, runtime.Settings(read_only=True))
    client = app.server.test_client()
    store = runtime.store()
    run_id, _, _ = rf.store_finished_run(store, "one_d", n_cats=(3, 5))
    output = next(key for key in app.callback_map if key.startswith("results-significance."))
    codes = set()
    for n in range(40):  # the result count comes from the K dropdown's options
        body = {"output": output, "outputs": {"id": "results-significance",
                                              "property": "figure"},
                "inputs": [{"id": "results-run-id", "property": "data", "value": run_id}],
                "state": [{"id": "results-k", "property": "options",
                           "value": [{"label": str(i), "value": i} for i in range(n)]}],
                "changedPropIds": ["results-run-id.data"]}
        codes.add(client.post("/_dash-update-component", data=json.dumps(body),
                              content_type="application/json").status_code)
    assert codes == {200}
    assert figure_files(store, run_id) == [f"run-2.{fc.FIGURES_VERSION}.json.gz"]
