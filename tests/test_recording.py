"""gato_dash.runtime.recording: the one loop that writes a run's records into the store."""
import numpy as np

from gato_core.config import RunConfig
from gato_dash.figure_cache import FIGURES_DIR, prebuild_figures
from gato_dash.runtime.recording import final_status, store_records
from gato_dash.runtime.run_store import RunStore


def records(n_cats=2, epochs=3):
    yield {"kind": "run_info", "scenario": "one_d", "signal_names": ["signal"],
           "baselines": {"signal": {"2": 1.0}}}
    for epoch in range(epochs):
        yield {"kind": "epoch", "n_cats": n_cats, "epoch": epoch, "epochs": epochs,
               "loss": -1.0 - epoch, "significance": {"signal": 1.0 + epoch}}
    # numpy values as the engine may hand them: stored as plain JSON numbers
    yield {"kind": "result", "n_cats": n_cats, "status": "finished", "epochs_done": epochs,
           "significance": {"signal": np.float64(2.5)}, "objective": np.float32(2.5),
           "categories": [], "components": []}


def new_run(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = store.create_run(RunConfig(scenario="one_d", n_cats=[2]).to_dict())
    store.claim(run_id)
    return store, run_id


def test_every_record_lands_in_the_store_in_order(tmp_path):
    store, run_id = new_run(tmp_path)
    stored = store_records(store, run_id, records())
    assert [r["n_cats"] for r in stored] == [2]
    assert type(stored[0]["significance"]["signal"]) is float
    assert store.get_run(run_id)["run_info"]["baselines"] == {"signal": {"2": 1.0}}
    assert [e["epoch"] for e in store.epochs(run_id)] == [0, 1, 2]
    assert store.results(run_id) == stored
    assert not (store.run_dir(run_id) / FIGURES_DIR).exists()  # figures only when asked


def test_figures_come_with_the_records_when_asked(tmp_path):
    store, run_id = new_run(tmp_path)
    store_records(store, run_id, records(), on_result=prebuild_figures)
    # the K's figures were written beside the run before its result was stored
    assert any((store.run_dir(run_id) / FIGURES_DIR).glob("k-2.*.json.gz"))


def test_a_run_deleted_meanwhile_stops_the_loop(tmp_path):
    store, run_id = new_run(tmp_path)
    seen = []

    def stream():
        for record in records():
            seen.append(record["kind"])
            if len(seen) == 3:
                store.delete(run_id)
            yield record

    assert store_records(store, run_id, stream()) is None
    assert seen == ["run_info", "epoch", "epoch"]  # nothing read after the refused epoch


def test_final_status():
    assert final_status([{"status": "finished", "n_cats": 3}], False) == ("finished", "")
    assert final_status([], True) == ("cancelled",
                                      "cancelled at epoch 0 (before training started)")
    assert final_status([{"status": "finished", "n_cats": 3},
                         {"status": "cancelled", "n_cats": 5, "epochs_done": 7}], False) == (
        "cancelled", "cancelled at epoch 7 (K=5)")
    assert final_status([{"status": "diverged", "n_cats": 3, "message": "NaN loss"}],
                        False) == ("diverged", "NaN loss (K=3)")
