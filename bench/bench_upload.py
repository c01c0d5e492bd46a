"""A large upload through the chunked route: server memory stays bounded, whatever the size.

Starts ``python app.py`` on a scratch data folder, sends a file of ``--gb`` gigabytes (random
bytes, generated chunk by chunk, never held whole) through ``/gato-upload`` in the browser
script's 8 MB chunks, and samples the server's resident memory while it streams. Prints the
throughput and the server's peak RSS against its RSS before the upload: bounded means the
growth stays around a few chunk sizes, not the file size.

Usage: python bench/bench_upload.py [--gb 1.0]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))

from conftest import GatoServer  # noqa: E402


def rss_bytes(pid: int) -> int:
    """Resident memory of the server process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def request(url: str, method: str, body: bytes | None = None, json_body=None) -> dict:
    data = json.dumps(json_body).encode() if json_body is not None else body
    headers = {"Content-Type": "application/json"} if json_body is not None else {}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=120) as response:
        return json.loads(response.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0)
    args = parser.parse_args()
    size = int(args.gb * 1e9)
    with tempfile.TemporaryDirectory() as scratch:
        server = GatoServer(Path(scratch) / "data").start()
        try:
            pid = server.proc.pid
            before = rss_bytes(pid)
            peak = [before]
            done = threading.Event()

            def sample():
                while not done.wait(0.05):
                    peak[0] = max(peak[0], rss_bytes(pid))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = request(f"{server.url}/gato-upload", "POST",
                              json_body={"filename": "big.parquet", "size": size})
            token, chunk = started["token"], started["chunk_bytes"]
            t0 = time.perf_counter()
            offset = 0
            while offset < size:
                piece = os.urandom(min(chunk, size - offset))
                state = request(f"{server.url}/gato-upload/{token}?offset={offset}", "PUT",
                                body=piece)
                offset = state["received"]
            seconds = time.perf_counter() - t0
            done.set()
            sampler.join()
            stored = (Path(scratch) / "data" / "uploads" / token / "big.parquet").stat().st_size
        finally:
            server.stop()
    mb = 1e6
    print(f"uploaded {size / 1e9:.2f} GB in {seconds:.1f} s ({size / mb / seconds:.0f} MB/s), "
          f"stored {stored / 1e9:.2f} GB")
    print(f"server RSS before {before / mb:.0f} MB, peak {peak[0] / mb:.0f} MB, "
          f"growth {(peak[0] - before) / mb:.0f} MB = {(peak[0] - before) / chunk:.1f} chunks "
          f"of {chunk / mb:.0f} MB ({100 * (peak[0] - before) / size:.2f} % of the file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
