"""Large files into the data folder, in chunks, with bounded memory: the Datasets page's upload.

``dcc.Upload`` sends a whole file base64-encoded inside one callback's JSON, which is fine
for a few MB and falls over for analysis ntuples of hundreds of MB. The browser side
(assets/chunked_upload.js) instead sends the file as raw chunks to three plain routes:

- ``POST   /gato-upload``                 {"filename", "size"} -> {"token", "chunk_bytes"}
- ``PUT    /gato-upload/<token>?offset=N`` one chunk, appended when N is the bytes so far
- ``GET    /gato-upload/<token>``          {"received", "size", "complete"}: where to resume

Each chunk is streamed to disk in pieces of ``COPY_BYTES``, so the server holds at most
that much of an upload in memory, whatever the file's size. An upload lives in
``DATA_DIR/uploads/<token>/`` until the Datasets page imports it (and removes the folder);
unfinished uploads older than ``STALE_S`` are removed when the next one starts.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path

from flask import Response, request

from . import runtime

ROUTE = "/gato-upload"
CHUNK_BYTES = 8 * 1024 * 1024
COPY_BYTES = 1024 * 1024
STALE_S = 24 * 3600
UPLOADS_DIR = "uploads"
_TOKEN = re.compile(r"^[0-9a-f]{32}$")
_META = "upload.json"


class UploadError(ValueError):
    """An upload that cannot be used; the message is for the person uploading."""


def uploads_folder() -> Path:
    return runtime.data_dir() / UPLOADS_DIR


def install(server) -> None:
    """Add the upload routes to the Flask ``server``."""
    server.add_url_rule(ROUTE, "gato_upload_start", _start, methods=["POST"])
    server.add_url_rule(ROUTE + "/<token>", "gato_upload_chunk", _chunk, methods=["PUT"])
    server.add_url_rule(ROUTE + "/<token>", "gato_upload_status", _status, methods=["GET"])


def _json(data: dict, status: int = 200) -> Response:
    return Response(json.dumps(data), status, mimetype="application/json")


def _start():
    runtime.require_writable("uploads are off")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _json({"error": "Send {\"filename\": ..., \"size\": ...} as JSON."}, 400)
    filename = safe_filename(body.get("filename"))
    size = body.get("size")
    limit = runtime.settings().max_upload_bytes
    if filename is None:
        return _json({"error": "The file needs a name ending in .csv, .parquet or .root."}, 400)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        return _json({"error": "The file is empty or its size is unknown."}, 400)
    if size > limit:
        return _json({"error": f"The file has {size / 1e9:.2f} GB; this server takes files up "
                               f"to {limit / 1e9:.2f} GB (--max-upload-gb)."}, 413)
    _remove_stale()
    token = secrets.token_hex(16)
    folder = uploads_folder() / token
    folder.mkdir(parents=True)
    (folder / _META).write_text(json.dumps({"filename": filename, "size": size,
                                            "started": time.time()}))
    (folder / filename).touch()
    return _json({"token": token, "chunk_bytes": CHUNK_BYTES})


def _chunk(token: str):
    runtime.require_writable("uploads are off")
    try:
        meta, path = _upload(token)
    except UploadError as exc:
        return _json({"error": str(exc)}, 404)
    received = path.stat().st_size
    offset = request.args.get("offset", type=int)
    if offset != received:
        # the browser resumes from what the server has (a chunk lost on the way, a retry)
        return _json({"error": "offset does not match", "received": received}, 409)
    length = request.content_length
    if length is None or length <= 0 or length > CHUNK_BYTES or received + length > meta["size"]:
        return _json({"error": f"a chunk has 1 to {CHUNK_BYTES} bytes and ends within the "
                               "announced size", "received": received}, 400)
    copied = 0
    with open(path, "ab") as target:
        while copied < length:
            piece = request.stream.read(min(COPY_BYTES, length - copied))
            if not piece:
                break
            target.write(piece)
            copied += len(piece)
    if copied != length:  # the connection dropped mid-chunk: keep only whole chunks
        with open(path, "ab") as target:
            target.truncate(received)
        return _json({"error": "the chunk arrived incomplete", "received": received}, 400)
    received += copied
    return _json({"received": received, "size": meta["size"],
                  "complete": received == meta["size"]})


def _status(token: str):
    try:
        meta, path = _upload(token)
    except UploadError as exc:
        return _json({"error": str(exc)}, 404)
    received = path.stat().st_size
    return _json({"received": received, "size": meta["size"],
                  "complete": received == meta["size"]})


def _upload(token: str) -> tuple[dict, Path]:
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise UploadError("There is no such upload.")
    folder = uploads_folder() / token
    try:
        meta = json.loads((folder / _META).read_text())
    except (OSError, ValueError):
        raise UploadError("There is no such upload (it may have been imported or removed).") \
            from None
    return meta, folder / meta["filename"]


def completed_file(token) -> Path:
    """The file of a finished upload, for the importer; UploadError if it is not complete."""
    meta, path = _upload(token)
    if path.stat().st_size != meta["size"]:
        raise UploadError(f"The upload of {meta['filename']} is not complete yet.")
    return path


def discard(token) -> None:
    """Remove an upload's folder (after its import, or when it is abandoned)."""
    if isinstance(token, str) and _TOKEN.match(token):
        shutil.rmtree(uploads_folder() / token, ignore_errors=True)


def safe_filename(name) -> str | None:
    """The file's own name without any folder part, if it has a readable extension."""
    if not isinstance(name, str):
        return None
    base = os.path.basename(name.replace("\\", "/")).strip()
    base = re.sub(r"[^A-Za-z0-9._+-]", "_", base)[:120]
    if not base or base.startswith(".") or Path(base).suffix.lower() not in (
            ".csv", ".parquet", ".pq", ".root"):
        return None
    return base


def _remove_stale(now: float | None = None) -> None:
    now = time.time() if now is None else now
    folder = uploads_folder()
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        try:
            started = json.loads((entry / _META).read_text())["started"]
        except (OSError, ValueError, KeyError, TypeError):
            started = entry.stat().st_mtime
        if now - started > STALE_S:
            shutil.rmtree(entry, ignore_errors=True)
