"""Results figures (gato_dash.figures: categories, spectra, baselines, category_numbers,
catalogue) and the results section's plain helpers.

Most tests use hand-made records (tests/helpers/records.py); the ``real_runs`` tests feed
the same builders what ``gato_core.training.train`` yields for tiny runs, so a drift
between the contract and the engine shows up here.
"""
from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from gato_core.evaluation import component_categories

from helpers import records as rf
from gato_dash.figures import baselines, catalogue, categories, category_numbers, spectra, style


@pytest.fixture(scope="module")
def bump():
    return rf.run_record("bump_hunt", n_cats=(5, 8))


@pytest.fixture(scope="module")
def one_d():
    return rf.run_record("one_d", n_cats=(5, 10), epochs=100)


def _result(results, k):
    return next(r for r in results if r["n_cats"] == k)


def _epochs_of(epochs, k):
    return [e for e in epochs if e["n_cats"] == k]


def _traces(fig, kind=None, name_contains=None):
    out = []
    for t in fig.data:
        if kind and t.type != kind:
            continue
        if name_contains and name_contains not in (t.name or ""):
            continue
        out.append(t)
    return out


# --------------------------------------------------------------------------------------
# 2-D category map
# --------------------------------------------------------------------------------------

class TestCategoryMap:
    def test_one_frame_per_snapshot_with_slider_and_buttons(self, bump):
        run, epochs, results = bump
        result = _result(results, 5)
        n_snapshots = sum(1 for e in _epochs_of(epochs, 5) if e["snapshot"])
        fig = categories.category_map_animation(epochs, result, run["run_info"])
        assert n_snapshots == 41  # epochs 0, 10, ..., 390 and the last, 399
        assert len(fig.frames) == n_snapshots
        steps = fig.layout.sliders[0].steps
        assert [s.label for s in steps] == [f.name for f in fig.frames]
        assert fig.layout.sliders[0].active == n_snapshots - 1  # opens on the final map
        labels = [b.label for b in fig.layout.updatemenus[0].buttons]
        assert any("Play" in label for label in labels)
        assert any("Pause" in label for label in labels)
        play = fig.layout.updatemenus[0].buttons[0]
        assert play.method == "animate" and play.args[0] is None

    def test_frames_are_mapped_through_order_and_blank_outside(self, bump):
        run, epochs, results = bump
        result = _result(results, 8)
        assert result["order"] != sorted(result["order"])  # fixture uses a real permutation
        fig = categories.category_map_animation(epochs, result, run["run_info"])
        snaps = categories.snapshots_of(epochs, result)
        for frame, snap in zip(fig.frames[::13], snaps[::13]):
            n = snap["grid"]
            z = np.asarray(frame.data[0].z)
            comps = np.asarray(snap["categories"]).reshape(n, n)
            expected = np.where(comps >= 0, np.asarray(result["order"])[comps] + 1, 0)
            np.testing.assert_array_equal(z, expected)
            # Outside the simplex (x + y > 1) is exactly the blank value.
            c = (np.arange(n) + 0.5) / n
            x, y = np.meshgrid(c, c)
            assert (z[x + y > 1] == 0).all() and (z[x + y <= 1] > 0).all()
        # The blank value is transparent in the colourscale; categories get distinct colours.
        scale = fig.data[0].colorscale
        assert scale[0][1] == "rgba(0,0,0,0)"
        colours = {c for _, c in scale[2:]}
        assert len(colours) == 8

    def test_title_has_epoch_and_temperature_and_labels_follow_frames(self, bump):
        run, epochs, results = bump
        result = _result(results, 5)
        fig = categories.category_map_animation(epochs, result, run["run_info"])
        snaps = categories.snapshots_of(epochs, result)
        for frame, snap in zip(fig.frames, snaps):
            title = frame.layout.title.text
            assert f"epoch {snap['epoch']}" in title
            assert f"T = {snap['temperature']:.3g}" in title
            # One number annotation per category present in that frame.
            present = {int(v) for v in np.unique(frame.data[0].z) if v > 0}
            assert {int(a.text) for a in frame.layout.annotations} == present
        assert "(last)" in fig.frames[-1].layout.title.text

    def test_legend_axes_and_density_overlay(self, bump):
        run, epochs, results = bump
        result = _result(results, 5)
        fig = categories.category_map_animation(epochs, result, run["run_info"])
        swatches = [t for t in fig.data if t.type == "scatter"]
        assert [t.name for t in swatches] == [f"Cat {i}" for i in range(1, 6)]
        assert tuple(fig.layout.xaxis.range) == (0, 1) and tuple(fig.layout.yaxis.range) == (0, 1)
        assert fig.layout.yaxis.scaleanchor == "x"
        contours = _traces(fig, "contour")
        assert {t.name for t in contours} == {"signal1 density", "signal2 density",
                                              "background density"}
        assert all(t.visible == "legendonly" for t in contours)
        shown = categories.category_map_animation(epochs, result, run["run_info"], show_density=True)
        assert all(t.visible is True for t in _traces(shown, "contour"))
        # Frames only replace the heatmap (trace 0): contours and swatches stay put.
        assert all(tuple(f.traces) == (0,) for f in fig.frames)

    def test_payload_is_small(self, bump):
        run, epochs, results = bump
        fig = categories.category_map_animation(epochs, _result(results, 8), run["run_info"])
        size = len(fig.to_json())
        # 41 frames of 120 x 120: uint8 base64 (~19 KB per frame) plus labels.
        assert size < 1_100_000, size
        frame = json.loads(fig.to_json())["frames"][0]
        assert set(frame["data"][0]) <= {"z", "type"}  # nothing repeated per frame

    def test_large_grids_are_thinned(self, bump):
        run, _, results = bump
        epochs = rf.epochs_for(4, "bump_hunt", epochs=20, snapshot_interval=10, grid=360)
        result = rf.result_for(4, epochs, "bump_hunt")
        fig = categories.category_map_animation(epochs, result, run["run_info"])
        assert np.asarray(fig.frames[0].data[0].z).shape == (120, 120)
        assert fig.data[0].dx == pytest.approx(1 / 120)

    def test_final_snapshot_replaces_epoch_snapshot_of_same_epoch(self, bump):
        _, epochs, results = bump
        result = dict(_result(results, 5))
        final = dict(result["snapshot"], temperature=0.123)
        result["snapshot"] = final
        snaps = categories.snapshots_of(epochs, result)
        assert len(snaps) == 41
        assert snaps[-1]["temperature"] == 0.123
        # A final snapshot at a new epoch is appended.
        result["snapshot"] = dict(final, epoch=10_000)
        assert len(categories.snapshots_of(epochs, result)) == 42

    def test_no_snapshots_gives_a_message_not_an_empty_plot(self, bump):
        _, epochs, results = bump
        result = dict(_result(results, 5), snapshot={})
        no_snapshots = [dict(e, snapshot=None) for e in epochs]
        fig = categories.category_map_animation(no_snapshots, result)
        assert not fig.frames
        assert "No 2-D category snapshots" in fig.layout.annotations[0].text

    def test_components_2d_ellipses(self, bump):
        run, _, results = bump
        result = _result(results, 5)
        fig = categories.gaussian_components_2d(result, run["run_info"])
        ellipses = [t for t in fig.data if t.type == "scatter" and t.mode == "lines"]
        assert len(ellipses) == 2 * 5  # 1 and 2 sigma per component
        first = result["components"][0]
        one_sigma = next(t for t in ellipses if t.name and t.name.endswith("(1σ)")
                         and t.name.startswith(f"Cat {result['order'][0] + 1} "))
        centre = np.mean(np.c_[one_sigma.x, one_sigma.y][:-1], axis=0)
        np.testing.assert_allclose(centre, first["mean"], atol=1e-3)


