"""The chunked upload route: whole files arrive byte for byte; anything else is refused
with a message and leaves no file behind."""
from __future__ import annotations

import json
import os

import pytest

from gato_dash import runtime, uploads
from gato_dash.app import create_app


@pytest.fixture
def client(tmp_path):
    app = create_app(tmp_path)
    return app.server.test_client()


def start(client, filename="scores.parquet", size=10):
    response = client.post(uploads.ROUTE, data=json.dumps({"filename": filename, "size": size}),
                           content_type="application/json")
    return response.status_code, response.get_json()


def put(client, token, offset, data):
    response = client.put(f"{uploads.ROUTE}/{token}?offset={offset}", data=data)
    return response.status_code, response.get_json()


def test_a_file_arrives_in_chunks_and_resumes(client, monkeypatch):
    monkeypatch.setattr(uploads, "CHUNK_BYTES", 1000)
    monkeypatch.setattr(uploads, "COPY_BYTES", 64)  # many pieces per chunk
    payload = os.urandom(2500)
    code, started = start(client, "my ggH.root", len(payload))
    assert code == 200 and started["chunk_bytes"] == 1000
    token = started["token"]
    assert put(client, token, 0, payload[:1000]) == (200, {"received": 1000, "size": 2500,
                                                           "complete": False})
    # a retry of a chunk already in, and a chunk from the future: both told where to resume
    assert put(client, token, 0, payload[:1000])[0] == 409
    code, body = put(client, token, 2000, payload[2000:])
    assert code == 409 and body["received"] == 1000
    assert client.get(f"{uploads.ROUTE}/{token}").get_json()["received"] == 1000
    assert put(client, token, 1000, payload[1000:2000])[0] == 200
    assert put(client, token, 2000, payload[2000:2501] + b"extra")[0] == 400  # past the size
    code, body = put(client, token, 2000, payload[2000:])
    assert code == 200 and body["complete"]
    path = uploads.completed_file(token)
    assert path.name == "my_ggH.root" and path.read_bytes() == payload
    uploads.discard(token)
    assert not path.parent.exists()


@pytest.mark.parametrize("filename,size,status,message", [
    ("scores.exe", 10, 400, "ending in .csv, .parquet or .root"),
    (None, 10, 400, "ending in"),
    ("../../etc/passwd", 10, 400, "ending in"),
    ("a.csv", 0, 400, "empty"),
    ("a.csv", "10", 400, "empty"),
    ("a.csv", 5 * 1024 ** 3, 413, "up to 4 GiB"),
])
def test_bad_uploads_are_refused_with_a_message(client, filename, size, status, message):
    code, body = start(client, filename, size)
    assert code == status and message in body["error"]
    assert not any(uploads.uploads_folder().glob("*")) if uploads.uploads_folder().exists() \
        else True


def test_unknown_tokens_and_incomplete_uploads(client):
    assert put(client, "not-a-token", 0, b"1")[0] == 404
    assert put(client, "0" * 32, 0, b"1")[0] == 404
    token = start(client, "a.csv", 4)[1]["token"]
    put(client, token, 0, b"ab")
    with pytest.raises(uploads.UploadError, match="not complete"):
        uploads.completed_file(token)


def test_a_path_in_the_file_name_stays_inside_the_upload_folder(client):
    token = start(client, "../../../tmp/evil.csv", 3)[1]["token"]
    put(client, token, 0, b"a,b")
    path = uploads.completed_file(token)
    assert path.parent.parent == uploads.uploads_folder() and path.name == "evil.csv"


def test_viewer_mode_takes_no_uploads(tmp_path):
    client = create_app(tmp_path, runtime.Settings(read_only=True)).server.test_client()
    code, body = start(client)
    assert code == 403 and "read-only" in body["error"]


# ----- bounded resources (issue #21) -------------------------------------------------------
class SizedBody:
    """What Werkzeug's test client measures a request body with (it sets Content-Length)."""

    size = 0
    _at = 0

    def tell(self):
        return self._at

    def seek(self, offset, whence=0):
        self._at = self.size if whence == 2 else offset


