"""What checking an import against the record schema costs (issue #21, "bad state on disk").

A result folder of realistic size (hand-made records from tests/helpers/records.py: bump
hunt, K = 5 and 8, 400 epochs each, 120 x 120 category maps every 10 epochs) is imported
into a scratch SQLite store, and the schema check (gato_dash.runtime.importer.check_record)
alone is timed on the same records, interleaved. Prints medians and the check's share of
the import, measured in one run.

Usage: python bench/bench_import_check.py [--rounds 5] [--scenario bump_hunt]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from helpers import records as rf  # noqa: E402

from gato_core.config import RunConfig  # noqa: E402
from gato_dash.runtime import importer  # noqa: E402
from gato_dash.runtime.run_store import RunStore  # noqa: E402


def result_folder(root: Path, scenario: str) -> Path:
    run, epochs, results = rf.run_record(scenario, n_cats=(5, 8))
    folder = root / "result"
    folder.mkdir()
    config = RunConfig.from_dict(run["config"]).to_dict()
    trainings = [{key: r[key] for key in ("n_cats", "status", "message", "epochs_done",
                                          "significance", "objective")} for r in results]
    (folder / "result.json").write_text(json.dumps({"config": config, "trainings": trainings}))
    with (folder / "records.jsonl").open("w") as out:
        for record in [run["run_info"], *epochs, *results]:
            out.write(json.dumps(record) + "\n")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scenario", default="bump_hunt")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        folder = result_folder(root, args.scenario)
        size_mb = (folder / "records.jsonl").stat().st_size / 1e6
        config = RunConfig.from_dict(json.loads((folder / "result.json").read_text())["config"])
        records = [json.loads(line) for line in (folder / "records.jsonl").open()]
        store = RunStore(root / "data" / "runs.sqlite")
        imports, checks = [], []
        for _ in range(args.rounds):  # interleaved: the machine's load hits both alike
            start = time.perf_counter()
            run_id = importer.import_result_dir(folder, store)
            imports.append(time.perf_counter() - start)
            store.delete(run_id)
            start = time.perf_counter()
            for number, record in enumerate(records, start=1):
                importer.check_record(record, f"line {number}", config)
            checks.append(time.perf_counter() - start)
        store.close()
    whole, check = statistics.median(imports), statistics.median(checks)
    print(f"{args.scenario}: {len(records)} records, records.jsonl {size_mb:.1f} MB, "
          f"median of {args.rounds} rounds")
    print(f"  whole import (check included): {whole * 1000:8.1f} ms")
    print(f"  the schema check alone:        {check * 1000:8.1f} ms  "
          f"({check / whole:.1%} of the import; without it ~{(whole - check) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