# --------------------------------------------------------------------------------------
# 1-D
# --------------------------------------------------------------------------------------

class TestOneD:
    def test_boundary_history(self, one_d):
        _, epochs, results = one_d
        result = _result(results, 5)
        fig = categories.boundary_history_1d(epochs, result)
        assert len(fig.data) == 4  # K - 1 cuts
        snap_epochs = [e["epoch"] for e in _epochs_of(epochs, 5) if e["snapshot"]]
        assert list(fig.data[0].x) == snap_epochs
        assert list(fig.data[-1].y)[-1] == pytest.approx(result["snapshot"]["boundaries"][-1])
        assert tuple(fig.layout.yaxis.range) == (0, 1)

    def test_stacked_histogram_bins_scaled_signal_and_log(self, one_d):
        run, _, results = one_d
        result = _result(results, 5)
        fig = spectra.stacked_histogram_1d(result, run["run_info"])
        bars = _traces(fig, "bar")
        assert [b.name for b in bars] == rf.BACKGROUNDS
        assert fig.layout.barmode == "stack"
        # Bars cover the optimised bins exactly: widths add up to the score range.
        assert sum(bars[0].width) == pytest.approx(1.0)
        assert list(bars[0].y) == pytest.approx(
            [c["process_yields"]["bkg1"] for c in result["categories"]], rel=1e-3)
        signal = _traces(fig, "scatter")[0]
        assert signal.name.startswith("signal x ")
        scale = int(signal.name.split(" x ")[1])
        assert signal.y[0] == pytest.approx(
            result["categories"][0]["process_yields"]["signal"] * scale, rel=1e-3)
        assert fig.layout.yaxis.type == "linear"
        assert spectra.stacked_histogram_1d(result, run["run_info"], log=True).layout.yaxis.type == "log"
        assert len(fig.layout.shapes) == 4  # dashed lines at the K - 1 cuts

    def test_gaussian_components_integrate_to_weights(self, one_d):
        _, _, results = one_d
        result = _result(results, 5)
        fig = categories.gaussian_components_1d(result, score_range=(-1.0, 2.0), points=3000)
        assert len(fig.data) == 6  # 5 components + their sum
        first = fig.data[0]
        display = int(first.name.split()[1].rstrip(",")) - 1
        wins = component_categories(result)  # 1-D: categories are numbered left to right
        comp = next(c for c in result["components"] if display in wins[c["component"]])
        area = np.trapezoid(first.y, first.x)
        assert area == pytest.approx(comp["weight"], rel=1e-2)

    def test_sigmoid_model_without_components_says_so(self, one_d):
        _, _, results = one_d
        fig = categories.gaussian_components_1d(dict(_result(results, 5), components=[]))
        assert not fig.data and "no Gaussian components" in fig.layout.annotations[0].text


