"""Importing CLI result folders and uploaded archives into the run store."""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from gato_dash.runtime.importer import (
    ImportProblem,
    import_archive,
    import_result_dir,
    import_upload,
)
from gato_dash.runtime import importer
from gato_dash.runtime.run_store import RunStore

ROOT = Path(__file__).resolve().parents[1]
KS = (3, 5)
EPOCHS = 8


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "data" / "runs.sqlite")


@pytest.fixture(scope="module")
def cli_out(tmp_path_factory) -> Path:
    """A folder as the CLI writes it: ``result.json``, ``records.jsonl`` and
    ``params/<K>_cats.json``, from a real (tiny) run, once for this module."""
    out = tmp_path_factory.mktemp("cli") / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "gato_core", "run", "--scenario", "one_d",
         "--epochs", str(EPOCHS), "--gato-bins", *map(str, KS), "--n-signal", "2000",
         "--n-bkg", "6000", "--seed", "5", "--quiet", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture
def cli_folder(cli_out, tmp_path):
    """A fresh copy of the CLI's folder to change or pack: ``cli_folder(name)``; with
    ``with_records=False`` it is what an older CLI wrote (no records.jsonl)."""
    def copy(name: str = "out", with_records: bool = True) -> Path:
        folder = shutil.copytree(cli_out, tmp_path / name)
        if not with_records:
            (folder / "records.jsonl").unlink()
        return folder
    return copy


def read_records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_gz_bytes(folder: Path, arcname: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname=arcname)
    return buffer.getvalue()


