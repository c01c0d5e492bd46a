"""Training on imported datasets: a toy's events written to CSV, Parquet and ROOT, imported
and trained with the same seed give the toy run's significance; held-out numbers; negative
background sums never make the objective NaN."""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uproot

from gato_core.config import ConfigError, RunConfig
from gato_core.datasets import import_dataset, load_dataset
from gato_core.evaluation import hard_significance
from gato_core.scenarios import generate
from gato_core.training import train


def results(records):
    return {r.n_cats: r for r in records if r.kind == "result"}


def as_dataset_config(toy: RunConfig, dataset_id: str) -> RunConfig:
    """The toy run's settings, pointed at the dataset, with nothing held out."""
    return RunConfig.from_dict({**toy.to_dict(), "scenario": "dataset", "dataset": dataset_id,
                                "held_out_fraction": 0.0})


def write(kind, path, events):
    names = np.array(events.process_names)[events.process]
    columns = {f"s{j}": events.scores[:, j] for j in range(events.dim)}
    columns["w"] = events.weight
    if events.mass is not None:
        columns["m"] = events.mass
    if kind == "root":  # the usual ROOT layout: one tree per process, no label column
        with uproot.recreate(path) as f:
            for i, name in enumerate(events.process_names):
                keep = events.process == i
                tree = f.mktree(name, {k: "float32" for k in columns})
                tree.extend({k: v[keep] for k, v in columns.items()})
        return None
    table = pa.table({**{k: pa.array(v) for k, v in columns.items()}, "proc": pa.array(names)})
    if kind == "csv":
        from pyarrow import csv as pa_csv

        pa_csv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return "proc"


@pytest.fixture(scope="module")
def one_d_toy():
    config = RunConfig.defaults("one_d", n_signal=1500, n_bkg=4500, epochs=6, n_cats=[3],
                                snapshot_interval=5, seed=11)
    return config, results(train(config))


@pytest.mark.parametrize("kind", ["csv", "parquet", "root"])
def test_round_trip_reproduces_the_toy_run(tmp_path, one_d_toy, kind):
    toy, toy_results = one_d_toy
    events = generate("one_d", toy.n_signal, toy.n_bkg, seed=toy.seed, noise=toy.noise)
    path = tmp_path / f"events.{kind}"
    label = write(kind, path, events)
    mapping = {"score_columns": ["s0"], "weight_column": "w", "process_column": label,
               "signals": ["signal"]}
    manifest = import_dataset([str(path)], mapping, tmp_path / "datasets", kind)
    config = as_dataset_config(toy, manifest.id)
    records = list(train(config, datasets_dir=tmp_path / "datasets"))
    info = records[0]
    assert info.dataset["id"] == manifest.id
    assert info.dataset["content_hash"] == manifest.content_hash
    assert info.held_out is None  # nothing held out
    got, want = results(records)[3], toy_results[3]
    assert got.significance["signal"] == pytest.approx(want.significance["signal"], rel=1e-6)
    assert got.boundaries == pytest.approx(want.boundaries, abs=1e-6)
    assert got.heldout_significance is None
    # the dataset run computes the same baselines and exact optimum
    toy_info = next(r for r in train(toy.updated(epochs=1)) if r.kind == "run_info")
    assert info.baselines == toy_info.baselines and info.baseline_objective == \
        toy_info.baseline_objective
    assert info.optimum_1d == toy_info.optimum_1d


def test_bump_hunt_round_trip_with_mass_window_and_sidebands(tmp_path):
    toy = RunConfig.defaults("bump_hunt", n_signal=400, n_bkg=4000, epochs=4, n_cats=[3],
                             rewt_interval=2, seed=5)
    toy_result = results(train(toy))[3]
    events = generate("bump_hunt", 400, 4000, seed=5, noise=toy.noise)
    write("parquet", tmp_path / "b.parquet", events)
    mapping = {"score_columns": ["s0", "s1"], "weight_column": "w", "process_column": "proc",
               "signals": ["signal1", "signal2"], "mass_column": "m",
               "mass_window": [123.5, 126.5], "mass_range": [100, 180]}
    manifest = import_dataset([str(tmp_path / "b.parquet")], mapping, tmp_path / "ds")
    assert manifest.mean_mode == "softmax" and manifest.dim == 2
    records = list(train(as_dataset_config(toy, manifest.id), datasets_dir=tmp_path / "ds"))
    got = results(records)[3]
    for name in ("signal1", "signal2"):
        assert got.significance[name] == pytest.approx(toy_result.significance[name], rel=1e-6)
    assert got.reweight_factors == pytest.approx(toy_result.reweight_factors, rel=1e-6)
    assert got.mass_histograms["window"] == [123.5, 126.5]