# --------------------------------------------------------------------------------------
# Bump hunt mass spectra
# --------------------------------------------------------------------------------------

class TestMassSpectra:
    def test_one_panel_per_category_with_fit_window_and_scaled_signals(self, bump):
        _, _, results = bump
        result = _result(results, 8)
        fig = spectra.category_mass_spectra(result)
        hists = result["mass_histograms"]
        panels = {t.xaxis for t in fig.data}
        assert len(panels) == 8
        fits = [t for t in fig.data if t.name and t.name.startswith("bkg fit")]
        assert len(fits) == sum(f is not None for f in hists["fits"]) == 7
        # The fit curve is A exp(B m) per GeV times the bin width.
        fit0, width = hists["fits"][0], hists["edges"][1] - hists["edges"][0]
        m = fits[0].x[10]
        assert fits[0].y[10] == pytest.approx(fit0["A"] * math.exp(fit0["B"] * m) * width,
                                              rel=1e-3)
        windows = [s for s in fig.layout.shapes if s.type == "rect"]
        assert len(windows) == 8
        assert (windows[0].x0, windows[0].x1) == tuple(hists["window"])
        stacked = [t for t in fig.data if t.stackgroup]
        assert len(stacked) == 8 * 5
        # One stack per panel, the five backgrounds in it, as filled steps over the edges.
        assert len({t.stackgroup for t in stacked}) == 8
        first = [t for t in stacked if t.xaxis == "x"]
        assert [t.name for t in first] == rf.BACKGROUNDS
        assert first[0].line.shape == "hv" and len(first[0].x) == len(hists["edges"])
        bkg1 = hists["processes"].index("bkg1")
        assert list(first[0].y[:-1]) == pytest.approx(hists["counts"][0][bkg1], rel=1e-3)
        signal_names = {t.name for t in fig.data if t.name and t.name.startswith("signal")}
        assert all(" x " in n for n in signal_names), signal_names
        # Legend entries once, not once per panel.
        assert sum(1 for t in fig.data if t.showlegend is not False) == 5 + 2 + 1

    def test_log_toggle_sets_every_panel(self, bump):
        _, _, results = bump
        result = _result(results, 5)
        linear = spectra.category_mass_spectra(result)
        log = spectra.category_mass_spectra(result, log=True)
        axes = [k for k in log.layout.to_plotly_json() if k.startswith("yaxis")]
        assert len(axes) >= 5
        assert all(log.layout[a].type == "log" for a in axes)
        assert all(linear.layout[a].type == "linear" for a in axes)

    def test_x_axis_covers_the_mass_range(self, bump):
        _, _, results = bump
        fig = spectra.category_mass_spectra(_result(results, 5))
        assert tuple(fig.layout.xaxis.range) == (100.0, 180.0)

    def test_inclusive_spectrum(self, bump):
        run, _, _ = bump
        fig = spectra.inclusive_mass_spectrum(run["run_info"]["inclusive"])
        assert [t.name for t in fig.data if t.stackgroup] == rf.BACKGROUNDS
        scaled = [t.name for t in fig.data if not t.stackgroup]
        assert scaled == ["signal1 x 50", "signal2 x 200"]
        assert spectra.inclusive_mass_spectrum(run["run_info"]["inclusive"],
                                               log=True).layout.yaxis.type == "log"
        assert "No inclusive mass" in spectra.inclusive_mass_spectrum(
            rf.run_info("one_d")["inclusive"]).layout.annotations[0].text

    def test_signal_scales_can_be_given(self, bump):
        _, _, results = bump
        fig = spectra.category_mass_spectra(_result(results, 5),
                                         signal_scales={"signal1": 2, "signal2": 10})
        names = {t.name for t in fig.data if t.name and t.name.startswith("signal")}
        assert names == {"signal1 x 2", "signal2 x 10"}


