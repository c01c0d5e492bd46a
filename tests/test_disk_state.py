"""Bad state on disk (issue #21): a damaged run row, a store file that is not a database,
a data folder that cannot be written, and server paths that are not readable files.

Each is met with a message that names the thing and what to do, never a traceback or a
server error; the other runs stay usable and a damaged one can still be deleted.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gato_core.readers import DatasetError, Source, inspect_sources, read_source
from gato_dash import runtime
from gato_dash.app import create_app
from gato_dash.runtime import stored_records
from gato_dash.runtime.run_store import RunStore

ROOT = Path(__file__).resolve().parents[1]
CONFIG = {"scenario": "one_d", "n_signal": 2000, "n_bkg": 6000, "epochs": 5, "n_cats": [3]}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(tmp_path_factory.mktemp("data"), runtime.Settings(allow_server_paths=True))


@pytest.fixture
def data(app, tmp_path):
    """A fresh data folder for this test, served by the module's app (server paths on)."""
    folder = tmp_path / "data"
    runtime.configure(folder, runtime.Settings(allow_server_paths=True))
    yield folder
    runtime.store().close()


def call(app, output: str, values: dict, changed: str):
    """POST one callback as dash-renderer sends it: ``output`` picks the callback (a part of
    its output key), ``values`` gives "id.property" -> value for inputs and states."""
    key = next(k for k in app.callback_map if output in k)
    spec = app.callback_map[key]
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    outputs = [dict(zip(("id", "property"), part.rsplit(".", 1))) for part in parts]

    def entries(kind):
        # a pattern-matching ALL dependency with no components on the page: an empty list
        return [[] if e["id"].startswith("{") else
                {"id": e["id"], "property": e["property"],
                 "value": values.get(f"{e['id']}.{e['property']}")} for e in spec[kind]]
    body = {"output": key, "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": entries("inputs"), "state": entries("state"), "changedPropIds": [changed]}
    response = app.server.test_client().post("/_dash-update-component", json=body)
    assert response.status_code < 500, response.data[:2000]
    return response


def raw_sql(store: RunStore, sql: str, args=()):
    """Change the database behind the store's back."""
    with store._write() as conn:
        conn.execute(sql, args)


GARBAGE = "{\"scenario\": \"one_d\", oops"


# ----- one run row with broken JSON --------------------------------------------------------
@pytest.fixture
def any_store(store_location):
    location, data_dir = store_location
    store = RunStore(location, data_dir)
    yield store
    store.close()


@pytest.mark.parametrize("column", ["config", "tags", "run_info"])
def test_a_run_row_with_broken_json_is_listed_as_damaged(any_store, column):
    good = any_store.create_run(CONFIG, name="good")
    bad = any_store.create_run(CONFIG, name="bad")
    raw_sql(any_store, f"UPDATE runs SET {column} = ? WHERE id = ?", (GARBAGE, bad))
    runs = {run["id"]: run for run in any_store.list_runs()}
    assert runs[good]["status"] == "queued" and runs[good]["config"]["n_cats"] == [3]
    damaged = [any_store.get_run(bad)]
    if column != "run_info":  # the light reads leave run_info unread
        damaged += [runs[bad], any_store.run_status(bad)]
    for run in damaged:
        assert run["status"] == "damaged"
        assert column in run["message"] and "not valid JSON" in run["message"]
    assert any_store.delete(bad) and any_store.get_run(bad) is None
    assert [run["id"] for run in any_store.list_runs()] == [good]


def test_a_result_with_broken_json_is_reported_not_raised_as_json_error(any_store):
    run_id = any_store.create_run(CONFIG, name="r")
    any_store.put_result(run_id, {"n_cats": 3, "significance": {"signal": 1.0}, "objective": 1.0})
    raw_sql(any_store, "UPDATE results SET record = ? WHERE run_id = ?", (GARBAGE, run_id))
    (summary,) = any_store.result_summaries()[run_id]
    assert summary["n_cats"] == 3 and "not valid JSON" in summary["damaged"]
    with pytest.raises(stored_records.DamagedRecord, match=r"K=3.*not valid JSON"):
        any_store.results(run_id)


