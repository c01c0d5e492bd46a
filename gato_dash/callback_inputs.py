"""What each callback input and state may hold: one declared rule per (component, property).

The browser sends every input and state of a callback as JSON it controls, so a crafted
request can put any value anywhere: a string where a K belongs, 10**30 clicks, a list of
dicts as a run id. gato_dash.security checks every value of a callback request against
the rule declared here before Dash calls the callback, and answers 400 when one does not
fit; the callbacks then only meet values of the declared type and range (what those
values mean, e.g. whether a run with that id exists, stays their job).

Rules are keyed by the component id, or for a pattern-matching id by its ``type``, and
the property. A dependency of a registered callback with no rule here is refused, so a
new callback cannot slip past the check (tests/test_callback_fuzz.py checks that every
registered callback's dependencies have one).
"""
from __future__ import annotations

import math
import re
from typing import Callable

Rule = Callable[[object], "str | None"]  # the problem with a value, or None

#: Largest counter a browser sends (clicks, interval ticks, refresh counters): JavaScript's
#: largest safe integer; a bigger one overflows SQLite and is never sent by a real page.
MAX_COUNTER = 2**53
#: A category count anywhere in the app (RunConfig allows 2 to 50)
MAX_K = 1000
#: Plain text typed into a field (names, notes, filters, paths)
MAX_TEXT = 4096
#: An address's path or query: a link carries a whole view (a compare view of six runs
#: with its settings is a few KB; tests/browser/test_page_by_address.py opens one of 6 KB)
MAX_ADDRESS = 64 * 1024
#: An archive the Runs page imports arrives base64-encoded (importer: at most 64 MB)
MAX_UPLOAD_TEXT = 96 * 1024 * 1024
#: Rows a table component may send back (the Runs table has one per stored run)
MAX_ROWS = 100_000
#: Entries of a list-valued control (multi-select dropdowns, pattern-matching ALL groups)
MAX_ITEMS = 1000
RUN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


# ----- building blocks ----------------------------------------------------------------------
def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def optional(rule: Rule) -> Rule:
    def check(value):
        return None if value is None else rule(value)
    return check


def integer(lo: int, hi: int) -> Rule:
    def check(value):
        if not _is_int(value) or not lo <= value <= hi:
            return f"is not a whole number from {lo} to {hi}"
        return None
    return check


def number(lo: float, hi: float) -> Rule:
    def check(value):
        if not _is_number(value) or not lo <= value <= hi:
            return f"is not a finite number from {lo:g} to {hi:g}"
        return None
    return check


def text(max_chars: int = MAX_TEXT) -> Rule:
    def check(value):
        if not isinstance(value, str):
            return "is not text"
        if len(value) > max_chars:
            return f"has more than {max_chars} characters"
        return None
    return check


def choice(*allowed) -> Rule:
    def check(value):
        return None if isinstance(value, str) and value in allowed else "is not one of the choices"
    return check


def flag(value):
    return None if isinstance(value, bool) else "is not true or false"


def list_of(rule: Rule, max_items: int = MAX_ITEMS) -> Rule:
    def check(value):
        if not isinstance(value, list):
            return "is not a list"
        if len(value) > max_items:
            return f"has more than {max_items} entries"
        for item in value:
            problem = rule(item)
            if problem:
                return f"has an entry that {problem}"
        return None
    return check


def one_of(*rules: Rule) -> Rule:
    def check(value):
        problems = [rule(value) for rule in rules]
        return None if any(p is None for p in problems) else problems[0]
    return check


def mapping(value_rule: Rule, max_items: int = 100, key_chars: int = 128) -> Rule:
    """A JSON object with short text keys whose values all fit ``value_rule``."""
    def check(value):
        if not isinstance(value, dict):
            return "is not an object"
        if len(value) > max_items:
            return f"has more than {max_items} entries"
        for key, item in value.items():
            if len(key) > key_chars:
                return "has a key that is too long"
            problem = value_rule(item)
            if problem:
                return f"has an entry {key[:40]!r} that {problem}"
        return None
    return check


def scalar(value):
    """A short JSON value that is not a container (what a table cell or a query holds)."""
    if value is None or isinstance(value, bool) or _is_number(value):
        return None
    if isinstance(value, str):
        return None if len(value) <= MAX_TEXT else f"has more than {MAX_TEXT} characters"
    return "is not a plain value"