# --------------------------------------------------------------------------------------
# Baseline comparison, tables, statistics
# --------------------------------------------------------------------------------------

class TestComparison:
    def test_2d_panels_baselines_at_2n_plus_1_and_trained_ks(self, bump):
        run, _, results = bump
        fig = baselines.significance_comparison(run["run_info"], results)
        assert [a.text for a in fig.layout.annotations] == ["signal1", "signal2"]
        baseline = [t for t in fig.data if t.legendgroup == "baseline"]
        assert len(baseline) == 2 and list(baseline[0].x) == [5, 11, 21]
        gato = [t for t in fig.data if t.legendgroup == "gato"]
        assert list(gato[0].x) == [5, 8]
        assert list(gato[1].y) == [r["significance"]["signal2"] for r in results]
        assert not [t for t in fig.data if t.legendgroup == "optimum"]

    def test_1d_has_the_optimum_ceiling(self, one_d):
        run, _, results = one_d
        fig = baselines.significance_comparison(run["run_info"], results)
        optimum = [t for t in fig.data if t.legendgroup == "optimum"]
        assert len(optimum) == 1 and list(optimum[0].x) == [5, 10, 20]

    def test_unfinished_and_nan_results(self, bump):
        run, _, results = bump
        cancelled = dict(results[0], status="cancelled")
        diverged = dict(results[1], status="diverged",
                        significance={"signal1": float("nan"), "signal2": float("nan")})
        fig = baselines.significance_comparison(run["run_info"], [cancelled, diverged])
        gato = [t for t in fig.data if t.legendgroup == "gato"]
        assert list(gato[0].x) == [5]  # the NaN point is left out, not drawn at 0
        assert list(gato[0].marker.symbol) == ["circle-open"]

    def test_table_rows(self, bump, one_d):
        run, _, results = bump
        rows = baselines.significance_table_rows(run["run_info"], results)
        assert [(r["method"].split()[0], r["n_categories"]) for r in rows] == [
            ("baseline", 5), ("GATO", 5), ("GATO", 8), ("baseline", 11), ("baseline", 21)]
        gato8 = rows[2]
        assert gato8["signal1"] == results[1]["significance"]["signal1"]
        assert gato8["objective"] == results[1]["objective"]
        rows_1d = baselines.significance_table_rows(one_d[0]["run_info"], one_d[2])
        assert ("exact optimum", 5) in [(r["method"], r["n_categories"]) for r in rows_1d]
        json.dumps(rows)  # JSON-safe for the page and the report

    def test_category_statistics(self, bump):
        run, _, results = bump
        result = _result(results, 5)
        fig = category_numbers.category_statistics(result, thresholds=run["config"])
        yields, unc = _traces(fig, "bar")
        assert list(yields.x) == [f"Cat {i}" for i in range(1, 6)]
        assert list(yields.y) == [c["background"] for c in result["categories"]]
        assert list(unc.y) == [c["rel_unc"] for c in result["categories"]]
        assert len([s for s in fig.layout.shapes if s.type == "line"]) == 2  # thresholds
        log = category_numbers.category_statistics(result, log=True)
        assert log.layout.yaxis.type == "log" and log.layout.yaxis2.type == "log"

    def test_bias_history_has_temperature_on_second_axis(self, bump):
        _, epochs, _ = bump
        fig = categories.bias_temperature_history(epochs, 5)
        bias, temperature = fig.data
        assert list(bias.x) == [e["epoch"] for e in _epochs_of(epochs, 5) if e["snapshot"]]
        assert temperature.yaxis == "y2" and fig.layout.yaxis2.overlaying == "y"
        assert len(temperature.x) == 400
        assert "No bias" in categories.bias_temperature_history(epochs, 99).layout.annotations[0].text


