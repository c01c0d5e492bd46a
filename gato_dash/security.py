"""What the server checks before Dash sees a request: the password, the shape of callback
requests, and addresses of files that do not exist.

- ``GATO_PASSWORD`` (an environment variable, never a command-line flag: those show in
  ``ps``) puts every address behind HTTP basic authentication. Any user name works; the
  password is compared in constant time.
- A callback request must be a JSON object (``safe_json``: no NaN or Infinity, nested at
  most ``MAX_JSON_DEPTH`` deep) naming a registered server-side callback with as many
  inputs and states as it declares, each value fitting the rule declared for its component
  and property (gato_dash.callback_inputs); anything else is answered 400 with a short
  message before Dash parses it (Dash or the callback would raise on it and answer 500).
  What the values mean (does that run exist) stays each callback's job.
- A callback request's body is read up to ``MAX_CALLBACK_BYTES`` (``limited_body``), also
  when it comes in chunks without a Content-Length: 413 beyond. Other routes get Flask's
  ``MAX_CONTENT_LENGTH`` as a ceiling.
- A write asked of a read-only server (``runtime.require_writable``) is answered here: a
  route gets 403, a callback shows the refusal in the page's notice and changes nothing.
- A request for a component file outside Dash's registered libraries (``../`` and such) is
  a 404, not a 500.
"""
from __future__ import annotations

import hmac
import json
import logging

import dash
from dash.exceptions import DependencyException
from flask import Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from . import callback_inputs, runtime

log = logging.getLogger(__name__)

PASSWORD_VARIABLE = "GATO_PASSWORD"
CALLBACK_PATH = "_dash-update-component"
#: a callback body larger than this is refused; the app's own are a few KB, and uploads
#: of result archives (base64 in the body) are capped by the importer at 64 MB
MAX_CALLBACK_BYTES = 96 * 1024 * 1024
#: No request of this app nests JSON deeper than a few levels; a body nested thousands deep
#: would exhaust the parser's recursion (a RecursionError, answered 500 before)
MAX_JSON_DEPTH = 64
#: The app shell's notice (gato_dash.app) where a refused write says why
READ_ONLY_NOTICE = "read-only-notice"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def install(app, password: str | None = None) -> None:
    """Attach the checks to ``app`` (a dash.Dash); ``password`` None or "" means none."""
    server = app.server
    callback_path = app.config.routes_pathname_prefix + CALLBACK_PATH
    # Werkzeug enforces this on the bytes read, so it also bounds a chunked body (no
    # Content-Length): reading past it raises RequestEntityTooLarge, a 413.
    limit = server.config.get("MAX_CONTENT_LENGTH")
    server.config["MAX_CONTENT_LENGTH"] = min(limit or MAX_CALLBACK_BYTES, MAX_CALLBACK_BYTES)

    @server.before_request
    def _check_request():
        if password and not _authorised(password):
            return Response("This GATO Dashboard needs a password.", 401,
                            {"WWW-Authenticate": 'Basic realm="GATO Dashboard"'})
        if request.path == callback_path and request.method == "POST":
            limited_body(MAX_CALLBACK_BYTES)
            problem = callback_problem(app.callback_map)
            if problem:
                log.warning("refused a callback request: %s", problem)
                return Response(f"Bad callback request: {problem}", 400,
                                mimetype="text/plain")
        return None

    @server.errorhandler(DependencyException)
    def _unknown_file(_error):
        return Response("Not found", 404, mimetype="text/plain")

    @server.errorhandler(runtime.ReadOnlyError)
    def _read_only(error):
        # JSON with "error": what the upload script (assets/chunked_upload.js) shows
        return Response(json.dumps({"error": str(error)}), 403, mimetype="application/json")


def callback_error(error: Exception):
    """The app's ``on_error`` for callbacks: a refused write shows its message in the page's
    notice and updates nothing; any other error goes on as it would without this handler."""
    if isinstance(error, runtime.ReadOnlyError):
        dash.set_props(READ_ONLY_NOTICE, {"children": str(error), "is_open": True})
        return None
    raise error


def limited_body(limit: int) -> bytes:
    """The request's body (kept for later reads, Dash's included), or a 413 when it has
    more than ``limit`` bytes, with or without a Content-Length.

    Werkzeug stops reading a chunked body at ``max_content_length`` without an error (the
    body is silently cut there), so the stream is allowed one byte more: a body that has
    it is too large. Memory stays bounded by ``limit``."""
    request.max_content_length = limit + 1
    data = request.get_data(cache=True)
    if len(data) > limit:
        raise RequestEntityTooLarge(f"A request body has at most {limit} bytes here.")
    return data


class BadJson(ValueError):
    """A request body that is not JSON this app accepts; the message says why."""