def run_id(value):
    return None if isinstance(value, str) and RUN_ID.match(value) else "is not a run id"


# ----- the rules ----------------------------------------------------------------------------
CLICKS = optional(integer(0, MAX_COUNTER))
COUNTER = optional(integer(-1, MAX_COUNTER))
SWITCH = optional(flag)
K = optional(integer(1, MAX_K))
TEXT = optional(text())
#: a dropdown value: one choice, several, or none
PICKED = optional(one_of(text(), list_of(text(), 200)))
#: a number typed into an <input type="number"> (a field being typed in may still be text)
TYPED_NUMBER = optional(one_of(number(-1e300, 1e300), text(64)))
#: the view a run page's link asked for (Dash Pages' parsed query: text, or a list of them)
QUERY = optional(mapping(one_of(text(MAX_ADDRESS), list_of(text(MAX_ADDRESS), 20))))
#: one Runs-table row as the table sends it back
TABLE_ROWS = optional(list_of(mapping(one_of(scalar, list_of(scalar, 100)), 64), MAX_ROWS))
#: what the Datasets page keeps about one source file
SOURCE_ENTRY = mapping(optional(text()), 16)
INSPECTED_COLUMN = mapping(one_of(scalar, list_of(scalar, 10_000)), 16)
INSPECTED_TABLE = mapping(one_of(scalar, list_of(INSPECTED_COLUMN, 10_000)), 16)
#: one tree of an added ROOT file: {"source", "tree", "entries", "branches": [names]}
ROOT_TREE = mapping(one_of(scalar, list_of(text(), 10_000)), 8)
CONFIG_VALUE = optional(one_of(text(), number(-1e300, 1e300)))

def path(value):
    """An address's path, as the browser's location gives it."""
    return None if isinstance(value, str) and value.startswith("/") \
        and len(value) <= MAX_ADDRESS else "is not the path of an address"


