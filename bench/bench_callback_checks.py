"""What the callback-request checks (gato_dash.security + gato_dash.callback_inputs) cost.

Prints, measured in one run on a populated store:
- a run page's poll and a Runs-table refresh: the whole request through the test client,
  and the checks alone on the same body (their share of the request's time);
- the checks alone on a 64 MB archive import body (safe_json parses it once more
  before Dash does), against the plain json.loads Dash does anyway.

``python bench/bench_callback_checks.py [--rounds 30]``
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def median_seconds(action, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        tick = time.perf_counter()
        action()
        times.append(time.perf_counter() - tick)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)

    from flask import request

    from gato_dash import runtime, security
    from gato_dash.app import create_app
    from helpers import callback_requests as requests

    folder = Path(tempfile.mkdtemp())
    app = create_app(folder / "data")
    client = app.server.test_client()
    client.get("/")
    ids = requests.populate(runtime.store(), folder / "data", folder)
    values = requests.plausible_values(ids, runtime.store())
    by_type = requests.concrete_ids(ids)

    def body_for(fragment: str) -> str:
        output = next(k for k in requests.server_callbacks(app) if fragment in k)
        return json.dumps(requests.request_body(app, output, values, by_type))

    print(f"{'request':28} {'checked ms':>11} {'checks ms':>10} {'share':>7}")
    for label, fragment in (("run page poll", "run-state.data"),
                            ("runs table refresh", "runs-table.data")):
        body = body_for(fragment)

        def send():
            response = client.post("/_dash-update-component", data=body,
                                   content_type="application/json")
            assert response.status_code in (200, 204), response.data[:200]

        def check_only():
            with app.server.test_request_context("/_dash-update-component", method="POST",
                                                 data=body,
                                                 content_type="application/json"):
                assert security.callback_problem(app.callback_map) is None
                request.get_json()

        whole = median_seconds(send, args.rounds)
        checks = median_seconds(check_only, args.rounds)
        print(f"{label:28} {whole * 1e3:11.2f} {checks * 1e3:10.3f} {checks / whole:7.1%}")

    # an archive import: the body is one big base64 string
    contents = "data:application/zip;base64," + "A" * (64 * 1024 * 1024)
    big = json.loads(body_for("runs-import-message"))
    big["inputs"][0]["value"] = contents
    data = json.dumps(big).encode()
    parse = median_seconds(lambda: json.loads(data), 3)
    checks = median_seconds(lambda: security.safe_json(data), 3)
    print(f"64 MB import body: json.loads {parse * 1e3:.0f} ms, safe_json {checks * 1e3:.0f} ms "
          f"(ratio {checks / parse:.2f}; the request parses it twice: +{checks * 1e3:.0f} ms)")


if __name__ == "__main__":
    main()