def safe_json(data: bytes | str):
    """The JSON value of a request body, refusing what the standard parser would take but no
    request of this app holds: NaN and Infinity (JavaScript's JSON never writes them) and
    nesting deeper than MAX_JSON_DEPTH (a RecursionError). Raises BadJson."""
    def no_constants(name):
        raise BadJson(f"{name} is not a JSON number")

    try:
        value = json.loads(data, parse_constant=no_constants)
    except RecursionError:
        raise BadJson(f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except UnicodeDecodeError:
        raise BadJson("the body is not UTF-8 text") from None
    except BadJson:
        raise
    except ValueError as exc:
        raise BadJson(f"the body is not JSON ({exc})") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise BadJson(f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep")
    return value


def json_depth(value) -> int:
    """How deep lists and objects nest in a parsed JSON value (iterative: no recursion)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_JSON_DEPTH:  # no need to look deeper than the refusal
            pending.extend((child, depth + 1) for child in item
                           if isinstance(child, (list, dict)))
    return deepest


def _authorised(password: str) -> bool:
    auth = request.authorization
    given = (auth.password or "") if auth is not None else ""
    return hmac.compare_digest(given.encode("utf-8"), password.encode("utf-8"))


def callback_problem(callback_map: dict) -> str | None:
    """What is wrong with the current request as a call of a registered callback, or None."""
    if (request.content_length or 0) > MAX_CALLBACK_BYTES:
        return "the request is too large"
    if not request.is_json:
        return "the body is not a JSON object"
    try:
        body = safe_json(request.get_data(cache=True))
    except BadJson as exc:
        return str(exc)
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    output = body.get("output")
    if not isinstance(output, str) or output not in callback_map:
        return "it names no callback of this app"
    declared = callback_map[output]
    if "callback" not in declared:
        return "it names a callback that runs in the browser"
    for key in ("inputs", "state"):
        given = body.get(key, [])
        if not isinstance(given, list):
            return f"{key} is not a list"
        if len(given) != len(declared.get(key, [])):
            return f"{key} do not match the callback"
        for item in given:
            # a pattern-matching ALL input is a list of these
            for entry in (item if isinstance(item, list) else [item]):
                if not _is_dependency(entry):
                    return f"an entry of {key} is not an id/property pair"
    outputs = body.get("outputs")
    if output.startswith(".."):  # several outputs: "..a.prop...b.prop.."
        if not isinstance(outputs, list) or len(outputs) != len(output[2:-2].split("...")):
            return "outputs do not match the callback"
    else:
        outputs = [outputs]
    for entry in outputs:
        if not all(_is_dependency(e) for e in (entry if isinstance(entry, list) else [entry])):
            return "an entry of outputs is not an id/property pair"
    changed = body.get("changedPropIds", [])
    # one entry per changed component: a pattern-matching input has many
    if not isinstance(changed, list) or len(changed) > callback_inputs.MAX_ITEMS:
        return "changedPropIds is not a list of the inputs"
    if not all(_is_prop_id(entry) for entry in changed):
        return "changedPropIds holds something that is not an id.property"
    problem = (_outputs_problem(output, outputs)
               or callback_inputs.request_problem(declared, body)
               or callback_inputs.same_components_problem(declared, body, output, outputs))
    if problem:
        return problem
    return None


def _is_prop_id(entry) -> bool:
    """A changedPropIds entry: "id.property", the id a JSON object for pattern-matching ones
    (Dash parses it to tell the callback what triggered it)."""
    if not isinstance(entry, str) or "." not in entry or len(entry) > 1024:
        return False
    component = entry.rsplit(".", 1)[0]
    if not component.startswith("{"):
        return True
    try:
        return isinstance(safe_json(component), dict)
    except BadJson:
        return False


def _outputs_problem(output: str, outputs: list) -> str | None:
    """Each output a request names must be an instance of the callback's declared output
    (callbacks read the ids of pattern-matching outputs, e.g. a figure's name)."""
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    for part, given in zip(parts, outputs):
        declared_id, prop = part.rsplit(".", 1)
        prop = prop.split("@", 1)[0]  # allow_duplicate outputs carry "@<hash>"
        for entry in (given if isinstance(given, list) else [given]):
            if entry.get("property").split("@", 1)[0] != prop:
                return "an entry of outputs names another property"
            problem = callback_inputs.id_problem(entry.get("id"), declared_id)
            if problem:
                return f"an entry of outputs {problem}"
    return None


def _is_dependency(entry) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("property"), str)
            and isinstance(entry.get("id"), (str, dict)))


def exposed_without_password(host: str, password: str | None) -> bool:
    """True when the server would listen beyond this machine with no password."""
    return host not in LOOPBACK_HOSTS and not password
