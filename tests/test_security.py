"""Requests a browser of this app never sends: crafted callback bodies, odd paths, no
password. Each gets a short 4xx (or no update) and leaves the store as it was."""
from __future__ import annotations

import base64
import json

import pytest

from gato_dash import live, runtime
from gato_dash.app import create_app

CONFIG = {"scenario": "one_d", "n_signal": 2000, "n_bkg": 6000, "epochs": 5, "n_cats": [3]}


def registered_anew():
    """Dash hands callbacks registered at import to the first app that starts in a process;
    these tests call them through this module's own app, so they register them again."""
    import importlib

    from gato_dash import results_section

    importlib.reload(results_section)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    registered_anew()
    app = create_app(tmp_path_factory.mktemp("data"))
    app.server.test_client().get("/")  # Dash registers its callbacks at the first request
    return app


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
    assert response.status_code in (200, 204), response.data[:300]
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
    assert "read-only" in response.data.decode()
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
    assert response.status_code == 204  # no update: there is no such run