def test_nice_scale():
    assert [style.nice_scale(r) for r in (0.5, 1, 3, 7, 19, 20, 480, float("nan"))] == [
        1, 1, 2, 5, 10, 20, 200, 1]


def test_result_figures_sets_per_scenario(bump, one_d):
    run, epochs, results = bump
    assert list(catalogue.result_figures(run, epochs, results[0], dim=2)) == [
        "category_map", "components", "mass_spectra", "category_statistics", "bias_history"]
    assert list(catalogue.run_figures(run, results, dim=2)) == ["significance_comparison", "inclusive_mass"]
    run1, epochs1, results1 = one_d
    assert list(catalogue.result_figures(run1, epochs1, results1[0], dim=1)) == [
        "boundary_history", "stacked_histogram", "components", "category_statistics",
        "bias_history"]
    # a subset builds only what was asked for, in the same order
    assert list(catalogue.result_figures(run, epochs, results[0], dim=2,
                                    only=["bias_history", "category_map"])) == [
        "category_map", "bias_history"]


def test_json_round_tripped_records_give_the_same_figures(bump):
    """The store hands back JSON: int keys become strings, tuples lists."""
    run, epochs, results = bump
    run2, epochs2, results2 = json.loads(json.dumps([run, epochs, results]))
    a = baselines.significance_comparison(run["run_info"], results).to_json()
    b = baselines.significance_comparison(run2["run_info"], results2).to_json()
    assert a == b


# --------------------------------------------------------------------------------------
# Page helpers (no Dash server needed)
# --------------------------------------------------------------------------------------

