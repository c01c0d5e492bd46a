"""A run trained from the command line on its own files carries its dataset, so the run
folder and a dashboard import of it can produce the analysis bundle (issue #22 item 5);
the CLI's analysis flags (trees, cut, scale factors, lnN systematics, objective) end up in
the dataset and the bundle."""
from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import pytest
import uproot

from gato_core import bundle
from gato_core.cli import main
from gato_core.datasets import datasets_folder, get_dataset
from gato_dash.runtime.importer import import_result_dir
from gato_dash.runtime.run_store import RunStore

TRAIN = ["--epochs", "3", "--gato-bins", "3", "--starts", "1", "--quiet"]


def write_root(path, seed=0):
    rng = np.random.default_rng(seed)
    with uproot.recreate(path) as f:
        for name, n, shift in (("sig", 3000, 0.3), ("ttbar", 6000, 0.0),
                               ("ttbar_JESup", 6000, 0.0), ("wjets", 4000, -0.1)):
            tree = f.mktree(name, {"score": "float32", "w": "float32", "njets": "int32"})
            tree.extend({"score": np.clip(rng.normal(0.4 + shift, 0.2, n), 0, 1).astype("f4"),
                         "w": rng.uniform(0.5, 1.5, n).astype("f4"),
                         "njets": rng.integers(0, 5, n).astype("i4")})
        f.mktree("meta", {"lumi_pb": "float64"}).extend({"lumi_pb": np.array([1.0])})


def import_and_bundle(out, tmp_path):
    store = RunStore(tmp_path / "app" / "runs.sqlite")
    run_id = import_result_dir(out, store)
    run = store.get_run(run_id)
    data = bundle.export(run["config"], store.results(run_id),
                         datasets_dir=datasets_folder(store.data_dir()))
    return run, zipfile.ZipFile(io.BytesIO(data))


def test_run_data_folder_carries_its_dataset_and_an_import_can_export(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "events.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["score", "w", "proc"])
        for i in range(6000):
            signal = i % 4 == 0
            writer.writerow([float(np.clip(rng.normal(0.7 if signal else 0.4, 0.2), 0, 1)),
                             1.0, "sig" if signal else "bkg"])
    out = tmp_path / "run"
    code = main(["run", "--data", str(path), "--score-columns", "score", "--weight-column", "w",
                 "--process-column", "proc", "--signal", "sig", "--data-dir",
                 str(tmp_path / "elsewhere"), "--out", str(out), *TRAIN])
    assert code == 0
    summary = json.loads((out / "result.json").read_text())
    dataset_id = summary["config"]["dataset"]
    assert (out / "datasets" / dataset_id / "manifest.json").is_file()
    run, zf = import_and_bundle(out, tmp_path)
    assert run["config"]["dataset"] == dataset_id
    assert get_dataset(tmp_path / "app" / "datasets", dataset_id).content_hash == \
        get_dataset(out / "datasets", dataset_id).content_hash
    names = set(zf.namelist())
    assert {"K3/workspace.json", "K3/yields.csv", "K3/yields_held_out.csv"} <= names
    full = list(csv.DictReader(io.StringIO(zf.read("K3/yields.csv").decode())))
    held = list(csv.DictReader(io.StringIO(zf.read("K3/yields_held_out.csv").decode())))
    assert {r["sample"] for r in full} == {"full"} and {r["sample"] for r in held} == {"held_out"}
    # held-out: about half the events, weights doubled, so yields near the full sample's
    n_full = sum(int(r["n_events"]) for r in full)
    n_held = sum(int(r["n_events"]) for r in held)
    assert n_full == 6000 and 0.4 < n_held / n_full < 0.6
    assert sum(float(r["sum_w"]) for r in held) == pytest.approx(6000, rel=0.1)
    assert json.loads(zf.read("K3/statistical_model_held_out.json"))["sample"] == "held_out"
    assert json.loads(zf.read("K3/statistical_model.json"))["sample"] == "full"


def test_cli_analysis_flags_reach_the_dataset_and_the_bundle(tmp_path):
    path = tmp_path / "mc.root"
    write_root(path)
    out = tmp_path / "run"
    code = main(["run", "--data", str(path), "--score-columns", "score", "--weight-column", "w",
                 "--signal", "hh", "--trees", "sig=hh", "ttbar=tt", "wjets",
                 "--selection", "njets >= 1 & score > 0.05", "--luminosity", "2",
                 "--process-scales", "tt=1.5", "--systematics", "lumi:*=0.025", "xs_tt:tt=0.1",
                 "--objective", "asimov_bkg_unc", "--bkg-rel-unc", "0.1",
                 "--out", str(out), *TRAIN])
    assert code == 0
    summary = json.loads((out / "result.json").read_text())
    assert summary["config"]["objective"] == "asimov_bkg_unc"
    manifest = get_dataset(out / "datasets", summary["config"]["dataset"])
    assert manifest.processes == ["hh", "tt", "wjets"]
    assert manifest.mapping["systematics"] == {"lumi": {"*": 0.025}, "xs_tt": {"tt": 0.1}}
    scaling = manifest.report["scaling"]
    assert scaling["yields_after"]["tt"] == pytest.approx(3.0 * scaling["yields_before"]["tt"])
    assert scaling["yields_after"]["wjets"] == pytest.approx(2.0 * scaling["yields_before"]["wjets"])
    assert manifest.report["selection"]["events_read"] == 13_000  # no variation, no meta

    run, zf = import_and_bundle(out, tmp_path)
    card = zf.read("K3/datacard.txt").decode().splitlines()
    rows = {line.split()[0]: line.split() for line in card if line and not line.startswith("#")}
    n_columns = len(rows["rate"]) - 1
    assert rows["lumi"][1] == "lnN" and len(rows["lumi"]) == 2 + n_columns
    assert set(rows["lumi"][2:]) <= {"1.025", "-"} and "1.1" in rows["xs_tt"][2:]
    spec = json.loads(zf.read("K3/workspace.json"))
    normsys = {m["name"] for ch in spec["channels"] for smp in ch["samples"]
               for m in smp["modifiers"] if m["type"] == "normsys"}
    assert normsys == {"lumi", "xs_tt"}
    model = json.loads(zf.read("K3/statistical_model.json"))
    assert model["pyhf_z_syst"]["hh"] < model["pyhf_z_mc_stat"]["hh"]
    assert "held-out sample" in zf.read("README.md").decode()
