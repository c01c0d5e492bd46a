import json
import os
import subprocess
import sys
from pathlib import Path

from gato_core.config import RunConfig
from gato_core.scenarios import generate
from helpers.optimum import snapped_against_optimum


ROOT = Path(__file__).resolve().parents[1]


def cli(*args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "gato_core", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


def test_bad_flag_values_exit_non_zero_with_the_message(tmp_path):
    proc = cli("run", "--scenario", "one_d", "--epochs", "0", "--gato-bins", "1",
               "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "epochs must be between 1 and 100000, got 0" in proc.stderr
    assert "number of categories must be between 2 and 50, got 1" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()  # nothing started


def test_run_writes_result_json_and_restorable_parameters(tmp_path):
    out = tmp_path / "run"
    proc = cli("run", "--scenario", "one_d", "--epochs", "25", "--gato-bins", "3", "4",
               "--n-signal", "3000", "--n-bkg", "9000", "--seed", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "epoch 25/25" in proc.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["n_cats"] == [3, 4] and result["config"]["seed"] == 3
    assert set(result["baselines"]["signal"]) == {"2", "5", "10", "20"}
    assert [t["n_cats"] for t in result["trainings"]] == [3, 4]
    assert set(result["optimum_1d"]) == {"3", "4"}
    events = generate("one_d", 3000, 9000, seed=3, noise=result["config"]["noise"])
    for training in result["trainings"]:
        # GATO may beat the fine-bin optimum only by the binning resolution: snapped to
        # the fine grid, its cuts cannot (tests/helpers/optimum.py)
        z_snapped, best, _, _ = snapped_against_optimum(events, training["boundaries"])
        assert z_snapped <= best * (1 + 1e-12)
        assert training["boundaries"] == sorted(training["boundaries"])
        assert training["epoch_ms_median"] > 0
    # saved parameters restore to the same boundaries (numpy path, no TF needed)
    from gato_core.evaluation import boundaries_1d
    params = json.loads((out / "params" / "4_cats.json").read_text())
    assert boundaries_1d(params) == result["trainings"][1]["boundaries"]
    lines = (out / "records.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 2 * (25 + 1)


def test_choices_come_from_the_registries_and_store_flag_is_gone():
    from gato_core.cli import build_parser
    from gato_core.config import MODELS
    from gato_core.scenarios import SCENARIOS
    from gato_core.schedules import SCHEDULES

    run = build_parser()._subparsers._group_actions[0].choices["run"]
    by_dest = {a.dest: a for a in run._actions}
    assert list(by_dest["scenario"].choices) == list(SCENARIOS)
    assert list(by_dest["model"].choices) == list(MODELS)
    assert list(by_dest["lr_schedule"].choices) == list(SCHEDULES)
    assert list(by_dest["t_schedule"].choices) == list(SCHEDULES)
    assert "store" not in by_dest
    source = (ROOT / "gato_core" / "cli.py").read_text()
    assert "gato_dash" not in source  # gato_core never reaches into the dashboard


def test_optimiser_flags_reach_the_config_and_the_reference_preset_is_one_random_start():
    from gato_core.cli import build_parser, config_from_args
    from gato_core.config import PRESETS
    from gato_core.initial import INITS

    parse = build_parser().parse_args
    default = config_from_args(parse(["run", "--scenario", "bump_hunt", "--out", "o"]))
    assert (default.init, default.n_starts) == ("auto", 2)
    reference = config_from_args(parse(["run", "--scenario", "bump_hunt", "--out", "o",
                                        "--preset", "reference", "--epochs", "7"]))
    assert reference == RunConfig.preset("reference", "bump_hunt", epochs=7)
    assert (reference.init, reference.n_starts) == ("random", 1)
    chosen = config_from_args(parse(["run", "--scenario", "one_d", "--out", "o", "--starts", "3",
                                     "--init", "random", "--explore-fraction", "0.25"]))
    assert (chosen.n_starts, chosen.init, chosen.explore_fraction) == (3, "random", 0.25)
    run = build_parser()._subparsers._group_actions[0].choices["run"]
    by_dest = {a.dest: a for a in run._actions}
    assert list(by_dest["preset"].choices) == list(PRESETS)
    assert list(by_dest["init"].choices) == list(INITS)


def test_bad_optimiser_flags_are_messages(tmp_path):
    proc = cli("run", "--scenario", "one_d", "--starts", "0", "--explore-fraction", "1.5",
               "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "number of starts must be between 1 and 8, got 0" in proc.stderr
    assert "fraction of epochs with all starts must be between 0 and 1, got 1.5" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def _toy_parquet(path, seed=4):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gato_core.scenarios import generate

    events = generate("one_d", 1500, 4500, seed=seed)
    pq.write_table(pa.table({"score": events.scores[:, 0], "w": events.weight,
                             "proc": np.array(events.process_names)[events.process]}), path)


def test_dataset_import_then_run_on_files_reports_held_out_numbers(tmp_path):
    _toy_parquet(tmp_path / "mc.parquet")
    mapping = ["--score-columns", "score", "--weight-column", "w", "--process-column", "proc",
               "--signal", "signal"]
    proc = cli("dataset", "import", str(tmp_path / "mc.parquet"), "--name", "mc 2026",
               "--data-dir", str(tmp_path / "data"), *mapping)
    assert proc.returncode == 0, proc.stderr
    assert "imported dataset" in proc.stdout and "6,000 events" in proc.stdout
    listing = cli("dataset", "list", "--data-dir", str(tmp_path / "data"))
    assert "mc 2026" in listing.stdout
    dataset_id = proc.stdout.split()[2]

    out = tmp_path / "run"
    proc = cli("run", "--dataset", dataset_id, "--data-dir", str(tmp_path / "data"),
               "--epochs", "5", "--gato-bins", "3", "--held-out-fraction", "0.4",
               "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["scenario"] == "dataset" and result["config"]["dataset"] == dataset_id
    assert result["dataset"]["id"] == dataset_id and result["dataset"]["content_hash"]
    assert result["held_out"]["kind"] == "split" and result["held_out"]["fraction"] == 0.4
    (training,) = result["trainings"]
    assert training["heldout_significance"]["signal"] > 0
    assert set(result["optimum_1d"]) == {"3"}

    # files straight to a run: imported into the output folder first
    out2 = tmp_path / "run2"
    proc = cli("run", "--data", str(tmp_path / "mc.parquet"), *mapping, "--epochs", "3",
               "--gato-bins", "3", "--out", str(out2), "--quiet")
    assert proc.returncode == 0, proc.stderr
    result2 = json.loads((out2 / "result.json").read_text())
    # same content, same hash, whatever the id
    assert result2["dataset"]["content_hash"] == result["dataset"]["content_hash"]
    assert (out2 / "datasets" / result2["dataset"]["id"] / "manifest.json").exists()


def test_bad_dataset_input_is_a_message_and_leaves_nothing(tmp_path):
    _toy_parquet(tmp_path / "mc.parquet")
    proc = cli("dataset", "import", str(tmp_path / "mc.parquet"), "--data-dir",
               str(tmp_path / "data"), "--score-columns", "nope", "--signal", "signal",
               "--process-column", "proc")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: mc.parquet: no column 'nope' (it has: score, w, proc)" in proc.stderr
    assert not (tmp_path / "data").exists()
    proc = cli("run", "--data", str(tmp_path / "mc.parquet"), "--score-columns", "score",
               "--signal", "higgs", "--process-column", "proc", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "signal 'higgs' is not among the processes" in proc.stderr
    assert not (tmp_path / "o").exists()
