"""Every callback the real app registers, called with hostile values: no 5xx, no exception.

The app runs on a populated store (finished runs with results, a queued and a running run,
an imported dataset). Each server-side callback (pattern-matching ones included) is called
with plausible values everywhere (real ids, as a page holds them) except one input or
state at a time, which gets each of HOSTILE in turn (raw JSON: NaN and a 100 000-deep list
included); pattern-matching ids get wrong types. Every answer must be below 500 and no
exception may reach the log. Deterministic (fixed order, fixed values); about 30 s here.

The app has no background callbacks (runs start on the server, gato_dash.runtime.dispatch),
so every server-side callback is called; a callback that starts work would be fuzzed too.
"""
from __future__ import annotations

import json
import logging

import pytest

from gato_dash import callback_inputs, runtime
from gato_dash.app import create_app
from helpers import callback_requests as requests

DEEP = 100_000
#: Raw JSON fragments, each put in place of one value
HOSTILE = ("null", '""', json.dumps("x" * 5000), "-1", str(10**30), str(-(10**30)), "NaN",
           "Infinity", "-Infinity", "[]", "{}", "[" * DEEP + "]" * DEEP, "true", "1.5",
           '{"a": [1, {"b": null}]}', '["x", 1, null, {}]', json.dumps([10**30, "y" * 5000]))


def hostile_ids(declared: dict) -> list:
    """Ids of a pattern-matching dependency that a page never has."""
    wild = next((k for k, v in declared.items() if isinstance(v, list)),
                next(k for k in declared if k != "type"))
    base = {k: v for k, v in declared.items() if not isinstance(v, list)}
    return [{**base, wild: 10**30}, {**base, wild: {"a": 1}}, {**base, wild: None},
            {**base, wild: "z" * 5000}, {**base, wild: [1]}, base, "not-a-dict", 7,
            {**base, wild: "x", "extra": 1}, {**{k: 5 for k in declared}}]


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    app = create_app(data_dir)
    app.server.test_client().get("/")  # Dash adds its page-routing callback at the first request
    ids = requests.populate(runtime.store(), data_dir, tmp_path_factory.mktemp("files"))
    return app, ids


def cases(app, ids):
    """(label, output, body with a hole, fragment) for every hostile value everywhere."""
    values = requests.plausible_values(ids, runtime.store())
    by_type = requests.concrete_ids(ids)
    for output in requests.server_callbacks(app):
        callback = app.callback_map[output]
        n_inputs = len(callback["inputs"])
        for key in ("inputs", "state"):
            for index, dep in enumerate(callback.get(key, [])):
                trigger = index if key == "inputs" else 0
                label = f"{output[:60]} {key}[{index}] {dep['id']}.{dep['property']}"
                declared = requests.parse_id(dep["id"])
                holes = [False, True] if isinstance(declared, dict) else [False]
                for entry in holes:
                    body = requests.request_body(app, output, values, by_type, trigger,
                                                 hole=(key, index), hole_entry=entry)
                    for fragment in HOSTILE:
                        yield label, body, fragment
                if isinstance(declared, dict):
                    for wrong in hostile_ids(declared):
                        body = requests.request_body(app, output, values, by_type, trigger)
                        entry = body[key][index]
                        target = entry[0] if isinstance(entry, list) and entry else entry
                        if isinstance(target, dict):
                            target["id"] = wrong
                        yield f"{label} id={str(wrong)[:30]}", body, None
        assert n_inputs  # a callback without inputs would never be called


def test_every_callback_dependency_has_a_declared_rule(fuzzed_app):
    app, _ = fuzzed_app
    missing = [f"{dep['id']}.{dep['property']}"
               for output in requests.server_callbacks(app)
               for key in ("inputs", "state")
               for dep in app.callback_map[output].get(key, [])
               if not callback_inputs.has_rule(dep["id"], dep["property"])]
    assert missing == []


def test_plausible_calls_of_every_callback_succeed(fuzzed_app):
    """The fuzz's baseline is what pages send: it must pass the boundary, or the fuzz would
    only ever test the 400 path."""
    app, ids = fuzzed_app
    values = requests.plausible_values(ids, runtime.store())
    by_type = requests.concrete_ids(ids)
    client = app.server.test_client()
    refused = []
    for output in requests.server_callbacks(app):
        body = requests.request_body(app, output, values, by_type)
        response = client.post("/_dash-update-component", data=json.dumps(body),
                               content_type="application/json")
        if response.status_code not in (200, 204):
            refused.append((output[:60], response.status_code, response.data[:200]))
    assert refused == []


def test_hostile_values_in_every_callback_give_no_server_error(fuzzed_app, caplog):
    app, ids = fuzzed_app
    client = app.server.test_client()
    failures, count = [], 0
    caplog.set_level(logging.ERROR)
    for label, body, fragment in cases(app, ids):
        count += 1
        caplog.clear()
        response = client.post("/_dash-update-component",
                               data=requests.encode(body, fragment),
                               content_type="application/json")
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        if response.status_code >= 500 or errors:
            failures.append(f"{response.status_code} {label} <- {(fragment or '')[:40]}"
                            + (f" logged: {errors[0].getMessage()[:80]}" if errors else ""))
    print(f"\n{count} hostile calls, {len(failures)} server errors")
    assert count > 1500
    assert failures == [], f"{len(failures)} of {count}:\n" + "\n".join(failures[:60])


@pytest.mark.parametrize("path", ["/_dash-update-component"])
def test_deeply_nested_json_is_a_400(fuzzed_app, path):
    app, _ = fuzzed_app
    response = app.server.test_client().post(path, data="[" * DEEP + "]" * DEEP,
                                             content_type="application/json")
    assert response.status_code == 400
    assert b"nested" in response.data
