"""Importing CLI result folders and uploaded archives into the run store."""
from __future__ import annotations

import base64
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from gato_core.config import RunConfig
from gato_dash.importer import (
    ImportProblem,
    import_archive,
    import_result_dir,
    import_upload,
)
from gato_dash import importer
from gato_dash.store import RunStore

KS = (3, 5)
EPOCHS = 12


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "data" / "runs.sqlite")


def _config() -> dict:
    return RunConfig.defaults("one_d", epochs=EPOCHS, n_cats=list(KS), n_signal=2000,
                              n_bkg=6000).to_dict()


def write_cli_folder(folder: Path, with_records: bool = False) -> Path:
    """A folder as `python -m gato_core run --out DIR` writes it (issue 2, item 7)."""
    folder.mkdir(parents=True)
    trainings = []
    for k in KS:
        cuts = [(i + 1) / k for i in range(k - 1)]
        trainings.append({"n_cats": k, "significance": {"signal": 1.5 + k / 100},
                          "boundaries": cuts, "epoch_ms_median": 3.25})
        (folder / f"parameters_K{k}.json").write_text(json.dumps(
            {"model": "sigmoid_cuts", "n_cats": k, "dim": 1, "mean_range": [0, 1],
             "raw_cuts": [0.0] * (k - 1)}))
    result = {"config": _config(),
              "baselines": {"signal": {"2": 0.7, "5": 1.0, "10": 1.17}},
              "trainings": trainings, "optimum_1d": {"3": 1.55, "5": 1.63}}
    (folder / "result.json").write_text(json.dumps(result))
    if with_records:
        lines = [{"kind": "run_info", "scenario": "one_d", "n_events": 8000,
                  "process_names": ["signal", "bkg1"], "signal_names": ["signal"],
                  "yields": {"signal": 50.0, "bkg1": 1e4},
                  "baselines": result["baselines"], "optimum_1d": result["optimum_1d"],
                  "baseline_objective": {"5": 1.0}, "data_seconds": 0.1}]
        for k, training in zip(KS, trainings):
            for e in range(EPOCHS):
                lines.append({"kind": "epoch", "n_cats": k, "epoch": e, "epochs": EPOCHS,
                              "loss": -1 - e / 10, "total_loss": -1 - e / 10,
                              "significance": {"signal": 1 + e / 10}, "penalty_yield": 0,
                              "penalty_unc": 0, "temperature": 1.0, "learning_rate": 0.1,
                              "epoch_ms": 3, "elapsed_s": e * 0.003, "mean_abs_bias": None,
                              "hard_significance": None, "snapshot": None})
            lines.append({"kind": "result", "n_cats": k, "status": "finished", "message": "",
                          "epochs_done": EPOCHS, "significance": training["significance"],
                          "objective": training["significance"]["signal"],
                          "categories": [], "order": list(range(k)),
                          "boundaries": training["boundaries"],
                          "snapshot": {"epoch": EPOCHS - 1, "temperature": 0.1,
                                       "boundaries": training["boundaries"]},
                          "mass_histograms": None, "parameters": {}, "epoch_ms_median": 3.25})
        (folder / "records.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return folder


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
    return {prefix + p.name: p.read_bytes() for p in folder.iterdir()}


# ----- good imports ----------------------------------------------------------------------
def test_import_result_json_only(tmp_path, store):
    folder = write_cli_folder(tmp_path / "out")
    run_id = import_result_dir(folder, store)
    run = store.get_run(run_id)
    assert run["status"] == "finished"
    assert "no per-epoch history" in run["message"]
    assert run["config"]["epochs"] == EPOCHS and run["scenario"] == "one_d"
    assert run["run_info"]["baselines"]["signal"]["5"] == 1.0
    assert run["run_info"]["optimum_1d"] == {"3": 1.55, "5": 1.63}
    results = store.results(run_id)
    assert [r["n_cats"] for r in results] == list(KS)
    assert results[1]["significance"] == {"signal": 1.55}
    assert results[1]["parameters"]["raw_cuts"] == [0.0] * 4
    assert [c["range"] for c in results[0]["categories"]] == [[0.0, 1 / 3], [1 / 3, 2 / 3],
                                                              [2 / 3, 1.0]]
    assert store.epochs(run_id) == []
    kept = store.run_dir(run_id) / importer.IMPORTED_FILES_DIR
    assert (kept / "result.json").is_file() and (kept / "parameters_K5.json").is_file()
    store.delete(run_id)
    assert not kept.exists()


def test_import_with_records_carries_histories(tmp_path, store):
    folder = write_cli_folder(tmp_path / "out", with_records=True)
    run_id = import_result_dir(folder, store, name="batch seed 42")
    run = store.get_run(run_id)
    assert run["name"] == "batch seed 42"
    assert run["run_info"]["process_names"] == ["signal", "bkg1"]
    assert len(store.epochs(run_id, n_cats=5)) == EPOCHS
    # parameters come from the saved files when the records leave them empty
    assert store.results(run_id)[0]["parameters"]["n_cats"] == 3


def test_import_zip_and_tar_gz_archives(tmp_path, store):
    folder = write_cli_folder(tmp_path / "run_a", with_records=True)
    zipped = zip_bytes(folder_members(folder, prefix="run_a/"))
    run_zip = import_archive("run_a.zip", zipped, store)
    assert store.get_run(run_zip)["name"] == "imported run_a"
    run_tgz = import_archive("run_a.tar.gz", tar_gz_bytes(folder, "run_a"), store)
    assert len(store.epochs(run_tgz)) == 2 * EPOCHS
    upload = "data:application/zip;base64," + base64.b64encode(zipped).decode()
    assert store.get_run(import_upload("run_a.zip", upload, store))["status"] == "finished"


# ----- bad input -------------------------------------------------------------------------
def assert_refused(store, call, match):
    before = len(store.list_runs())
    with pytest.raises(ImportProblem, match=match):
        call()
    assert len(store.list_runs()) == before  # nothing half-imported is left behind


def test_path_traversal_in_zip_is_refused(tmp_path, store):
    folder = write_cli_folder(tmp_path / "out")
    members = folder_members(folder)
    members["../../escaped.txt"] = b"gotcha"
    assert_refused(store, lambda: import_archive("evil.zip", zip_bytes(members), store),
                   "leaving its folder")
    members = folder_members(folder)
    members["/tmp/absolute.txt"] = b"gotcha"
    assert_refused(store, lambda: import_archive("evil.zip", zip_bytes(members), store),
                   "absolute path")
    assert not Path("/tmp/absolute.txt").exists()


def test_symlink_in_tar_is_refused(tmp_path, store):
    folder = write_cli_folder(tmp_path / "out")
    (folder / "link").symlink_to("/etc/passwd")
    assert_refused(store, lambda: import_archive("x.tar.gz", tar_gz_bytes(folder, "out"), store),
                   "link")


def test_archive_size_limits(tmp_path, store, monkeypatch):
    folder = write_cli_folder(tmp_path / "out")
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


def test_not_an_archive_and_damaged_archives(tmp_path, store):
    assert_refused(store, lambda: import_archive("notes.txt", b"hello world", store),
                   "neither a .zip nor a .tar.gz")
    folder = write_cli_folder(tmp_path / "out")
    truncated = tar_gz_bytes(folder, "out")[:200]
    assert_refused(store, lambda: import_archive("cut.tar.gz", truncated, store), "damaged")
    assert_refused(store, lambda: import_upload("x.zip", "data:;base64,@@@", store), "base64")


def test_archive_without_result_json(store):
    data = zip_bytes({"readme.txt": b"no results here"})
    assert_refused(store, lambda: import_archive("empty.zip", data, store), "no result.json")


def test_invalid_config_and_records_are_reported(tmp_path, store):
    folder = write_cli_folder(tmp_path / "out", with_records=True)
    result = json.loads((folder / "result.json").read_text())
    result["config"]["epochs"] = 0
    (folder / "result.json").write_text(json.dumps(result))
    assert_refused(store, lambda: import_result_dir(folder, store), "epochs must be between")

    folder = write_cli_folder(tmp_path / "out2", with_records=True)
    with (folder / "records.jsonl").open("a") as f:
        f.write("{not json\n")
    assert_refused(store, lambda: import_result_dir(folder, store), r"records.jsonl line \d+")

    folder = write_cli_folder(tmp_path / "out3")
    (folder / "result.json").write_text('{"config": {}, "trainings": [{"n_cats": 5}]}')
    assert_refused(store, lambda: import_result_dir(folder, store), "significance")


def test_imported_run_lasts_its_training_time_not_the_import(tmp_path, store):
    folder = write_cli_folder(tmp_path / "out", with_records=True)
    run = store.get_run(import_result_dir(folder, store))
    # data 0.1 s, then each K's last epoch at elapsed 11 * 0.003 s (the records above)
    assert run["finished"] - run["started"] == pytest.approx(0.1 + 2 * 11 * 0.003)
    assert importer.training_seconds({"data_seconds": 2.0}, [{"n_cats": 3, "elapsed_s": 5.0}],
                                     []) == 7.0
    assert importer.training_seconds({}, [{"n_cats": 3}], []) is None  # nothing recorded
