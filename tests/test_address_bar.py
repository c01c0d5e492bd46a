"""assets/gato_clientside.js: the one script that keeps a page's view query in the address
bar (gato_dash.address_bar), run in node against a stand-in for the browser's window."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "assets" / "gato_clientside.js"

HARNESS = """
const calls = [];
global.window = {
  dash_clientside: {no_update: "NO_UPDATE"},
  location: {pathname: "/runs/abc", search: SEARCH},
  history: {state: {page: 1}, replaceState: (state, title, url) => calls.push([state, url])},
};
require(SCRIPT);
const out = window.dash_clientside.gato.replace_query(QUERY);
console.log(JSON.stringify({out, calls, kept: window.dash_clientside.no_update}));
"""


def replace_query(query, search=""):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    code = (HARNESS.replace("SCRIPT", json.dumps(str(SCRIPT)))
            .replace("SEARCH", json.dumps(search)).replace("QUERY", json.dumps(query)))
    done = subprocess.run([node, "-e", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_new_query_replaces_the_address_without_a_history_entry():
    seen = replace_query("k=5&tab=spectra")
    assert seen["out"] == "k=5&tab=spectra"
    assert seen["calls"] == [[{"page": 1}, "/runs/abc?k=5&tab=spectra"]]
    assert seen["kept"] == "NO_UPDATE"  # the namespace is added, Dash's own kept


def test_the_default_view_drops_the_query():
    assert replace_query("", search="?k=5")["calls"] == [[{"page": 1}, "/runs/abc"]]


def test_an_unchanged_query_and_no_query_leave_the_address_alone():
    assert replace_query("k=5", search="?k=5")["calls"] == []
    seen = replace_query(None, search="?k=5")
    assert seen["calls"] == [] and seen["out"] == "NO_UPDATE"
