"""Large files into the data folder, in chunks, with bounded memory: the Datasets page's upload.

``dcc.Upload`` sends a whole file base64-encoded inside one callback's JSON, which is fine
for a few MB and falls over for analysis ntuples of hundreds of MB. The browser side
(assets/chunked_upload.js) instead sends the file as raw chunks to three plain routes:

- ``POST   /gato-upload``                 {"filename", "size"} -> {"token", "chunk_bytes"}
- ``PUT    /gato-upload/<token>?offset=N`` one chunk, appended when N is the bytes so far
- ``GET    /gato-upload/<token>``          {"received", "size", "complete"}: where to resume

Each chunk is streamed to disk in pieces of ``COPY_BYTES``, so the server holds at most
that much of an upload in memory, whatever the file's size. An upload lives in
``DATA_DIR/uploads/<token>/`` until the Datasets page imports it (and removes the folder).

Bounds, whatever a client sends:
- request bodies: the start's JSON at most ``START_MAX_BYTES`` (read and parsed by
  security.limited_body / safe_json, the same as a callback's: also with chunked transfer
  encoding, and never deeper than a request of this app nests), a chunk at most
  ``CHUNK_BYTES``;
- one writer per upload: a chunk is written under an exclusive ``fcntl`` lock on the
  upload's lock file, so two PUTs at once cannot both append (the second gets 409);
- what uploads keep on disk: at most ``MAX_UPLOADS`` folders declaring at most
  ``PENDING_SIZE_FACTOR`` times the per-file limit together. A start that would pass either
  bound first removes the uploads idle longer than ``ABANDONED_S``, oldest first, and is
  refused with a message if that is not enough; uploads idle longer than ``STALE_S`` are
  removed at every start. The folder count is bounded, so a start's look at the others
  costs the same whether thousands of uploads were abandoned before or none.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

from flask import Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from . import formatting, runtime, security

ROUTE = "/gato-upload"
CHUNK_BYTES = 8 * 1024 * 1024
COPY_BYTES = 1024 * 1024
STALE_S = 24 * 3600
#: an upload that received nothing for this long may make room for a new one
ABANDONED_S = 10 * 60
#: most upload folders kept at once (started, finished but not imported yet)
MAX_UPLOADS = 32
#: the declared sizes of all kept uploads add up to at most this many times the per-file
#: limit (--max-upload-gib): two largest files, or many smaller ones
PENDING_SIZE_FACTOR = 2
#: the start's body is {"filename", "size"}: a few hundred bytes, never nested
START_MAX_BYTES = 4096
UPLOADS_DIR = "uploads"
_TOKEN = re.compile(r"^[0-9a-f]{32}$")
_META = "upload.json"
_LOCK = ".lock"
_TRASH = ".trash-"
#: starts of this process one at a time (the fcntl lock orders other processes)
_START_GUARD = threading.Lock()


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
    try:
        body = security.safe_json(security.limited_body(START_MAX_BYTES))
    except security.BadJson:
        body = None
    except RequestEntityTooLarge:
        return _json({"error": f"The request is larger than {START_MAX_BYTES} bytes; send "
                               "{\"filename\": ..., \"size\": ...} as JSON."}, 413)
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
        return _json({"error": f"The file has {formatting.byte_size(size, 4)}; this server "
                               f"takes files up to {formatting.byte_size(limit)} "
                               f"(--max-upload-gib)."}, 413)
    token = secrets.token_hex(16)
    try:
        with _starting():
            problem = _make_room(size, PENDING_SIZE_FACTOR * limit)
            if problem:
                return _json({"error": problem[0]}, problem[1])
            folder = uploads_folder() / token
            folder.mkdir(parents=True)
            (folder / _META).write_text(json.dumps({"filename": filename, "size": size,
                                                    "started": time.time()}))
            (folder / filename).touch()
    except OSError as exc:  # a read-only or full data folder: say so, not a 500
        return _json({"error": f"The server cannot store uploads now ({exc.strerror or exc}): "
                               "its data folder is read-only or full."}, 403)
    return _json({"token": token, "chunk_bytes": CHUNK_BYTES})


def _chunk(token: str):
    runtime.require_writable("uploads are off")
    try:
        meta, path = _upload(token)
    except UploadError as exc:
        return _json({"error": str(exc)}, 404)
    if request.content_length is None:  # chunked transfer encoding: length unknown ahead
        return _json({"error": "send each chunk with a Content-Length header",
                      "received": _size(path)}, 411)
    request.max_content_length = CHUNK_BYTES
    try:
        with _writer(path.parent):
            return _append(meta, path)
    except BlockingIOError:
        # another request is writing this upload: one writer only, the browser resumes
        # from what the server has once it is done
        return _json({"error": "another chunk of this upload is being written",
                      "received": _size(path)}, 409)
    except FileNotFoundError:  # removed meanwhile (imported, discarded, evicted)
        return _json({"error": "There is no such upload (it may have been imported or "
                               "removed)."}, 404)


def _append(meta: dict, path: Path) -> Response:
    """Append the request's body to ``path`` if it continues the file (under the lock)."""
    received = path.stat().st_size
    offset = request.args.get("offset", type=int)
    if offset != received:
        # the browser resumes from what the server has (a chunk lost on the way, a retry)
        return _json({"error": "offset does not match", "received": received}, 409)
    length = request.content_length
    if length <= 0 or length > CHUNK_BYTES or received + length > meta["size"]:
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


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@contextmanager
def _writer(folder: Path):
    """Hold the upload's write lock, or BlockingIOError at once if another request has it
    (threads and processes alike: each open() gets its own lock)."""
    handle = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(handle)  # releases the lock