def test_home_runs_and_run_page_show_a_damaged_run_and_keep_the_others(app, data):
    store = runtime.store()
    good = store.create_run(CONFIG, name="good run")
    bad_config = store.create_run(CONFIG, name="bad config")
    bad_result = store.create_run(CONFIG, name="bad result")
    store.claim(bad_result)
    store.put_result(bad_result, {"n_cats": 3, "significance": {"signal": 1.0},
                                  "objective": 1.0})
    store.set_status(bad_result, "finished")
    raw_sql(store, "UPDATE runs SET config = ? WHERE id = ?", (GARBAGE, bad_config))
    raw_sql(store, "UPDATE results SET record = ? WHERE run_id = ?", (GARBAGE, bad_result))
    client = app.server.test_client()
    for path in ("/", "/runs", f"/runs/{bad_config}", f"/runs/{bad_result}"):
        assert client.get(path).status_code == 200, path

    home = sys.modules["gato_dash.pages.home"]
    text = json.dumps(home.layout().to_plotly_json(), default=str)
    assert "good run" in text and "bad config" in text and "damaged" in text

    response = call(app, "runs-table.data", {}, "runs-refresh.data")
    rows = {row["id"]: row for row in response.get_json()["response"]["runs-table"]["data"]}
    assert set(rows) == {good, bad_config, bad_result}
    assert rows[good]["status"] == "queued"
    assert rows[bad_config]["status"] == "damaged" and "config" in rows[bad_config]["best_z"]
    assert rows[bad_result]["status"] == "damaged" and "K=3" in rows[bad_result]["best_z"]

    run_page = sys.modules["gato_dash.pages.run"]
    for run_id in (bad_config, bad_result):
        page = json.dumps(run_page.layout(run_id=run_id).to_plotly_json(), default=str)
        assert "run-damaged" in page and "not valid JSON" in page, run_id

    # deletable from the Runs page: its delete callback removes both damaged runs
    call(app, "runs-delete-modal.is_open",
         {"runs-table.selected_row_ids": [bad_config, bad_result],
          "runs-table.data": list(rows.values()), "runs-delete-confirm.n_clicks": 1},
         "runs-delete-confirm.n_clicks")
    assert [run["id"] for run in store.list_runs()] == [good]


def test_a_stored_result_of_the_wrong_shape_does_not_break_the_runs_table(app, data):
    """A run imported before imports were checked: a list where a number belongs."""
    store = runtime.store()
    good = store.create_run(CONFIG, name="good run")
    odd = store.create_run(CONFIG, name="odd")
    store.put_result(odd, {"n_cats": 3, "significance": {"signal": [1, 2]},
                           "objective": {"x": 1}})
    response = call(app, "runs-table.data", {}, "runs-refresh.data")
    rows = {row["id"]: row for row in response.get_json()["response"]["runs-table"]["data"]}
    assert rows[good]["status"] == "queued"
    assert rows[odd]["status"] == "damaged" and "significance" in rows[odd]["best_z"]


