"""Requests a browser of this app never sends: crafted callback bodies, odd paths, no
password. Each gets a short 4xx (or no update) and leaves the store as it was."""
from __future__ import annotations

import base64
import json

import pytest

from gato_dash import live, runtime
from gato_dash.app import create_app

CONFIG = {"scenario": "one_d", "n_signal": 2000, "n_bkg": 6000, "epochs": 5, "n_cats": [3]}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(tmp_path_factory.mktemp("data"))


@pytest.fixture
def client(app):
    return app.server.test_client()


def poll_body(app, state, k_value=None, n_intervals=1) -> dict:
    """A well-formed call of the run page's poll, as dash-renderer sends it."""
    output = next(key for key in app.callback_map if "run-state.data" in key)
    outputs = [dict(zip(("id", "property"), part.rsplit(".", 1)))
               for part in output[2:-2].split("...")]
    return {
        "output": output,
        "outputs": outputs,
        "inputs": [{"id": "run-poll", "property": "n_intervals", "value": n_intervals},
                   {"id": "run-k", "property": "value", "value": k_value}],
        "state": [{"id": "run-state", "property": "data", "value": state},
                  {"id": "run-view", "property": "data", "value": {}}],
        "changedPropIds": ["run-k.value"],
    }


def malformed_bodies(app) -> list:
    good = poll_body(app, live.initial_state("x"))
    bodies = [None, [], "text", 1, {}, {"output": 1}, {"output": "nope..x.y"},
              {"output": good["output"]}, {**good, "inputs": "x"}, {**good, "inputs": []},
              {**good, "inputs": [1, 2]}, {**good, "inputs": [{"id": 1}, {"id": 2}]},
              {**good, "state": None}, {**good, "state": [{}, {}]}, {**good, "outputs": None},
              {**good, "changedPropIds": "run-k.value"}, {**good, "output": ".."},
              {**good, "inputs": [[{"id": "a"}], {"id": "b", "property": 3}]},
              {**good, "outputs": good["outputs"][:-1]}, {**good, "outputs": [1] * 31}]
    # every dependency entry replaced in turn by something that is not an id/property pair
    for key in ("inputs", "state"):
        for index in range(len(good[key])):
            for wrong in (None, 1, "s", {"id": None, "property": "x"}, {"id": "a"}):
                entries = list(good[key])
                entries[index] = wrong
                bodies.append({**good, key: entries})
    # every key dropped in turn, and every key given a wrong type in turn
    for key in good:
        bodies.append({k: v for k, v in good.items() if k != key})
        for wrong in (None, 7, "s", {"a": 1}):
            bodies.append({**good, key: wrong})
    return bodies


def test_malformed_callback_bodies_get_400(app, client):
    bodies = malformed_bodies(app)
    assert len(bodies) >= 50
    answers = []
    for body in bodies:
        response = client.post("/_dash-update-component", data=json.dumps(body),
                               content_type="application/json")
        answers.append(response.status_code)
    # a body without changedPropIds is still a valid call; all others are refused
    assert all(code < 500 for code in answers), answers
    assert answers.count(400) >= len(bodies) - 2
    not_json = client.post("/_dash-update-component", data=b"\x00{", content_type="text/plain")
    assert not_json.status_code == 400 and b"not a JSON object" in not_json.data


@pytest.mark.parametrize("state,k_value", [
    ({"run": "RUN", "k": 10**20, "seq": 0}, None),  # overflowed SQLite before
    ({"run": "RUN", "k": None, "seq": -(10**20)}, None),
    ({"run": "RUN", "seq": "1; DROP TABLE runs"}, None),
    ({"run": "x" * 10_000}, None),
    ("not a state", None),
    ({"run": "RUN"}, 10**20),
    ({"run": "RUN"}, "5"),
])
def test_crafted_poll_values_reach_no_query(app, client, state, k_value):
    run_id = runtime.store().create_run(CONFIG)
    if isinstance(state, dict) and state.get("run") == "RUN":
        state = {**state, "run": run_id}
    before = runtime.store().get_run(run_id)
    response = client.post("/_dash-update-component",
                           data=json.dumps(poll_body(app, state, k_value)),
                           content_type="application/json")
    # refused at the boundary (400: not a value the page can hold), or no update
    assert response.status_code in (200, 204, 400), response.data[:300]
    if response.status_code == 200:  # a bad K is ignored: the page shows a K of the run
        answer = json.loads(response.data)["response"]
        assert answer["run-k"]["value"] == 3
    assert runtime.store().get_run(run_id) == before


