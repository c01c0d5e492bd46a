import os

# Quiet TensorFlow's start-up chatter in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import uuid

import pytest

import local_servers


# ----- servers for the run store's PostgreSQL backend and the Celery mode ------------------
#: Set by CI (.ci/run), where tools/setup.sh installs the servers: a server that does not
#: start is then a failure, not a skip.
REQUIRE_SERVERS = os.environ.get("GATO_REQUIRE_SERVERS") == "1"


def _unavailable(what: str, exc: Exception):
    message = f"{what} could not start: {exc}"
    if REQUIRE_SERVERS:
        pytest.fail(message + " ($GATO_REQUIRE_SERVERS=1)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL on a free loopback port for the whole session (its URL)."""
    try:
        server = local_servers.start_postgres()
    except local_servers.ServerUnavailable as exc:
        _unavailable("PostgreSQL", exc)
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def redis_server():
    """A throwaway Redis on a free loopback port for the whole session (its URL)."""
    try:
        server = local_servers.start_redis()
    except local_servers.ServerUnavailable as exc:
        _unavailable("Redis", exc)
    yield server.url
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh empty database for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = local_servers.create_database(postgres_server, name)
    yield url
    local_servers.drop_database(postgres_server, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request, tmp_path):
    """(location, data_dir) of an empty run store, once per database backend."""
    data_dir = tmp_path / "data"
    if request.param == "sqlite":
        return str(data_dir / "runs.sqlite"), data_dir
    return request.getfixturevalue("postgres_url"), data_dir
