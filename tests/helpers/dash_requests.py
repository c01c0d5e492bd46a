"""Call the app's callbacks the way the browser does: a POST to /_dash-update-component with
the body dash-renderer sends, through Flask's test client. What a test sees is then what
the browser gets (the JSON answer, or a status code), with Dash choosing ``dash.ctx``
itself; nothing of Dash is mocked.
"""
from __future__ import annotations

import json


def callback_body(app, first_output: str, values: dict, changed: list[str]) -> dict:
    """The request body for the callback whose outputs start with ``first_output``
    ("component-id.property"): every input and state gets ``values["id.property"]``
    (None if not given), ``changed`` lists the "id.property" that triggered it."""
    key = next(k for k in app.callback_map
               if k == first_output or k.startswith(f"..{first_output}..")
               or k.startswith(f"{first_output}"))
    spec = app.callback_map[key]
    outputs = [dict(zip(("id", "property"), part.rsplit(".", 1)))
               for part in key.strip(".").split("...")]

    def dependencies(kind):
        return [{"id": d["id"], "property": d["property"],
                 "value": values.get(f"{d['id']}.{d['property']}")} for d in spec[kind]]

    return {"output": key, "outputs": outputs if key.startswith("..") else outputs[0],
            "inputs": dependencies("inputs"), "state": dependencies("state"),
            "changedPropIds": list(changed)}


def post_callback(app, first_output: str, values: dict, changed: list[str]):
    """POST the callback; returns (status code, {"id.property": value} of the answer)."""
    body = callback_body(app, first_output, values, changed)
    response = app.server.test_client().post("/_dash-update-component",
                                             data=json.dumps(body),
                                             content_type="application/json")
    if response.status_code != 200:
        return response.status_code, {}
    answer = response.get_json()["response"]
    return 200, {f"{component}.{prop}": value
                 for component, props in answer.items() for prop, value in props.items()}