def test_clean_state_keeps_what_the_page_wrote():
    state = {**live.initial_state("abc"), "k": 5, "seq": 120, "answered": 7, "refs_for": 5}
    assert live.clean_state(state) == state
    assert live.clean_state({**state, "k": True}) is None
    assert live.clean_state({**state, "run": 5}) is None


@pytest.mark.parametrize("path", ["/_dash-component-suites/../../etc/passwd",
                                  "/_dash-component-suites/dash/../../../etc/passwd",
                                  "/_dash-component-suites/nothere/x.js"])
def test_unknown_component_files_are_404(client, path):
    assert client.get(path).status_code == 404


def test_password_protects_every_address(tmp_path):
    app = create_app(tmp_path, password="s3cret pass")
    client = app.server.test_client()
    for path in ("/", "/runs", "/_dash-layout", "/assets/gato.css"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "Basic" in response.headers["WWW-Authenticate"]

    def auth(password):
        token = base64.b64encode(f"anyone:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    assert client.get("/", headers=auth("wrong")).status_code == 401
    assert client.get("/", headers=auth("s3cret pass")).status_code == 200


def test_viewer_mode_refuses_to_cancel(tmp_path):
    app = create_app(tmp_path, runtime.Settings(read_only=True))
    app.server.test_client().get("/")
    store = runtime.store()
    run_id = store.create_run(CONFIG)
    store.claim(run_id)
    output = next(key for key in app.callback_map if key.startswith("run-cancel-feedback"))
    body = {"output": output, "outputs": {"id": "run-cancel-feedback", "property": "children"},
            "inputs": [{"id": "run-cancel", "property": "n_clicks", "value": 1}],
            "state": [{"id": "run-state", "property": "data",
                       "value": live.initial_state(run_id)}],
            "changedPropIds": ["run-cancel.n_clicks"]}
    response = app.server.test_client().post("/_dash-update-component", data=json.dumps(body),
                                             content_type="application/json")
    assert response.status_code == 200
    # said in the app shell's notice (one place for every refused write), nothing else
    answer = json.loads(response.data)
    notice = answer["sideUpdate"]["read-only-notice"]
    assert "read-only" in notice["children"] and notice["is_open"] is True
    assert "run-cancel-feedback" not in answer.get("response", {})
    assert not store.cancel_requested(run_id)


@pytest.mark.parametrize("run_id", [{"a": 1}, [1, 2], 12, None, "no-such-run"])
def test_crafted_run_ids_in_download_requests_change_nothing(app, client, run_id):
    output = next(key for key in app.callback_map if key.startswith("results-dl-report."))
    body = {"output": output, "outputs": {"id": "results-dl-report", "property": "data"},
            "inputs": [{"id": "results-dl-report-btn", "property": "n_clicks", "value": 1}],
            "state": [{"id": "results-run-id", "property": "data", "value": run_id}],
            "changedPropIds": ["results-dl-report-btn.n_clicks"]}
    response = client.post("/_dash-update-component", data=json.dumps(body),
                           content_type="application/json")
    # no update for a run id that names no run; 400 for a value that is no run id
    assert response.status_code == (204 if isinstance(run_id, str) or run_id is None else 400)


# ----- viewer mode: every write refused, whatever the request -----------------------------
#: Callbacks that write the run store or the data folder (by function name)
WRITING_CALLBACKS = {"cancel_run", "start_run", "save_edits", "delete_runs", "import_results",
                     "edit_sources", "import_dataset", "manage"}
#: Caches a read may fill (figures, generated events, the job manager's): not state
CACHE_PARTS = {"figures", "events", "jobs", "xla"}


def stored_state(store, data_dir) -> tuple:
    """Everything a write could change: each run with its results and epoch count, and the
    data folder's files (caches and the database file's journals left out)."""
    runs = {run["id"]: ({k: v for k, v in store.get_run(run["id"]).items() if k != "heartbeat"},
                        store.results(run["id"]),
                        len(store.epochs(run["id"], snapshots=False)))
            for run in store.list_runs()}
    files = sorted((str(path.relative_to(data_dir)), path.stat().st_size)
                   for path in data_dir.rglob("*")
                   if path.is_file() and not CACHE_PARTS & set(path.relative_to(data_dir).parts)
                   and not path.name.startswith("runs.sqlite"))
    return runs, files


def test_viewer_mode_refuses_every_state_changing_callback_and_route(tmp_path):
    from helpers import callback_requests as requests

    data_dir = tmp_path / "data"
    app = create_app(data_dir, runtime.Settings(read_only=True))
    client = app.server.test_client()
    client.get("/")  # Dash adds its page-routing callback at the first request
    store = runtime.store()
    ids = requests.populate(store, data_dir, tmp_path)
    # an upload in progress, as the upload route leaves it
    token = "c" * 32
    folder = data_dir / "uploads" / token
    folder.mkdir(parents=True)
    (folder / "upload.json").write_text('{"filename": "x.csv", "size": 10, "started": 0}')
    (folder / "x.csv").write_bytes(b"a,b\n")
    # values that would write in a writable app: a valid form, edited table cells...
    values = requests.plausible_values(ids, store, valid_config=True)
    by_type = requests.concrete_ids(ids)
    before = stored_state(store, data_dir)

    refused, answers = set(), []
    for output in requests.server_callbacks(app):
        callback = app.callback_map[output]
        for trigger in range(len(callback["inputs"])):
            # the running run's job is alive, as far as the store can tell (else a poll
            # records it as interrupted: a status change that is not the request's doing)
            store.heartbeat(ids["running"])
            body = requests.request_body(app, output, values, by_type, trigger)
            response = client.post("/_dash-update-component", data=json.dumps(body),
                                   content_type="application/json")
            answers.append((output[:50], trigger, response.status_code))
            if response.status_code == 403 or b"read-only" in response.data:
                refused.add(callback["callback"].__name__)
    for request in (client.post("/gato-upload", json={"filename": "y.csv", "size": 5}),
                    client.put(f"/gato-upload/{token}?offset=4", data=b"c,d\n")):
        assert request.status_code == 403 and "read-only" in request.get_json()["error"]

    assert all(code < 500 for *_, code in answers), answers
    assert WRITING_CALLBACKS <= refused, WRITING_CALLBACKS - refused
    assert stored_state(store, data_dir) == before


def test_viewer_mode_starts_no_training_from_a_crafted_job_request(tmp_path):
    """The run page's job stores are not in a viewer's page, but a crafted call of the
    training callback (when there is one) must not train a queued run."""
    import time

    app = create_app(tmp_path, runtime.Settings(read_only=True))
    client = app.server.test_client()
    client.get("/")
    run_id = runtime.store().create_run(CONFIG)
    job = {"type": "run-job", "run": run_id, "load": "0" * 32}
    result = {**job, "type": "run-job-result"}
    output = next((key for key in app.callback_map if '"run-job-result"' in key),
                  '{"load":["MATCH"],"run":["MATCH"],"type":"run-job-result"}.data')
    body = {"output": output, "outputs": {"id": result, "property": "data"},
            "inputs": [{"id": job, "property": "data", "value": {"run": run_id,
                                                                   "load": "0" * 32}}],
            "changedPropIds": [json.dumps(job, sort_keys=True, separators=(",", ":"))
                               + ".data"]}
    response = client.post("/_dash-update-component", data=json.dumps(body),
                           content_type="application/json")
    assert response.status_code in (400, 403), response.data[:200]  # refused, or no such callback
    time.sleep(1.0)  # a job process would have claimed the run by now
    assert runtime.store().get_run(run_id)["status"] == "queued"


def test_a_chunked_callback_body_is_limited_like_one_with_a_length(tmp_path):
    """Without a Content-Length (Transfer-Encoding: chunked) the body is cut off at the
    same limit: a 413, not a server reading all of it (a real server: the test client
    never sends chunked bodies)."""
    import socket
    import threading

    from werkzeug.serving import make_server

    from gato_dash import security

    app = create_app(tmp_path)
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=30) as sock:
            sock.sendall(b"POST /_dash-update-component HTTP/1.1\r\nHost: localhost\r\n"
                         b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            piece = b" " * (1024 * 1024)  # JSON whitespace: fine to parse, were it read
            try:
                for _ in range(security.MAX_CALLBACK_BYTES // len(piece) + 2):
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sock.sendall(b"2\r\n{}\r\n0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered and closed before the end of the body
            answer = sock.recv(4096)
    finally:
        server.shutdown()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


def test_nan_and_infinity_in_a_callback_body_are_refused(app, client):
    body = json.dumps(poll_body(app, live.initial_state("x"))).replace('"n_intervals", '
                                                                       '"value": 1', '"n_intervals", "value": NaN')
    assert "NaN" in body
    response = client.post("/_dash-update-component", data=body,
                           content_type="application/json")
    assert response.status_code == 400 and b"NaN" in response.data


def test_safe_json_refuses_what_no_request_holds():
    from gato_dash.security import MAX_JSON_DEPTH, BadJson, safe_json

    assert safe_json(b'{"a": [1, 2.5, "x", null]}') == {"a": [1, 2.5, "x", None]}
    assert safe_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)  # deep enough for us
    for bad in (b"[NaN]", b"Infinity", b"-Infinity", b"[" * 100_000 + b"]" * 100_000,
                b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), b"\xff", b"{",
                b""):
        with pytest.raises(BadJson):
            safe_json(bad)


def test_a_change_of_many_pattern_matching_inputs_is_a_valid_request(app, client):
    """dash-renderer lists every changed component in changedPropIds: a preset fills all
    of the New-run form's fields at once, so its check gets one entry per field."""
    from gato_dash.pages import new_run

    output = next(key for key in app.callback_map if key.startswith('..{"name":["ALL"],"type":"cfg"}.invalid'))
    outputs = [[{"id": {"type": "cfg", "name": n}, "property": "invalid"}
                for n in new_run.FORM_FIELDS],
               [{"id": {"type": "cfg-msg", "name": n}, "property": "children"}
                for n in new_run.FORM_FIELDS]] + [
        {"id": i, "property": p} for i, p in (("new-run-button", "disabled"),
                                              ("new-problems", "children"),
                                              ("new-query", "data"),
                                              ("new-snapshot-cost", "children"))]
    fields = [{"type": "cfg", "name": n} for n in new_run.FORM_FIELDS]
    values = new_run.form_values(new_run.scenario_defaults("one_d"))
    body = {"output": output, "outputs": outputs,
            "inputs": [[{"id": f, "property": "value", "value": values[f["name"]]}
                        for f in fields],
                       {"id": "new-scenario", "property": "value", "value": "one_d"},
                       {"id": "new-name", "property": "value", "value": ""}],
            "state": [[{"id": f, "property": "id", "value": f} for f in fields]],
            "changedPropIds": [json.dumps(f, sort_keys=True, separators=(",", ":")) + ".value"
                               for f in fields]}
    response = client.post("/_dash-update-component", data=json.dumps(body),
                           content_type="application/json")
    assert response.status_code == 200, response.data[:300]