class CountingStream(SizedBody):
    """A request body of ``size`` bytes that counts what the server read of it."""

    def __init__(self, size, head=b""):
        self.size = self.left = size
        self.head, self.read_bytes = head, 0

    def read(self, n=-1):
        n = self.left if n is None or n < 0 else min(n, self.left)
        piece = (self.head + b"x" * n)[:n]
        self.head = self.head[len(piece):]
        self.left -= n
        self.read_bytes += n
        return piece


@pytest.fixture
def live_server(tmp_path):
    """The app behind Werkzeug's real HTTP server (what ``python app.py`` runs), which
    decodes chunked request bodies itself."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, create_app(tmp_path).server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    thread.join()


def test_a_chunked_start_body_without_content_length_is_cut_at_the_limit(live_server):
    import http.client

    def send_chunked(pieces):
        connection = http.client.HTTPConnection("127.0.0.1", live_server, timeout=30)
        connection.request("POST", uploads.ROUTE, body=pieces, encode_chunked=True,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = response.status, json.loads(response.read())
        connection.close()
        return answer

    # 64 MB of padding in 1 MB chunks, no Content-Length: refused after the first 4 KB
    padding = (b"x" * (1 << 20) for _ in range(64))
    status, body = send_chunked(iter([b'{"filename": "a.csv", "size": 10, "pad": "',
                                      *padding, b'"}']))
    assert status == 413 and f"larger than {uploads.START_MAX_BYTES} bytes" in body["error"]
    # a small chunked body is still a start
    status, body = send_chunked(iter([b'{"filename": "a.csv", ', b'"size": 10}']))
    assert status == 200 and len(body["token"]) == 32


def test_large_or_deeply_nested_start_bodies_are_4xx_and_not_read_whole(client):
    stream = CountingStream(300 * 1024 * 1024, head=b'{"filename": "a.csv", "pad": "')
    response = client.post(uploads.ROUTE, input_stream=stream, content_type="application/json")
    assert response.status_code == 413
    assert stream.read_bytes <= uploads.START_MAX_BYTES + 1
    for nested in (b"[" * 3000, b"{\"a\":" * 1500, b"[" * 100_000):
        response = client.post(uploads.ROUTE, data=nested, content_type="application/json")
        assert response.status_code in (400, 413) and "as JSON" in response.get_json()["error"]
    # brackets inside strings are text, not nesting
    code, body = start(client, "a[[[[{{{{.csv", 10)
    assert code == 200


def test_a_chunk_without_content_length_is_refused(live_server):
    import http.client

    def call(method, path, body=None, chunked=False):
        connection = http.client.HTTPConnection("127.0.0.1", live_server, timeout=30)
        connection.request(method, path, body=body, encode_chunked=chunked,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = response.status, json.loads(response.read())
        connection.close()
        return answer

    token = call("POST", uploads.ROUTE, json.dumps({"filename": "a.csv", "size": 10}))[1]["token"]
    status, body = call("PUT", f"{uploads.ROUTE}/{token}?offset=0", iter([b"12345", b"67890"]),
                        chunked=True)
    assert status == 411 and "Content-Length" in body["error"]
    assert call("GET", f"{uploads.ROUTE}/{token}")[1]["received"] == 0
    assert call("PUT", f"{uploads.ROUTE}/{token}?offset=0", b"1234567890")[1]["complete"]


def test_two_puts_at_once_to_one_upload_do_not_both_write(client, tmp_path):
    import threading

    payload = os.urandom(1000)
    token = start(client, "a.csv", 2000)[1]["token"]
    reading, release = threading.Event(), threading.Event()

    class SlowBody(SizedBody):
        """The first PUT's body: it has passed the offset check, then waits mid-read."""

        size = len(payload)

        def __init__(self):
            self.sent = False

        def read(self, n=-1):
            if self.sent:
                return b""
            reading.set()
            assert release.wait(30)
            self.sent = True
            return payload

    first = {}
    slow_client = create_app(tmp_path).server.test_client()
    thread = threading.Thread(target=lambda: first.setdefault("answer", slow_client.put(
        f"{uploads.ROUTE}/{token}?offset=0", input_stream=SlowBody())))
    thread.start()
    assert reading.wait(30)
    code, body = put(client, token, 0, payload)  # the same chunk again, at the same time
    release.set()
    thread.join(30)
    assert code == 409 and "being written" in body["error"]
    assert first["answer"].status_code == 200
    status = client.get(f"{uploads.ROUTE}/{token}").get_json()
    assert status == {"received": 1000, "size": 2000, "complete": False}
    assert (uploads.uploads_folder() / token / "a.csv").read_bytes() == payload