class TestPageHelpers:
    def test_csv_has_one_row_per_k_and_category(self, bump):
        from gato_dash import results_section as section_module

        _, _, results = bump
        text = section_module.categories_csv(results)
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) == 5 + 8
        assert [int(r["n_cats"]) for r in rows] == [5] * 5 + [8] * 8
        assert float(rows[0]["background"]) == pytest.approx(results[0]["categories"][0]["background"])
        assert {"z_signal1", "z_signal2", "rel_unc", "yield_bkg1"} <= set(rows[0])

    def test_results_document_is_json_and_complete(self, bump):
        from gato_dash import results_section as section_module

        run, _, results = bump
        doc = json.loads(json.dumps(section_module.results_document(run, results)))
        assert doc["run"]["id"] == run["id"]
        assert [r["n_cats"] for r in doc["results"]] == [5, 8]
        assert doc["results"][0]["parameters"] == results[0]["parameters"]
        assert doc["run_info"]["baselines"]

    def test_default_k_and_figure_names(self, bump, one_d):
        from gato_dash import figure_cache
        from gato_dash import results_section as section_module

        run, _, results = bump
        assert section_module.default_k(results) == 8
        assert section_module.default_k([results[0], dict(results[1], status="cancelled")]) == 5
        # which figures go into which cache file (the first tab's, the log-able ones)
        log_figures = figure_cache.build_figures(figure_cache.log_key(run["id"], 5, False),
                                                 run, results)
        assert set(log_figures) == {"inclusive_mass", "mass_spectra", "category_statistics"}
        assert set(log_figures) <= set(catalogue.LOG_FIGURES)
        run1, epochs1, results1 = one_d
        k1 = figure_cache.build_figures(figure_cache.k_key(run1["id"], 5), run1, results1,
                                        [e for e in epochs1 if e["n_cats"] == 5])
        assert set(k1) == {"boundary_history", "components", "bias_history"}
        log1 = figure_cache.build_figures(figure_cache.log_key(run1["id"], 5, True), run1,
                                          results1)
        assert set(log1) == {"stacked_histogram", "category_statistics"}
        assert log1["stacked_histogram"]["layout"]["yaxis"]["type"] == "log"
        with pytest.raises(LookupError):  # a K the run has no result for
            figure_cache.build_figures(figure_cache.k_key(run1["id"], 7), run1, results1)

    def test_download_name_is_file_safe(self):
        from gato_dash import results_section as section_module

        slug = section_module._slug({"id": "abc123", "name": "<script>/../x y"})
        assert slug == "gato-abc123-script-..-x-y"
        assert "/" not in slug and "<" not in slug

    def test_section_from_a_store(self, bump, tmp_path, monkeypatch):
        """results_section reads the store and builds its layout; callbacks' data paths."""
        from gato_dash import figure_cache
        from gato_dash import results_section as section_module
        from gato_dash.runtime.run_store import RunStore

        run, epochs, results = bump
        store = RunStore(tmp_path / "runs.sqlite")
        run_id = store.create_run(run["config"], name="<b>bold</b>")
        store.set_run_info(run_id, run["run_info"])
        for record in epochs:
            store.append_epoch(run_id, record)
        for result in results:
            store.put_result(run_id, result)
        monkeypatch.setattr(section_module, "current_store", lambda: store)
        section_module.clear_cache()

        section = section_module.results_section(run_id)
        text = json.dumps(section.to_plotly_json(), default=lambda o: o.to_plotly_json()
                          if hasattr(o, "to_plotly_json") else str(o))
        assert '"value": 8' in text  # default K selected
        assert "results-significance-table" in text

        k_figs = section_module._figures(figure_cache.k_key(run_id, 8))
        assert len(k_figs["category_map"]["frames"]) == 41
        # only the first tab's figures: the log-able ones are under the log key
        assert set(k_figs) == {"category_map", "components", "bias_history"}
        log_figs = section_module._figures(figure_cache.log_key(run_id, 8, True))
        assert log_figs["mass_spectra"]["layout"]["yaxis"]["type"] == "log"
        assert log_figs["inclusive_mass"]["layout"]["yaxis"]["type"] == "log"

        run_figs = section_module._figures(figure_cache.run_key(run_id, 2))
        # baseline and GATO per signal (no optimum in 2-D)
        assert len(run_figs["significance_comparison"]["data"]) == 4

        empty = section_module.results_section(store.create_run(run["config"]))
        assert empty.id == "results-empty"


# --------------------------------------------------------------------------------------
# A real (tiny) engine run through the same builders
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_runs():
    from gato_core.config import RunConfig
    from gato_core.training import train

    runs = {}
    for scenario, overrides in (
        ("bump_hunt", dict(n_signal=2000, n_bkg=20000, epochs=20, n_cats=[3],
                           snapshot_interval=5)),
        ("one_d", dict(n_signal=2000, n_bkg=6000, epochs=20, n_cats=[3, 4],
                       snapshot_interval=5)),
    ):
        config = RunConfig.defaults(scenario, **overrides)
        # JSON round trip: what the store gives back.
        records = json.loads(json.dumps([r.to_dict() for r in train(config)]))
        info = next(r for r in records if r["kind"] == "run_info")
        run = {"id": f"real-{scenario}", "name": scenario, "scenario": scenario,
               "status": "finished", "config": config.to_dict(), "run_info": info}
        runs[scenario] = (run, [r for r in records if r["kind"] == "epoch"],
                          [r for r in records if r["kind"] == "result"])
    return runs


