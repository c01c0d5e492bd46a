"""Run-page streaming logic (gato_dash.live) and the history figures, without a browser."""
from __future__ import annotations

import json

import plotly.utils
import pytest

from gato_dash import live
from gato_dash.figures import history
from gato_dash.runtime.run_store import RunStore
from helpers.records import epoch_record

MAX_UPDATE_BYTES = 100_000


def payload_bytes(update: live.LiveUpdate) -> int:
    """What the poll callback sends: status, progress, K options, figures or extensions."""
    body = {"state": update.state, "status": update.status_text, "progress": update.progress,
            "k": update.k_options, "figures": update.figures, "extends": update.extends}
    return len(json.dumps(body, cls=plotly.utils.PlotlyJSONEncoder))


def drawn_epochs(figures: dict | None, extends: list[dict]) -> list[int]:
    """Epochs plotted in the first significance trace after a reset + its extensions."""
    xs = list(figures["significance"]["data"][0]["x"]) if figures else []
    for ext in extends:
        if "significance" in ext and 0 in ext["significance"][1]:
            i = ext["significance"][1].index(0)
            xs += ext["significance"][0]["x"][i]
    return xs


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs.sqlite")


def running_run(store, epochs=30, ks=(3,)):
    run_id = store.create_run({"scenario": "one_d", "epochs": epochs, "n_cats": list(ks)})
    store.claim(run_id)
    return run_id


def test_every_epoch_drawn_exactly_once_while_streaming(store):
    run_id = running_run(store, epochs=30)
    state = live.initial_state(run_id)
    first = live.poll(store, state)
    assert first.k_value == 3  # an empty frame for K=3: every figure, no points yet
    assert set(first.figures) == set(history.FIGURES)
    assert all(not trace["x"] for fig in first.figures.values() for trace in fig["data"])
    state, figures, extends = first.state, first.figures, []
    epoch = 0
    for burst in (1, 0, 3, 7, 0, 1, 18):  # epochs land between polls at any pace
        for _ in range(burst):
            store.append_epoch(run_id, epoch_record(3, epoch, snapshot=epoch % 10 == 0))
            epoch += 1
        update = live.poll(store, state)
        assert update.figures is None  # only new points are sent
        assert update.extends == {} if burst == 0 else len(update.extends) >= 3
        extends.append(update.extends)
        state = update.state
    assert drawn_epochs(figures, extends) == list(range(30))
    # hard significance markers: snapshot epochs only
    hard = [x for ext in extends if "significance" in ext
            for i, idx in enumerate(ext["significance"][1]) if idx == 1
            for x in ext["significance"][0]["x"][i]]
    assert hard == [0, 10, 20]


def test_late_page_catches_up_in_bounded_chunks(store):
    run_id = running_run(store, epochs=1000)
    for e in range(1000):
        store.append_epoch(run_id, epoch_record(3, e, snapshot=e % 10 == 0))
    store.set_status(run_id, "finished")
    state = live.initial_state(run_id)
    first = live.poll(store, state)
    sizes, extends, state = [payload_bytes(first)], [], first.state
    assert not first.done
    for _ in range(10):
        update = live.poll(store, state)
        sizes.append(payload_bytes(update))
        extends.append(update.extends)
        state = update.state
        if update.done:
            break
    assert update.done
    assert drawn_epochs(first.figures, extends) == list(range(1000))
    assert max(sizes) <= MAX_UPDATE_BYTES, sizes
    assert len(sizes) == 4  # ceil(1000 / 300) polls, the last one finding the rest


def test_steady_state_update_is_small(store):
    run_id = running_run(store, epochs=300)
    state = live.poll(store, live.initial_state(run_id)).state
    for e in range(3):
        store.append_epoch(run_id, epoch_record(3, e))
    update = live.poll(store, state)
    assert payload_bytes(update) < 3_000


def test_follows_the_k_in_training_and_lets_the_user_pick(store):
    run_id = running_run(store, epochs=5, ks=(3, 5))
    for e in range(5):
        store.append_epoch(run_id, epoch_record(3, e))
    store.put_result(run_id, {"kind": "result", "n_cats": 3, "status": "finished"})
    state = live.poll(store, live.initial_state(run_id)).state
    store.append_epoch(run_id, epoch_record(5, 0))
    moved = live.poll(store, state)
    assert moved.k_value == 5 and moved.figures is not None  # new K: fresh figures
    assert moved.figures["significance"]["data"][0]["x"] == [0]
    options = {o["value"]: o for o in moved.k_options}
    assert "✓" in options[3]["label"] and not options[3]["disabled"]
    assert "training" in options[5]["label"]
    picked = live.poll(store, moved.state, selected_k=3)  # look back at the finished K
    assert picked.k_value == 3 and len(picked.figures["significance"]["data"][0]["x"]) == 5
    assert picked.state["follow"] is False
    store.append_epoch(run_id, epoch_record(5, 1))
    stays = live.poll(store, picked.state)
    assert stays.k_value == 3 and stays.extends == {}