RULES: dict[tuple[str, str], Rule] = {
    # Dash Pages' router (the address bar)
    ("_pages_location", "pathname"): path,
    ("_pages_location", "search"): optional(text(MAX_ADDRESS)),
    # run page
    ("run-poll", "n_intervals"): CLICKS,
    ("run-poll-watchdog", "n_intervals"): CLICKS,
    ("run-k", "value"): K,
    # cleaned key by key by gato_dash.live.clean_state
    ("run-state", "data"): optional(mapping(one_of(scalar, list_of(scalar, 20)), 32)),
    ("run-view", "data"): QUERY,
    ("run-cancel", "n_clicks"): CLICKS,
    ("run-job", "data"): optional(mapping(optional(text(128)), 4)),
    # results section of the run page
    ("results-run-id", "data"): optional(run_id),
    ("results-k", "value"): K,
    ("results-k", "options"): optional(list_of(mapping(scalar, 8), MAX_K)),
    ("results-k-default", "data"): K,
    ("results-density", "value"): SWITCH,
    ("results-log", "value"): SWITCH,
    ("results-prefilled", "data"): SWITCH,
    ("results-tabs", "value"): optional(text(64)),
    ("results-dl-report-btn", "n_clicks"): CLICKS,
    ("results-dl-json-btn", "n_clicks"): CLICKS,
    ("results-dl-csv-btn", "n_clicks"): CLICKS,
    ("results-dl-params-btn", "n_clicks"): CLICKS,
    ("results-dl-bundle-btn", "n_clicks"): CLICKS,
    ("results-dl-bundle-k-btn", "n_clicks"): CLICKS,
    # compare page
    ("compare-run-ids", "data"): optional(list_of(run_id, 6)),
    ("compare-k-default", "data"): K,
    ("compare-tabs", "value"): optional(text(64)),
    ("compare-diff-only", "value"): SWITCH,
    ("compare-history-k", "value"): K,
    ("compare-history-x", "value"): optional(choice("epoch", "fraction")),
    ("compare-history-log", "value"): SWITCH,
    ("compare-history-smoothing", "value"): optional(number(0, 1)),
    ("compare-categories-k", "value"): K,
    ("compare-categories-log", "value"): SWITCH,
    ("compare-csv-button", "n_clicks"): CLICKS,
    ("compare-history-csv-button", "n_clicks"): CLICKS,
    # home
    ("home-refresh", "n_intervals"): CLICKS,
    # new run
    ("new-scenario", "value"): optional(text(64)),
    ("preset-quick", "n_clicks"): CLICKS,
    ("preset-reference", "n_clicks"): CLICKS,
    ("new-preview-log", "value"): SWITCH,
    ("new-name", "value"): TEXT,
    ("new-run-button", "n_clicks"): CLICKS,
    ("cfg", "value"): CONFIG_VALUE,
    # runs table
    ("runs-filter-scenario", "value"): PICKED,
    ("runs-filter-status", "value"): PICKED,
    ("runs-filter-text", "value"): TEXT,
    ("runs-refresh", "data"): COUNTER,
    ("runs-table", "selected_row_ids"): optional(list_of(one_of(text(128), integer(0, MAX_ROWS)),
                                                         MAX_ROWS)),
    ("runs-table", "selected_rows"): optional(list_of(integer(0, MAX_ROWS), MAX_ROWS)),
    ("runs-table", "data"): TABLE_ROWS,
    ("runs-table", "data_previous"): TABLE_ROWS,
    ("runs-table", "data_timestamp"): optional(integer(0, MAX_COUNTER)),
    ("runs-delete", "n_clicks"): CLICKS,
    ("runs-delete-cancel", "n_clicks"): CLICKS,
    ("runs-delete-confirm", "n_clicks"): CLICKS,
    ("runs-import-upload", "contents"): optional(text(MAX_UPLOAD_TEXT)),
    ("runs-import-upload", "filename"): TEXT,
    ("runs-import-path", "value"): TEXT,
    ("runs-import-folder", "n_clicks"): CLICKS,
    # datasets
    ("datasets-upload-done", "data"): optional(mapping(scalar, 16)),
    ("datasets-add-path", "n_clicks"): CLICKS,
    ("datasets-remove", "n_clicks"): CLICKS,
    ("datasets-path", "value"): TEXT,
    ("datasets-sources", "data"): optional(list_of(SOURCE_ENTRY, 100)),
    ("datasets-source-process", "value"): TEXT,
    ("datasets-inspection", "data"): optional(list_of(INSPECTED_TABLE, 100)),
    ("datasets-process", "value"): PICKED,
    ("datasets-scores", "value"): PICKED,
    ("datasets-weight", "value"): PICKED,
    ("datasets-signals", "value"): PICKED,
    ("datasets-mass", "value"): PICKED,
    ("datasets-window-lo", "value"): TYPED_NUMBER,
    ("datasets-window-hi", "value"): TYPED_NUMBER,
    ("datasets-range-lo", "value"): TYPED_NUMBER,
    ("datasets-range-hi", "value"): TYPED_NUMBER,
    ("datasets-drop-nonfinite", "value"): SWITCH,
    ("datasets-name", "value"): TEXT,
    ("datasets-refresh", "data"): COUNTER,
    ("datasets-import", "n_clicks"): CLICKS,
    # analysis steps at import (parsed and checked by gato_core.import_steps / selection)
    ("datasets-selection", "value"): TEXT,
    ("datasets-luminosity", "value"): TEXT,
    ("datasets-scales", "value"): TEXT,
    ("datasets-systematics", "value"): TEXT,
    ("datasets-trees", "data"): optional(list_of(ROOT_TREE, 1000)),
    ("datasets-tree-use", "value"): SWITCH,
    ("datasets-tree-process", "value"): TEXT,
    ("dataset-rename", "n_clicks"): CLICKS,
    ("dataset-delete", "n_clicks"): CLICKS,
    ("dataset-name", "value"): TEXT,
}
#: The value of a pattern-matching component's "id" property is its id: checked as an id.
ID_PROPERTY = "id"
#: Bounds of one wildcard value of a pattern-matching id (a name, an index, a dataset id)
MAX_ID_TEXT = 128


def rule_key(component_id) -> str | None:
    """The key of a component's rules: its id, or the type of a pattern-matching id."""
    if isinstance(component_id, str):
        return component_id
    if isinstance(component_id, dict) and isinstance(component_id.get("type"), str):
        return component_id["type"]
    return None