def test_real_bump_hunt_run(real_runs):
    run, epochs, results = real_runs["bump_hunt"]
    (result,) = results
    snapshot_epochs = [e["epoch"] for e in epochs if e["snapshot"]]
    assert snapshot_epochs == [0, 5, 10, 15, 19]
    figures = catalogue.result_figures(run, epochs, result, dim=2)
    anim = figures["category_map"]
    assert len(anim.frames) == len(snapshot_epochs)
    assert [f.name for f in anim.frames] == [str(e) for e in snapshot_epochs]
    assert {int(v) for v in np.unique(anim.frames[-1].data[0].z)} <= {0, 1, 2, 3}
    assert len(_traces(anim, "contour")) == 3
    spectra = figures["mass_spectra"]
    assert len({t.xaxis for t in spectra.data}) == 3
    n_fits = sum(f is not None for f in result["mass_histograms"]["fits"])
    assert len([t for t in spectra.data if (t.name or "").startswith("bkg fit")]) == n_fits
    assert len(_traces(figures["components"], "scatter")) >= 3
    comparison = baselines.significance_comparison(run["run_info"], results)
    gato = [t for t in comparison.data if t.legendgroup == "gato"]
    assert [list(t.x) for t in gato] == [[3], [3]]
    assert "inclusive_mass" in catalogue.run_figures(run, results, dim=2)
    from gato_dash.report import build_report

    document = build_report(run, epochs, results)
    assert document.count("Plotly.newPlot(") == len(figures) + 2


def test_downloaded_parameters_restore_the_drawn_map(real_runs, tmp_path):
    """The run page's two downloads that carry the parameters (the K's parameters JSON and
    the whole results JSON), asked for as the browser asks, restore a categoriser that
    draws the map the training drew: the check is the training's own final snapshot, not
    the exporter's output read back."""
    from gato_core.evaluation import hard_assign
    from gato_core.model import from_parameters
    from gato_dash import runtime
    from gato_dash.app import create_app
    from helpers.callback_requests import post_callback

    run, _, (result,) = real_runs["bump_hunt"]
    app = create_app(tmp_path)
    run_id = runtime.store().create_run(run["config"], name="parameters")
    runtime.store().put_result(run_id, result)

    status, answer = post_callback(
        app, "results-dl-params.data",
        {"results-k.value": 3, "results-run-id.data": run_id},
        ["results-dl-params-btn.n_clicks"])
    assert status == 200
    download = answer["results-dl-params.data"]
    assert download["filename"].endswith("-K3-parameters.json")
    parameters = json.loads(download["content"])
    model = from_parameters(parameters)
    assert model.parameters() == parameters  # every value in the file is used as it is

    snap = result["snapshot"]
    n = snap["grid"]
    c = (np.arange(n) + 0.5) / n
    x, y = np.meshgrid(c, c)
    inside = (x + y <= 1).ravel()
    points = np.c_[x.ravel(), y.ravel()][inside]
    drawn = np.asarray(snap["categories"])[inside]
    # the restored model's own (TensorFlow) densities, and the numpy evaluation path
    restored = np.argmax(model.log_scores(points.astype(np.float32)).numpy(), axis=1)
    assert (restored == drawn).mean() > 0.99
    assert (hard_assign(parameters, points) == drawn).mean() > 0.99

    status, answer = post_callback(app, "results-dl-json.data",
                                   {"results-run-id.data": run_id},
                                   ["results-dl-json-btn.n_clicks"])
    assert status == 200
    document = json.loads(answer["results-dl-json.data"]["content"])
    (stored,) = document["results"]
    assert (hard_assign(stored["parameters"], points) == drawn).mean() > 0.99
    # a K that was never trained is not a download of another K's parameters
    status, _ = post_callback(app, "results-dl-params.data",
                              {"results-k.value": 7, "results-run-id.data": run_id},
                              ["results-dl-params-btn.n_clicks"])
    assert status == 204


def test_real_one_d_run(real_runs):
    run, epochs, results = real_runs["one_d"]
    assert [r["n_cats"] for r in results] == [3, 4]
    for result in results:
        figures = catalogue.result_figures(run, epochs, result, dim=1)
        k = result["n_cats"]
        assert len(figures["boundary_history"].data) == k - 1
        hist = figures["stacked_histogram"]
        assert len(_traces(hist, "bar")) == 5
        assert sum(_traces(hist, "bar")[0].width) == pytest.approx(1.0, abs=1e-6)
        assert len(figures["components"].data) == k + 1
    comparison = baselines.significance_comparison(run["run_info"], results)
    # a toy run also has its categories evaluated on an independent sample
    assert [t.legendgroup for t in comparison.data] == ["baseline", "optimum", "gato",
                                                        "heldout"]
    assert list(comparison.data[1].x) == [3, 4]
