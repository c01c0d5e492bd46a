"""What the server checks before Dash sees a request: the password, the shape of callback
requests, and addresses of files that do not exist.

- ``GATO_PASSWORD`` (an environment variable, never a command-line flag: those show in
  ``ps``) puts every address behind HTTP basic authentication. Any user name works; the
  password is compared in constant time.
- A callback request must be a JSON object naming a registered callback with as many
  inputs and states as it declares; anything else is answered 400 with a short message
  before Dash parses it (Dash would raise on it and answer 500). What the values mean is
  each callback's job to check: nothing here knows what a K is.
- A request for a component file outside Dash's registered libraries (``../`` and such) is
  a 404, not a 500.
"""
from __future__ import annotations

import hmac
import logging

from dash.exceptions import DependencyException
from flask import Response, request

log = logging.getLogger(__name__)

PASSWORD_VARIABLE = "GATO_PASSWORD"
CALLBACK_PATH = "_dash-update-component"
#: a callback body larger than this is refused; the app's own are a few KB, and uploads
#: of result archives (base64 in the body) are capped by the importer at 64 MB
MAX_CALLBACK_BYTES = 96 * 1024 * 1024
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def install(app, password: str | None = None) -> None:
    """Attach the checks to ``app`` (a dash.Dash); ``password`` None or "" means none."""
    server = app.server
    callback_path = app.config.routes_pathname_prefix + CALLBACK_PATH

    @server.before_request
    def _check_request():
        if password and not _authorised(password):
            return Response("This GATO Dashboard needs a password.", 401,
                            {"WWW-Authenticate": 'Basic realm="GATO Dashboard"'})
        if request.path == callback_path and request.method == "POST":
            problem = callback_problem(app.callback_map)
            if problem:
                log.warning("refused a callback request: %s", problem)
                return Response(f"Bad callback request: {problem}", 400,
                                mimetype="text/plain")
        return None

    @server.errorhandler(DependencyException)
    def _unknown_file(_error):
        return Response("Not found", 404, mimetype="text/plain")


def _authorised(password: str) -> bool:
    auth = request.authorization
    given = (auth.password or "") if auth is not None else ""
    return hmac.compare_digest(given.encode("utf-8"), password.encode("utf-8"))


def callback_problem(callback_map: dict) -> str | None:
    """What is wrong with the current request as a call of a registered callback, or None."""
    if (request.content_length or 0) > MAX_CALLBACK_BYTES:
        return "the request is too large"
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    output = body.get("output")
    if not isinstance(output, str) or output not in callback_map:
        return "it names no callback of this app"
    declared = callback_map[output]
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
    if not isinstance(body.get("changedPropIds", []), list):
        return "changedPropIds is not a list"
    return None


def _is_dependency(entry) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("property"), str)
            and isinstance(entry.get("id"), (str, dict)))


def exposed_without_password(host: str, password: str | None) -> bool:
    """True when the server would listen beyond this machine with no password."""
    return host not in LOOPBACK_HOSTS and not password