def test_held_out_numbers_are_the_trained_categories_on_the_other_part(tmp_path):
    events = generate("one_d", 2000, 6000, seed=3)
    write("parquet", tmp_path / "e.parquet", events)
    manifest = import_dataset([str(tmp_path / "e.parquet")],
                              {"score_columns": ["s0"], "weight_column": "w",
                               "process_column": "proc", "signals": ["signal"]},
                              tmp_path / "ds")
    config = RunConfig.defaults("dataset", dataset=manifest.id, epochs=5, n_cats=[3], seed=2)
    records = list(train(config, datasets_dir=tmp_path / "ds"))
    info, result = records[0], results(records)[3]
    assert info.held_out["kind"] == "split" and info.held_out["fraction"] == 0.5
    assert info.n_events + info.held_out["n_events"] == 8000
    # recompute: the same split, the same categories, numpy only
    from gato_core.data import held_out_split

    _, held, _ = held_out_split(config, load_dataset(tmp_path / "ds", manifest.id))
    z, objective = hard_significance(result.parameters, held)
    assert result.heldout_significance == z and result.heldout_objective == objective
    assert z["signal"] > 0 and z["signal"] != result.significance["signal"]


def test_toy_runs_report_held_out_significance_from_an_independent_sample(one_d_toy):
    config, toy_results = one_d_toy
    result = toy_results[3]
    held = generate("one_d", config.n_signal, config.n_bkg, seed=config.seed + 2 ** 31,
                    noise=config.noise)
    z, objective = hard_significance(result.parameters, held)
    assert result.heldout_significance == z and result.heldout_objective == objective


def test_fewer_events_than_categories_is_a_clear_error(tmp_path):
    events = generate("one_d", 100, 1000, seed=1)
    keep = np.r_[0:3, 100:106]  # 3 signal and 6 background events
    small = events.subset(keep)
    write("parquet", tmp_path / "s.parquet", small)
    manifest = import_dataset([str(tmp_path / "s.parquet")],
                              {"score_columns": ["s0"], "weight_column": "w",
                               "process_column": "proc", "signals": ["signal"]}, tmp_path / "ds")
    config = RunConfig.defaults("dataset", dataset=manifest.id, n_cats=[5, 20],
                                held_out_fraction=0.0)
    with pytest.raises(ConfigError) as err:
        next(train(config, datasets_dir=tmp_path / "ds"))
    assert err.value.problems == {"n_cats": "9 training events cannot fill 20 categories"}


def test_negative_background_sum_keeps_loss_and_gradients_finite():
    import tensorflow as tf

    from gato_core.objective import objective_loss, significance_per_signal

    signal = tf.Variable([[3.0, 2.0, 0.5]])
    background = tf.Variable([10.0, -4.0, 0.0])  # negative-weight MC can push a sum below 0
    with tf.GradientTape() as tape:
        loss = objective_loss(significance_per_signal(signal, background))
    grads = tape.gradient(loss, [signal, background])
    assert np.isfinite(loss.numpy())
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)
    # the numpy evaluation floors the same way: a negative background counts as the floor
    from gato_core.significance import B_FLOOR, asimov_z, significance_per_signal as np_z

    expected = np.sqrt(np.sum(asimov_z([3.0, 2.0, 0.5], [10.0, B_FLOOR, B_FLOOR]) ** 2))
    assert np_z(np.array([[3.0, 2.0, 0.5]]), np.array([10.0, -4.0, 0.0]))[0] == \
        pytest.approx(expected)
    assert -loss.numpy() == pytest.approx(expected, rel=1e-4)