# ----- a store file that is not a database --------------------------------------------------
def write_half_a_store(path: Path):
    store = RunStore(path)
    for _ in range(50):
        store.create_run(CONFIG, name="x" * 100)
    store.close()
    del store
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("damage", ["text", "truncated", "folder"])
def test_a_store_that_is_not_a_database_is_named_at_start(tmp_path, damage):
    folder = tmp_path / "data"
    folder.mkdir()
    store_file = folder / runtime.STORE_FILE
    if damage == "text":
        store_file.write_text("these are my notes, not a database\n" * 20)
    elif damage == "truncated":
        write_half_a_store(store_file)
    else:
        store_file.mkdir()
    with pytest.raises(runtime.BackendError) as raised:
        create_app(folder)
    message = str(raised.value)
    assert str(store_file) in message and "move it away" in message.lower(), message

    proc = subprocess.run([sys.executable, "app.py", "--data-dir", str(folder), "--port", "1"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(store_file) in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


# ----- a data folder that cannot be written -------------------------------------------------
def without_root_powers(*command, **kwargs):
    """Run ``command`` as root without the capabilities that let root ignore permissions."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    return subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--",
                           *command], capture_output=True, text=True, timeout=180, cwd=ROOT,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), **kwargs)


def test_a_read_only_data_folder_is_named_at_start(tmp_path):
    folder = tmp_path / "data"
    RunStore(folder / runtime.STORE_FILE).close()
    folder.chmod(0o555)
    try:
        proc = without_root_powers(sys.executable, "app.py", "--data-dir", str(folder),
                                   "--port", "1")
    finally:
        folder.chmod(0o755)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(folder) in lines[0] and "writ" in lines[0], proc.stderr


WRITE_PATHS_SCRIPT = r"""
import json, os, sys
from pathlib import Path
sys.path.insert(0, os.getcwd())
from gato_dash import runtime
from gato_dash.app import create_app
import tests.test_disk_state as t

folder = Path(sys.argv[1])
app = create_app(folder, runtime.Settings(allow_server_paths=True))
app.server.test_client().get("/")
store = runtime.store()
keep = store.create_run(t.CONFIG, name="kept")
csv = folder.parent / "events.csv"
csv.write_text("score,weight,process\n" + "".join(
    f"{i / 100},1,{'signal' if i % 3 else 'bkg'}\n" for i in range(100)))
# the folder and the store turn read-only while the app runs
for path in [folder, *folder.rglob("*")]:
    path.chmod(0o555 if path.is_dir() else 0o444)
store.close()
answers = {}
def text(response):
    return response.get_data(as_text=True)
answers["delete"] = text(t.call(app, "runs-delete-modal.is_open",
    {"runs-table.selected_row_ids": [keep], "runs-table.data": [{"id": keep, "name": "kept"}],
     "runs-delete-confirm.n_clicks": 1}, "runs-delete-confirm.n_clicks"))
answers["kept"] = [r["id"] for r in store.list_runs()] == [keep]
answers["dataset"] = text(t.call(app, "datasets-import-message.children..",
    {"datasets-import.n_clicks": 1,
     "datasets-sources.data": [{"kind": "path", "path": str(csv), "process": ""}],
     "datasets-scores.value": ["score"], "datasets-weight.value": "weight",
     "datasets-process.value": "process", "datasets-signals.value": ["signal"]},
    "datasets-import.n_clicks"))
upload = app.server.test_client().post("/gato-upload", json={"filename": "a.csv", "size": 10})
answers["upload"] = [upload.status_code, upload.get_json().get("error")]
print(json.dumps(answers))
"""


def test_write_paths_on_a_read_only_data_folder_say_so(tmp_path):
    folder = tmp_path / "data"
    script = tmp_path / "write_paths.py"
    script.write_text(WRITE_PATHS_SCRIPT)
    try:
        proc = without_root_powers(sys.executable, str(script), str(folder))
    finally:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert proc.returncode == 0, proc.stderr[-3000:]
    answers = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answers["kept"], answers
    assert "could not be deleted" in answers["delete"] and "read-only" in answers["delete"]
    assert "Nothing was imported" in answers["dataset"] and "read-only" in answers["dataset"]
    status, error = answers["upload"]
    assert status == 403 and "read-only" in error, answers["upload"]


# ----- server paths --------------------------------------------------------------------------
def add_path(app, path: str) -> str:
    response = call(app, "datasets-sources.data..",
                    {"datasets-path.value": path, "datasets-add-path.n_clicks": 1,
                     "datasets-sources.data": []}, "datasets-add-path.n_clicks")
    return response.get_data(as_text=True)


@pytest.fixture
def odd_paths(tmp_path):
    """Server paths that are not readable regular files, and what each must be called."""
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    denied = tmp_path / "denied.csv"  # root may not read another process's memory either
    denied.symlink_to("/proc/1/mem")
    zero = tmp_path / "zero.csv"
    zero.symlink_to("/dev/zero")
    return {"~nosuchuser/x.csv": "~nosuchuser", str(fifo): "not a regular file",
            str(folder): "is a folder", str(denied): "permission", str(zero):
            "not a regular file"}


def test_odd_server_paths_get_a_message_not_a_server_error(app, data, odd_paths):
    for path, expected in odd_paths.items():
        answer = add_path(app, path)
        assert expected in answer.lower() or expected in answer, (path, answer)


def test_odd_paths_are_refused_by_the_readers_without_hanging(odd_paths):
    for path, _ in odd_paths.items():
        if path.startswith("~"):
            continue
        with pytest.raises(DatasetError):
            inspect_sources([Source(path)])
        with pytest.raises(DatasetError):
            read_source(Source(path), ["score"])


SECRET = "root:$6$Zx9sEcReTsAlT$hAsHhAsHhAsH:19700:0:99999:7:::"


@pytest.mark.parametrize("content", [
    f"score,weight\n0.5,1\n{SECRET}\n",  # a row with one field: a parse error quotes it
    f"score,weight\n0.5,1\n0.25,{SECRET}\n",  # a conversion error quotes the value
    f"{SECRET}\n",
])
def test_reader_messages_do_not_echo_file_contents(tmp_path, app, data, content):
    path = tmp_path / "shadow.csv"
    path.write_text(content)
    messages = []
    for call_reader in (lambda: read_source(Source(str(path)), ["score", "weight"]),
                        lambda: inspect_sources([Source(str(path))])):
        try:
            call_reader()
        except DatasetError as exc:
            messages.append(str(exc))
    answer = call(app, "datasets-preview.children",
                  {"datasets-sources.data": [{"kind": "path", "path": str(path)}]},
                  "datasets-sources.data").get_data(as_text=True)
    if "could not be read" in answer:
        messages.append(answer)
    assert messages, "the file was read without complaint"
    for message in messages:
        assert "$6$" not in message and "Zx9sEcReT" not in message, message