@contextmanager
def _starting():
    """Starts one at a time, in this process and across processes sharing the folder."""
    folder = uploads_folder()
    folder.mkdir(parents=True, exist_ok=True)
    with _START_GUARD:
        handle = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        finally:
            os.close(handle)


def _status(token: str):
    try:
        meta, path = _upload(token)
    except UploadError as exc:
        return _json({"error": str(exc)}, 404)
    received = _size(path)
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


def _kept_uploads(now: float, doomed: list[Path]) -> list[tuple[float, int, Path]]:
    """(last activity, declared size, folder) of every upload kept, oldest activity first;
    those idle for longer than STALE_S, and trash left by an earlier process, go to
    ``doomed``."""
    kept = []
    with os.scandir(uploads_folder()) as entries:
        for entry in entries:
            if entry.name.startswith(_TRASH):
                doomed.append(Path(entry.path))
            if not _TOKEN.match(entry.name):
                continue  # the lock file, trash
            folder = Path(entry.path)
            try:
                meta = json.loads((folder / _META).read_text())
                size, active = int(meta["size"]), float(meta["started"])
                active = max(active, (folder / meta["filename"]).stat().st_mtime)
            except (OSError, ValueError, KeyError, TypeError):  # half made or damaged
                size, active = 0, entry.stat().st_mtime
            if now - active > STALE_S:
                doomed.append(folder)
            else:
                kept.append((active, size, folder))
    return sorted(kept, key=lambda item: item[0])


def _remove_soon(folders: list[Path]) -> None:
    """Take ``folders`` out of the uploads at once (a rename each) and delete them on a
    background thread: deleting thousands of folders left by an older version took 19 s
    here, which no start should wait for."""
    if not folders:
        return
    trash = uploads_folder() / f"{_TRASH}{secrets.token_hex(8)}"
    trash.mkdir()
    for folder in folders:
        if not folder.name.startswith(_TRASH):
            with suppress(OSError):  # gone meanwhile
                os.rename(folder, trash / folder.name)
    leftovers = [folder for folder in folders if folder.name.startswith(_TRASH)]

    def delete():
        for folder in [trash, *leftovers]:
            shutil.rmtree(folder, ignore_errors=True)

    threading.Thread(target=delete, name="gato-upload-trash", daemon=True).start()


def _make_room(size: int, total_limit: int) -> tuple[str, int] | None:
    """Remove abandoned uploads, oldest first, until one more of ``size`` bytes fits the
    bounds (see the module doc); the refusal (message, status) if it still does not."""
    now = time.time()
    doomed: list[Path] = []
    kept = _kept_uploads(now, doomed)
    total = sum(declared for _, declared, _ in kept)
    while kept and (len(kept) + 1 > MAX_UPLOADS or total + size > total_limit):
        active, declared, folder = kept[0]
        if now - active <= ABANDONED_S:
            break  # the oldest is still being sent: so are all the others
        doomed.append(folder)
        kept.pop(0)
        total -= declared
    _remove_soon(doomed)
    if len(kept) + 1 > MAX_UPLOADS:
        return (f"{len(kept)} uploads are in progress, the most this server keeps at once; "
                f"try again when one has finished or after {ABANDONED_S // 60} minutes."), 429
    if total + size > total_limit:
        return (f"Uploads in progress hold {formatting.byte_size(total)}; with this file's "
                f"{formatting.byte_size(size)} they would pass the "
                f"{formatting.byte_size(total_limit)} this server keeps for uploads. Try "
                f"again when one has finished or after {ABANDONED_S // 60} minutes."), 413
    free = shutil.disk_usage(uploads_folder()).free
    if size > free:
        return (f"The server's disk has {formatting.byte_size(free)} free, less than this "
                f"file's {formatting.byte_size(size)}."), 413
    return None
