"""Throwaway Redis and PostgreSQL servers on free loopback ports, for tests and benchmarks.

Each ``start_*`` returns a ``LocalServer`` (its URL and a ``stop()``) or raises
``ServerUnavailable`` with a reason a skipped test can show. Nothing listens beyond
127.0.0.1; data lives in a temporary folder that ``stop()`` removes.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable


class ServerUnavailable(RuntimeError):
    """The server binaries are missing or the server did not come up."""


@dataclass
class LocalServer:
    url: str
    _stop: Callable[[], None] = field(repr=False)
    #: PostgreSQL: ``restart(down_s=0)``: ``pg_ctl restart`` (fast mode: running sessions
    #: are ended), or stopped for ``down_s`` seconds and started again; returns when it is up
    restart: Callable[..., None] | None = field(default=None, repr=False)

    def stop(self) -> None:
        self._stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(check: Callable[[], bool], timeout_s: float, what: str, log: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise ServerUnavailable(f"{what} did not answer within {timeout_s:.0f} s{log}")


# ----- Redis ------------------------------------------------------------------------------
def start_redis(timeout_s: float = 10.0) -> LocalServer:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerUnavailable("redis-server is not installed (bash tools/setup.sh --dev)")
    folder = tempfile.mkdtemp(prefix="gato-redis-")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", folder, "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"

    def stop():
        proc.kill()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)

    try:
        import redis

        _wait_for(lambda: proc.poll() is None and redis.Redis.from_url(url).ping(),
                  timeout_s, "redis-server")
    except BaseException:
        stop()
        raise
    return LocalServer(url, stop)


# ----- PostgreSQL ---------------------------------------------------------------------------
def _postgres_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def start_postgres(timeout_s: float = 30.0) -> LocalServer:
    """A PostgreSQL cluster with superuser ``gato`` (trust auth, loopback only).

    As root, initdb refuses to run: the cluster then belongs to the ``postgres`` user."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        raise ServerUnavailable("PostgreSQL is not installed (bash tools/setup.sh --dev)")
    as_user: list[str] = []
    # /tmp, not pytest's tmp_path: that one is private to root, postgres could not enter it
    folder = tempfile.mkdtemp(prefix="gato-pg-")
    if os.geteuid() == 0:
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder, ignore_errors=True)
            raise ServerUnavailable("running as root and there is no postgres user to run "
                                    "PostgreSQL as") from None
        os.chown(folder, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(folder, "data")
    port = free_port()

    def run(args, check=True):
        return subprocess.run(as_user + args, capture_output=True, text=True, check=check,
                              timeout=120)

    def stop():
        run([f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], check=False)
        shutil.rmtree(folder, ignore_errors=True)

    try:
        done = run([f"{bin_dir}/initdb", "-D", data, "-A", "trust", "-U", "gato",
                    "--no-sync", "-E", "UTF8"], check=False)
        if done.returncode != 0:
            raise ServerUnavailable(f"initdb failed: {done.stderr.strip()[-300:]}")
        options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        done = run([f"{bin_dir}/pg_ctl", "-D", data, "-l", os.path.join(folder, "log"),
                    "-o", options, "-w", "-t", str(int(timeout_s)), "start"], check=False)
        if done.returncode != 0:
            raise ServerUnavailable(f"PostgreSQL did not start: {done.stdout.strip()[-300:]}")
    except subprocess.TimeoutExpired as exc:
        stop()
        raise ServerUnavailable(f"PostgreSQL set-up timed out: {exc}") from None
    except BaseException:
        stop()
        raise
    def restart(down_s: float = 0.0):
        # -l: the server's output must not go to the pipes run() waits on
        pg_ctl = [f"{bin_dir}/pg_ctl", "-D", data, "-l", os.path.join(folder, "log"), "-w",
                  "-t", str(int(timeout_s))]
        if down_s > 0:
            run(pg_ctl + ["-m", "fast", "stop"])
            time.sleep(down_s)
            done = run(pg_ctl + ["-o", options, "start"], check=False)
        else:
            done = run(pg_ctl + ["-m", "fast", "restart"], check=False)
        if done.returncode != 0:
            raise ServerUnavailable(f"PostgreSQL did not restart: {done.stdout.strip()[-300:]}")

    return LocalServer(f"postgresql://gato@127.0.0.1:{port}/postgres", stop, restart)


def create_database(server_url: str, name: str) -> str:
    """A fresh, empty database on the server; returns its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ----- Celery workers -------------------------------------------------------------------------
WORKER_COMMAND = ["-m", "celery", "-A", "gato_dash.worker", "worker", "--concurrency", "1"]


def start_worker(name: str, env: dict, log_path, cwd) -> subprocess.Popen:
    """``celery -A gato_dash.worker worker --concurrency 1`` (the README's command) as
    ``name@host``, in a process group of its own so that it and its pool process can be
    killed together (a lost machine)."""
    import sys

    log = open(log_path, "ab")
    return subprocess.Popen(
        [sys.executable, *WORKER_COMMAND, "-n", f"{name}@%h", "--without-gossip",
         "--without-mingle", "--loglevel", "INFO"],
        cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def kill_worker(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(30)