def folder_members(folder: Path, prefix: str = "") -> dict[str, bytes]:
    return {prefix + p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ----- good imports ----------------------------------------------------------------------
def test_import_result_json_only(cli_folder, store):
    folder = cli_folder(with_records=False)
    written = json.loads((folder / "result.json").read_text())
    run_id = import_result_dir(folder, store)
    run = store.get_run(run_id)
    assert run["status"] == "finished"
    assert "no per-epoch history" in run["message"]
    assert run["config"] == written["config"] and run["scenario"] == "one_d"
    assert run["run_info"]["baselines"] == written["baselines"]
    assert run["run_info"]["optimum_1d"] == written["optimum_1d"]
    results = store.results(run_id)
    assert [r["n_cats"] for r in results] == list(KS)
    for result, training in zip(results, written["trainings"]):
        assert result["significance"] == training["significance"]
        edges = [0.0, *training["boundaries"], 1.0]
        assert [c["range"] for c in result["categories"]] == [list(p) for p in
                                                              zip(edges[:-1], edges[1:])]
        saved = json.loads((folder / "params" / f"{result['n_cats']}_cats.json").read_text())
        assert result["parameters"] == saved
    assert store.epochs(run_id) == []
    kept = store.run_dir(run_id) / importer.IMPORTED_FILES_DIR
    assert (kept / "result.json").read_bytes() == (folder / "result.json").read_bytes()
    assert (kept / "parameters_K5.json").read_bytes() == \
        (folder / "params" / "5_cats.json").read_bytes()
    store.delete(run_id)
    assert not kept.exists()


def test_import_with_records_carries_histories(cli_folder, store):
    folder = cli_folder()
    records = read_records(folder)
    run_id = import_result_dir(folder, store, name="batch seed 5")
    run = store.get_run(run_id)
    assert run["name"] == "batch seed 5" and run["status"] == "finished"
    assert run["run_info"] == records[0]
    for k in KS:
        stored = [{key: v for key, v in e.items() if key != "seq"}  # the store's numbering
                  for e in store.epochs(run_id, n_cats=k)]
        assert stored == [r for r in records if r["kind"] == "epoch" and r["n_cats"] == k]
    assert store.results(run_id) == [r for r in records if r["kind"] == "result"]


def test_parameters_come_from_the_saved_files_when_records_lack_them(cli_folder, store):
    folder = cli_folder()
    records = [dict(r, parameters={}) if r["kind"] == "result" else r
               for r in read_records(folder)]
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    run_id = import_result_dir(folder, store)
    for result in store.results(run_id):
        saved = json.loads((folder / "params" / f"{result['n_cats']}_cats.json").read_text())
        assert result["parameters"] == saved and saved["n_cats"] == result["n_cats"]


def test_import_zip_and_tar_gz_archives(cli_folder, store):
    folder = cli_folder("run_a")
    zipped = zip_bytes(folder_members(folder, prefix="run_a/"))
    run_zip = import_archive("run_a.zip", zipped, store)
    assert store.get_run(run_zip)["name"] == "imported run_a"
    run_tgz = import_archive("run_a.tar.gz", tar_gz_bytes(folder, "run_a"), store)
    assert len(store.epochs(run_tgz)) == len(KS) * EPOCHS
    upload = "data:application/zip;base64," + base64.b64encode(zipped).decode()
    assert store.get_run(import_upload("run_a.zip", upload, store))["status"] == "finished"


# ----- bad input -------------------------------------------------------------------------
def assert_refused(store, call, match):
    before = len(store.list_runs())
    with pytest.raises(ImportProblem, match=match):
        call()
    assert len(store.list_runs()) == before  # nothing half-imported is left behind


def test_path_traversal_in_zip_is_refused(cli_folder, store):
    folder = cli_folder("out")
    members = folder_members(folder)
    members["../../escaped.txt"] = b"gotcha"
    assert_refused(store, lambda: import_archive("evil.zip", zip_bytes(members), store),
                   "leaving its folder")
    members = folder_members(folder)
    members["/tmp/absolute.txt"] = b"gotcha"
    assert_refused(store, lambda: import_archive("evil.zip", zip_bytes(members), store),
                   "absolute path")
    assert not Path("/tmp/absolute.txt").exists()


def test_symlink_in_tar_is_refused(cli_folder, store):
    folder = cli_folder("out")
    (folder / "link").symlink_to("/etc/passwd")
    assert_refused(store, lambda: import_archive("x.tar.gz", tar_gz_bytes(folder, "out"), store),
                   "link")


def test_archive_size_limits(cli_folder, store, monkeypatch):
    folder = cli_folder("out")
    members = folder_members(folder)
    members["padding.bin"] = b"\0" * 200_000  # compresses to almost nothing: a small bomb
    data = zip_bytes(members)
    monkeypatch.setattr(importer, "MAX_UNPACKED_BYTES", 100_000)
    assert_refused(store, lambda: import_archive("bomb.zip", data, store), "unpacks to more")
    assert_refused(store, lambda: import_archive("bomb.tar.gz",
                                                 tar_gz_bytes(_with_padding(folder), "o"),
                                                 store), "unpacks to more")
    monkeypatch.setattr(importer, "MAX_ARCHIVE_BYTES", 100)
    assert_refused(store, lambda: import_archive("big.zip", data, store), "at most")


def _with_padding(folder: Path) -> Path:
    (folder / "padding.bin").write_bytes(b"\0" * 200_000)
    return folder


def test_not_an_archive_and_damaged_archives(cli_folder, store):
    assert_refused(store, lambda: import_archive("notes.txt", b"hello world", store),
                   "neither a .zip nor a .tar.gz")
    folder = cli_folder("out")
    archive = tar_gz_bytes(folder, "out")
    truncated = archive[:len(archive) // 2]  # cut inside a member, whatever the files hold
    assert_refused(store, lambda: import_archive("cut.tar.gz", truncated, store), "damaged")
    assert_refused(store, lambda: import_upload("x.zip", "data:;base64,@@@", store), "base64")


def test_archive_without_result_json(store):
    data = zip_bytes({"readme.txt": b"no results here"})
    assert_refused(store, lambda: import_archive("empty.zip", data, store), "no result.json")


def test_invalid_config_and_records_are_reported(cli_folder, store):
    folder = cli_folder("out")
    result = json.loads((folder / "result.json").read_text())
    result["config"]["epochs"] = 0
    (folder / "result.json").write_text(json.dumps(result))
    assert_refused(store, lambda: import_result_dir(folder, store), "epochs must be between")

    folder = cli_folder("out2")
    with (folder / "records.jsonl").open("a") as f:
        f.write("{not json\n")
    assert_refused(store, lambda: import_result_dir(folder, store), r"records.jsonl line \d+")

    folder = cli_folder("out3", with_records=False)
    (folder / "result.json").write_text('{"config": {}, "trainings": [{"n_cats": 5}]}')
    assert_refused(store, lambda: import_result_dir(folder, store), "significance")


def test_imported_run_lasts_its_training_time_not_the_import(cli_folder, store):
    folder = cli_folder("out")
    records = read_records(folder)
    run = store.get_run(import_result_dir(folder, store))
    # the data step, then each K's training time, as the CLI wrote them
    results = [r for r in records if r["kind"] == "result"]
    assert len(results) == len(KS) and all(r["elapsed_s"] > 0 for r in results)
    assert run["finished"] - run["started"] == pytest.approx(
        records[0]["data_seconds"] + sum(r["elapsed_s"] for r in results))
    assert importer.training_seconds({"data_seconds": 2.0}, [{"n_cats": 3, "elapsed_s": 5.0}],
                                     []) == 7.0
    assert importer.training_seconds({}, [{"n_cats": 3}], []) is None  # nothing recorded


def test_a_dataset_run_of_the_cli_imports_with_its_held_out_numbers(tmp_path, store):
    """`run --data FILE` on the command line, imported from its result.json alone."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gato_core.scenarios import generate

    events = generate("one_d", 2000, 6000, seed=9)
    data = tmp_path / "mine.parquet"
    pq.write_table(pa.table({"nn": events.scores[:, 0], "w": events.weight,
                             "proc": np.array(events.process_names)[events.process]}), data)
    out = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "gato_core", "run", "--data", str(data), "--score-columns", "nn",
         "--weight-column", "w", "--process-column", "proc", "--signal", "signal",
         "--epochs", "20", "--gato-bins", "3", "--quiet", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    (out / "records.jsonl").unlink()
    written = json.loads((out / "result.json").read_text())
    run_id = import_result_dir(out, store)
    run = store.get_run(run_id)
    assert run["scenario"] == "dataset"
    assert run["run_info"]["signal_names"] == ["signal"]
    assert run["run_info"]["dataset"]["content_hash"] == written["dataset"]["content_hash"]
    (result,) = store.results(run_id)
    (training,) = written["trainings"]
    assert result["heldout_significance"] == training["heldout_significance"]
    assert result["heldout_objective"] == training["heldout_objective"]


# ----- crafted records: every field checked against gato_core/records.py ------------------
def first(kind: str):
    def pick(records):
        return next(r for r in records if r["kind"] == kind)
    return pick


def set_field(kind: str, field: str, value):
    def change(records):
        first(kind)(records)[field] = value
    return change


def drop_field(kind: str, field: str):
    def change(records):
        del first(kind)(records)[field]
    return change


def nested(kind: str, field: str, path: tuple, value):
    def change(records):
        target = first(kind)(records)[field]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


CRAFTED_RECORDS = [
    # (what changes, message: file + line, record kind, field)
    (nested("result", "significance", ("signal",), [1, 2]),
     r"records.jsonl line \d+: result record: significance\[signal\] must be a number"),
    (set_field("result", "objective", "high"),
     r"records.jsonl line \d+: result record: objective must be a number, got text"),
    (set_field("result", "categories", [1, 2]),
     r"result record: categories\[0\] must be an object"),
    (nested("result", "categories", (0, "z"), {"signal": [3]}),
     r"result record: categories\[0\]\.z\[signal\] must be a number"),
    (nested("result", "snapshot", ("boundaries",), "0.5"),
     r"result record: snapshot\.boundaries must be a list"),
    (set_field("result", "n_cats", 10 ** 30), r"result record: n_cats is out of range"),
    (set_field("result", "n_cats", 4), r"n_cats 4 is not a category count"),
    (set_field("result", "status", "exploded"), r"status must be one of"),
    (set_field("result", "order", {"0": 1}), r"result record: order must be a list"),
    (set_field("epoch", "loss", [0.5]), r"epoch record: loss must be a number, got a list"),
    (set_field("epoch", "epoch", True), r"epoch record: epoch must be a whole number"),
    (set_field("epoch", "epoch", 10 ** 6), r"epoch record: epoch 1000000 is outside"),
    (drop_field("epoch", "total_loss"), r"the epoch record lacks total_loss"),
    (drop_field("result", "categories"), r"the result record lacks categories"),
    (set_field("run_info", "baselines", [1]), r"run_info record: baselines must be an object"),
    (nested("run_info", "baselines", ("signal", "x"), 1.0),
     r"baselines\[signal\] has the key 'x', not a number of categories"),
    (set_field("run_info", "signal_names", "signal"),
     r"run_info record: signal_names must be a list"),
    (set_field("run_info", "held_out", {"kind": "split", "n_events": "many"}),
     r"run_info record: held_out\.n_events must be a whole number"),
]


@pytest.mark.parametrize("change,message", CRAFTED_RECORDS,
                         ids=[m.split(": ")[-1][:40] for _, m in CRAFTED_RECORDS])
def test_a_crafted_record_refuses_the_whole_import(cli_folder, store, change, message):
    folder = cli_folder("crafted")
    records = read_records(folder)
    change(records)
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    data = zip_bytes(folder_members(folder, "crafted/"))
    assert_refused(store, lambda: import_archive("crafted.zip", data, store), message)
    runs_dir = store.data_dir() / "runs"
    assert not runs_dir.exists() or not any(runs_dir.iterdir())  # no files left either


CRAFTED_TRAININGS = [
    ({"epochs_done": "many"}, r"result.json trainings \(K=3\): result record: epochs_done must "
                              r"be a whole number"),
    ({"n_cats": 10 ** 30}, r"trainings\[0\]: \"n_cats\" must be a category count"),
    ({"status": ["finished"]}, r"result record: status must be text"),
    ({"message": {"a": 1}}, r"result record: message must be text"),
]


@pytest.mark.parametrize("change,message", CRAFTED_TRAININGS)
def test_a_crafted_result_json_refuses_the_whole_import(cli_folder, store, change, message):
    folder = cli_folder("crafted", with_records=False)
    result = json.loads((folder / "result.json").read_text())
    result["trainings"][0].update(change)
    (folder / "result.json").write_text(json.dumps(result))
    data = tar_gz_bytes(folder, "crafted")
    assert_refused(store, lambda: import_archive("crafted.tar.gz", data, store), message)


def test_a_crafted_archive_is_refused_by_the_runs_page_with_its_reason(cli_folder, tmp_path):
    """Through the Runs page's import callback, as a browser posts it."""
    from gato_dash import runtime
    from gato_dash.app import create_app

    app = create_app(tmp_path / "page-data")
    client = app.server.test_client()
    client.get("/")
    folder = cli_folder("crafted")
    records = read_records(folder)
    nested("result", "significance", ("signal",), [1, 2])(records)
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    contents = "data:application/zip;base64," + base64.b64encode(
        zip_bytes(folder_members(folder, "crafted/"))).decode()
    key = next(k for k in app.callback_map if "runs-import-message.children" in k)
    spec = app.callback_map[key]
    values = {"runs-import-upload.contents": contents,
              "runs-import-upload.filename": "crafted.zip"}
    body = {"output": key,
            "outputs": [dict(zip(("id", "property"), p.rsplit(".", 1)))
                        for p in key[2:-2].split("...")],
            "inputs": [{**e, "value": values.get(f"{e['id']}.{e['property']}")}
                       for e in spec["inputs"]],
            "state": [{**e, "value": values.get(f"{e['id']}.{e['property']}")}
                      for e in spec["state"]],
            "changedPropIds": ["runs-import-upload.contents"]}
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.data[:500]
    text = response.get_data(as_text=True)
    assert "Import refused" in text and "significance[signal] must be a number" in text
    assert runtime.store().list_runs() == []