def test_done_and_results_flags(store):
    run_id = running_run(store, epochs=2)
    update = live.poll(store, live.initial_state(run_id))
    assert not update.done and update.cancellable
    for e in range(2):
        store.append_epoch(run_id, epoch_record(3, e))
    store.put_result(run_id, {"kind": "result", "n_cats": 3, "status": "finished"})
    store.set_status(run_id, "finished")
    final = live.poll(store, update.state)
    assert final.done and final.results_changed and not final.cancellable
    assert final.status_text.startswith("Finished")
    again = live.poll(store, final.state)
    assert not again.results_changed


def test_deleted_run(store):
    run_id = running_run(store)
    state = live.poll(store, live.initial_state(run_id)).state
    store.delete(run_id)
    update = live.poll(store, state)
    assert update.missing and update.done


@pytest.mark.parametrize("status,message,expected", [
    ("queued", "", "Queued"),
    ("cancelled", "cancelled at epoch 12 (K=5)", "Cancelled after 0:05: cancelled at epoch 12 (K=5)"),
    ("diverged", "diverged at epoch 7 (K=5)", "Diverged after 0:05: diverged at epoch 7 (K=5)"),
    ("failed", "training failed: ValueError: x", "Failed after 0:05: training failed"),
    ("interrupted", "interrupted at epoch 3 of K=5", "Interrupted after 0:05: interrupted"),
    ("finished", "", "Finished after 0:05 · K = 5, 10"),
])
def test_status_text(status, message, expected):
    run = {"status": status, "message": message, "n_cats": [5, 10], "config": {"epochs": 100},
           "started": 100.0, "finished": 105.0, "current_k": 5, "epochs_done": 12,
           "k_elapsed": 1.2}
    assert live.status_text(run, now=110.0).startswith(expected)


def test_running_status_eta_and_progress():
    run = {"status": "running", "message": "", "n_cats": [5, 10], "config": {"epochs": 100},
           "started": 100.0, "finished": None, "current_k": 10, "epochs_done": 50,
           "k_elapsed": 5.0, "cancel_requested": False}
    text = live.status_text(run, now=130.0)
    assert text == ("Training K = 10 (2 of 2) · epoch 50 / 100 · elapsed 0:30 · ETA 0:05")
    assert live.progress(run)[0] == pytest.approx(75.0)
    run["cancel_requested"] = True
    assert live.status_text(run, now=130.0).startswith("Cancelling")


# ----- figures ------------------------------------------------------------------------------
def test_history_figures_traces_and_points():
    epochs = [epoch_record(3, e, snapshot=e % 10 == 0) for e in range(25)]
    figs = history.history_figures(epochs, ["signal"], total_epochs=25, n_cats=3,
                                   references={"1-D optimum (K=3)": 1.6})
    sig = figs["significance"]
    assert [t.name for t in sig.data] == ["Z signal (soft)", "Z signal (hard)"]
    assert list(sig.data[0].x) == list(range(25)) and list(sig.data[1].x) == [0, 10, 20]
    assert sig.layout.xaxis.range == (-0.5, 24.5)
    assert any(s.y0 == 1.6 for s in sig.layout.shapes)
    assert figs["bias"].data[1].yaxis == "y2" and figs["bias"].layout.yaxis2.overlaying == "y"
    assert list(figs["bias"].data[0].x) == [0, 10, 20]
    assert figs["lr"].layout.yaxis.type == "log"
    assert len(figs["loss"].data) == 4


def test_extend_data_matches_trace_order():
    two = ["signal1", "signal2"]
    rec = epoch_record(3, 10, snapshot=True)
    rec["significance"] = {"signal1": 1.0, "signal2": 2.0}
    rec["hard_significance"] = {"signal1": 1.5, "signal2": float("nan")}
    data, indices = history.extend_data("significance", [rec], two)
    names = [s.name for s in history.series("significance", two)]
    assert [names[i] for i in indices] == ["Z signal1 (soft)", "Z signal2 (soft)",
                                           "Z signal1 (hard)", "Z signal2 (hard)"]
    assert data["y"] == [[1.0], [2.0], [1.5], [None]]  # NaN is sent as a gap
    rec2 = epoch_record(3, 11)
    rec2["significance"] = {"signal1": 1.0, "signal2": 2.0}
    _, indices = history.extend_data("significance", [rec2], two)
    assert indices == [0, 1]  # no hard point between snapshots
    assert history.extend_data("significance", [], two) is None


def test_references_only_for_one_signal():
    info = {"signal_names": ["signal"], "optimum_1d": {"5": 1.63}, "baseline_objective": {"5": 1.0}}
    assert history.significance_references(info, 5) == {
        "1-D optimum (K=5)": 1.63, "equidistant baseline (5 bins)": 1.0}
    assert history.significance_references({**info, "signal_names": ["a", "b"]}, 5) == {}
    assert history.significance_references(None, 5) == {}