def declared_pattern(component_id) -> dict | None:
    """A dependency's declared id as a dict ({"type": ..., "name": ["ALL"]}), else None."""
    if isinstance(component_id, dict):
        return component_id
    if isinstance(component_id, str) and component_id.startswith("{"):
        import json

        try:
            parsed = json.loads(component_id)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def id_problem(given, declared) -> str | None:
    """Whether ``given`` (a concrete id the browser sent) can be an instance of the declared
    id: the same keys, the same fixed values, short text or small integers for wildcards."""
    pattern = declared_pattern(declared)
    if pattern is None:
        return None if given == declared else "names another component"
    if not isinstance(given, dict) or set(given) != set(pattern):
        return "is not an id of the declared pattern"
    for key, wanted in pattern.items():
        value = given[key]
        if isinstance(wanted, list):  # a wildcard: ALL, MATCH, ALLSMALLER
            if isinstance(value, str) and len(value) <= MAX_ID_TEXT:
                continue
            if _is_int(value) and 0 <= value <= MAX_COUNTER:
                continue
            return f"has a {key!r} that is neither short text nor a small whole number"
        if value != wanted:
            return f"has a {key!r} other than the declared one"
    return None


def value_problem(declared, prop: str, entry: dict) -> str | None:
    """What is wrong with one input/state entry of a request, or None."""
    component = entry.get("id")
    problem = id_problem(component, declared)
    if problem:
        return f"the id {problem}"
    if prop == ID_PROPERTY:  # a component's "id" property is its id, nothing else
        return None if entry.get("value") == component else "the value is not the id"
    rule = RULES.get((rule_key(declared_pattern(declared) or declared), prop))
    if rule is None:
        return "has no declared rule (gato_dash.callback_inputs.RULES)"
    problem = rule(entry.get("value"))
    return f"the value {problem}" if problem else None


def has_rule(declared, prop: str) -> bool:
    return prop == ID_PROPERTY or (
        rule_key(declared_pattern(declared) or declared), prop) in RULES


def request_problem(callback: dict, body: dict) -> str | None:
    """What is wrong with the values of a callback request (``callback``: its entry of
    app.callback_map, ``body``: the request's JSON, already checked for its shape)."""
    for key in ("inputs", "state"):
        for declared, given in zip(callback.get(key, []), body.get(key, [])):
            prop = declared["property"]
            wildcard = isinstance(declared_pattern(declared["id"]), dict) and any(
                isinstance(v, list) and v and v[0] in ("ALL", "ALLSMALLER")
                for v in declared_pattern(declared["id"]).values())
            entries = given if isinstance(given, list) else [given]
            if wildcard and not isinstance(given, list):
                return f"{key}: {_label(declared)} is not a list of components"
            if not wildcard and isinstance(given, list):
                return f"{key}: {_label(declared)} is a list where one component belongs"
            if len(entries) > MAX_ITEMS:
                return f"{key}: {_label(declared)} has more than {MAX_ITEMS} components"
            for entry in entries:
                if entry.get("property") != prop:
                    return f"{key}: {_label(declared)} names another property"
                problem = value_problem(declared["id"], prop, entry)
                if problem:
                    return f"{key}: {_label(declared)}: {problem}"
    return None


def same_components_problem(callback: dict, body: dict, output: str,
                            outputs: list) -> str | None:
    """Dependencies with one pattern-matching id (an ALL output and the ALL state of its
    ids, say) stand for the same components on the page: the callbacks zip them, so a
    request that lists different components for them is not one a page sends."""
    seen: dict[str, list] = {}
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    pairs = [(part.rsplit(".", 1)[0], given) for part, given in zip(parts, outputs)]
    for key in ("inputs", "state"):
        pairs += [(dep["id"], given)
                  for dep, given in zip(callback.get(key, []), body.get(key, []))]
    for declared, given in pairs:
        if not isinstance(given, list):
            continue
        components = [entry.get("id") for entry in given]
        if seen.setdefault(declared, components) != components:
            return f"{declared} lists other components in another place of the request"
    return None


def _label(declared) -> str:
    component = declared_pattern(declared["id"]) or declared["id"]
    return f"{rule_key(component) or component}.{declared['property']}"