def age(token, seconds):
    """Make an upload look idle for ``seconds`` (its start and its last chunk)."""
    folder = uploads.uploads_folder() / token
    meta = json.loads((folder / "upload.json").read_text())
    then = meta["started"] - seconds
    (folder / "upload.json").write_text(json.dumps({**meta, "started": then}))
    os.utime(folder / meta["filename"], (then, then))


def test_kept_uploads_are_capped_in_total_size_abandoned_ones_go_first(tmp_path):
    client = create_app(tmp_path, runtime.Settings(max_upload_bytes=1000)).server.test_client()
    first = start(client, "a.csv", 800)[1]["token"]
    second = start(client, "b.csv", 800)[1]["token"]
    code, body = start(client, "c.csv", 800)  # 2,400 bytes would pass 2 x 1,000
    assert code == 413 and "with this file's 800 bytes they would pass the 1.95 KiB this " \
        "server keeps for uploads" in body["error"]
    assert "Try again when one has finished" in body["error"]
    age(first, uploads.ABANDONED_S + 60)
    code, body = start(client, "c.csv", 800)
    assert code == 200  # made room by removing the abandoned first upload, and only it
    kept = sorted(p.name for p in uploads.uploads_folder().iterdir() if not p.name.startswith("."))
    assert kept == sorted([second, body["token"]])
    assert put(client, first, 0, b"x")[0] == 404


def test_kept_uploads_are_capped_in_number(client):
    tokens = [start(client, f"f{i}.csv", 10)[1]["token"] for i in range(uploads.MAX_UPLOADS)]
    code, body = start(client)
    assert code == 429 and f"{uploads.MAX_UPLOADS} uploads are in progress" in body["error"]
    age(tokens[5], uploads.ABANDONED_S + 120)
    age(tokens[9], uploads.ABANDONED_S + 60)
    assert start(client)[0] == 200  # the oldest abandoned one made room
    assert not (uploads.uploads_folder() / tokens[5]).exists()
    assert (uploads.uploads_folder() / tokens[9]).exists()


def test_starting_costs_the_same_however_many_uploads_were_abandoned(tmp_path):
    import statistics
    import time

    def start_seconds(n_old):
        data = tmp_path / f"data{n_old}"
        client = create_app(data).server.test_client()
        folder = uploads.uploads_folder()
        folder.mkdir(parents=True)
        hour_ago = time.time() - 3600
        for i in range(n_old):  # abandoned an hour ago: not yet stale (a day)
            old = folder / f"{i:032x}"
            old.mkdir()
            (old / "upload.json").write_text(json.dumps({"filename": "a.csv", "size": 10,
                                                         "started": hour_ago}))
            (old / "a.csv").write_bytes(b"12345")
            os.utime(old / "a.csv", (hour_ago, hour_ago))
        start(client)  # the first start clears the backlog once, deleting on a thread
        deadline = time.time() + 120
        while list(folder.glob(".trash-*")) and time.time() < deadline:
            time.sleep(0.2)
        times = []
        for _ in range(7):
            began = time.perf_counter()
            assert start(client)[0] == 200
            times.append(time.perf_counter() - began)
        return statistics.median(times), len(list(folder.glob("*/upload.json")))

    (few, _), (many, kept) = start_seconds(10), start_seconds(2000)  # 5000: bench_bounds.py
    # was 44x at 5000 (every start read every folder's metadata)
    assert many < 4 * few, (few, many)
    assert kept <= uploads.MAX_UPLOADS
