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
