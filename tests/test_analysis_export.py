"""Analysis export: categoriser file + apply, yields table, pyhf workspace and statistical
model, Combine datacard, mass histograms, bundle. Numbers are checked against independent
numpy re-computations and against pyhf itself."""
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gato_core import bundle, categoriser, datacard, evaluation, statmodel
from gato_core.apply import apply
from gato_core.categoriser import ExportError
from gato_core.config import RunConfig
from gato_core.data import load_events
from gato_core.yields import YieldsTable, yields_table

ROOT = Path(__file__).resolve().parents[1]
#: the bump hunt's signal mass window in GeV (gato_core/scenarios.py), written out by hand
BUMP_HUNT_WINDOW = (123.5, 126.5)
import pyhf  # pinned (requirements.txt): a broken install fails, never skips


def full_asimov_z(s, b):
    """Independent: the exact Asimov formula (no small-s/b expansion)."""
    s, b = np.asarray(s, float), np.asarray(b, float)
    return np.sqrt(2.0 * ((s + b) * np.log1p(s / b) - s))


def documented_asimov_z(s, b):
    """Independent: the per-category Z the run reports, as ALGORITHM §1 defines it: the
    exact formula, s/sqrt(b) where s/b < 0.1, background floored at 1e-3 events."""
    s, b = np.maximum(np.asarray(s, float), 0.0), np.maximum(np.asarray(b, float), 1e-3)
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = 2.0 * ((s + b) * np.log1p(s / b) - s)
    return np.sqrt(np.where(s / b < 0.1, s * s / b, np.maximum(exact, 0.0)))


def gaussian_argmax(components, scores):
    """Independent of gato_core.geometry: the winning Gaussian of the result's reported
    components (weight, mean, covariance) by numpy's solve and slogdet, and which events
    sit so close to a boundary (two log densities within 1e-9) that rounding may pick."""
    x = np.asarray(scores, dtype=np.float64)
    columns = []
    for c in sorted(components, key=lambda c: c["component"]):
        mean, cov = np.asarray(c["mean"], float), np.asarray(c["cov"], float)
        diff = x - mean
        mahalanobis = np.einsum("ni,ni->n", diff, np.linalg.solve(cov, diff.T).T)
        log_det = np.linalg.slogdet(cov)[1]
        with np.errstate(divide="ignore"):
            log_weight = np.log(c["weight"])
        columns.append(log_weight - 0.5 * (mahalanobis + log_det + len(mean) * np.log(2 * np.pi)))
    log_scores = np.column_stack(columns)
    best_two = np.sort(log_scores, axis=1)[:, -2:]
    return np.argmax(log_scores, axis=1), best_two[:, 1] - best_two[:, 0] < 1e-9


def yields_by_hand(events, category, n_categories, window=None):
    """{process: [sum of weights per category]} by np.bincount over the events (only those
    with a mass inside ``window`` if given)."""
    keep = category >= 0
    if window is not None:
        keep &= (events.mass >= window[0]) & (events.mass <= window[1])
    out = {}
    for j, name in enumerate(events.process_names):
        sel = keep & (events.process == j)
        out[name] = np.bincount(category[sel], weights=events.weight[sel].astype(np.float64),
                                minlength=n_categories)
    return out


def z_per_signal(events, category, n_categories, per_category_z, window=None):
    """Combined Z per signal from the events: every other signal counts as background."""
    sums = yields_by_hand(events, category, n_categories, window)
    total = sum(sums.values())
    return {name: float(np.sqrt(np.sum(per_category_z(sums[name], total - sums[name]) ** 2)))
            for name in events.signal_names}


def pyhf_discovery_z(spec: dict, signal: str) -> float:
    """Independent of gato_core.statmodel: pyhf's own hypotest (q0, asymptotics) on the
    Asimov data pyhf itself makes from the exported workspace at mu = 1."""
    from statistics import NormalDist

    ws = pyhf.Workspace(spec)
    model = ws.model(measurement_name=signal)
    parameters = model.config.suggested_init()
    parameters[model.config.poi_index] = 1.0
    data = model.expected_data(parameters)
    p0 = float(pyhf.infer.hypotest(0.0, data, model, test_stat="q0"))
    return NormalDist().inv_cdf(1.0 - p0)


# ----- import hygiene -------------------------------------------------------------------
@pytest.mark.parametrize("module", ["gato_core.apply", "gato_core.bundle", "gato_core.data"])
def test_apply_and_bundle_do_not_import_tensorflow(module):
    code = (f"import sys, {module}; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'gato_dash')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ----- trained runs (short) -------------------------------------------------------------
# 100 000 events per run; trained briefly: exactness does not depend on training quality
CASES = {
    "one_d-gmm": dict(scenario="one_d", model="gmm", n_signal=25_000, n_bkg=75_000, n_cats=(4, 6)),
    "one_d-sigmoid_cuts": dict(scenario="one_d", model="sigmoid_cuts", n_signal=25_000,
                               n_bkg=75_000, n_cats=(5,)),
    "three_class-gmm": dict(scenario="three_class", model="gmm", n_signal=10_000, n_bkg=80_000,
                            n_cats=(3, 5)),
    "bump_hunt-gmm": dict(scenario="bump_hunt", model="gmm", n_signal=10_000, n_bkg=80_000,
                          n_cats=(4,)),
}


@pytest.fixture(scope="module")
def trained():
    from gato_core.training import train
    out = {}
    for name, spec in CASES.items():
        spec = dict(spec)
        config = RunConfig.defaults(spec.pop("scenario"), epochs=20, snapshot_interval=10,
                                    seed=5, **spec)
        events = load_events(config)
        results = [r for r in train(config, events=events) if r.kind == "result"]
        assert all(r.status == "finished" for r in results)
        out[name] = (config, events, results)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_apply_reproduces_the_trained_hard_assignment_exactly(trained, case, tmp_path):
    config, events, results = trained[case]
    assert events.n_events == 100_000
    for result in results:
        path = categoriser.save(categoriser.from_result(result, config), tmp_path / "cat.json")
        got = apply(path, events.scores)  # through the JSON file: floats must survive it
        if events.dim == 1:
            # by hand: each cut the run reported that an event's score reaches moves it up
            x = events.scores[:, 0].astype(np.float64)
            expected = (x[:, None] >= np.asarray(result.boundaries)[None, :]).sum(axis=1)
            near_boundary = np.zeros(len(x), dtype=bool)
        else:  # the winning reported Gaussian -> displayed category number
            component, near_boundary = gaussian_argmax(result.components, events.scores)
            expected = np.asarray(result.order)[component]
        assert near_boundary.sum() < 10
        np.testing.assert_array_equal(got[~near_boundary], expected[~near_boundary])
        assert got.min() >= 0 and got.max() == json.loads(path.read_text())["n_categories"] - 1
        # the categories' yields are the ones the run reported, category by category
        table = yields_table(events, got, got.max() + 1)
        np.testing.assert_allclose(table.background(),
                                   [c["background"] for c in result.categories], rtol=1e-12)


def test_one_d_gmm_cuts_follow_the_argmax_of_the_components(trained):
    """The 1-D file's cut values are the GMM's own decision boundaries: an event's winning
    component is that of its category's centre, except within the boundary scan step."""
    config, events, results = trained["one_d-gmm"]
    x = events.scores[:, 0].astype(np.float64)
    for result in results:
        cat = categoriser.from_result(result, config)
        got = apply(cat, events.scores)
        centres = np.array([np.mean(c["range"]) for c in cat["categories"]])
        component_at_centre = gaussian_argmax(result.components, centres[:, None])[0]
        mismatch = component_at_centre[got] != gaussian_argmax(result.components, x[:, None])[0]
        step = 1.0 / (evaluation.BOUNDARY_SCAN_POINTS - 1)
        distance = np.min(np.abs(x[mismatch, None] - np.asarray(cat["cuts"])[None]), axis=1) \
            if mismatch.any() else np.zeros(0)
        assert np.all(distance <= step)
        assert mismatch.sum() < 1e-3 * len(x)


def test_apply_reads_named_columns_and_the_mass_window(trained):
    config, events, results = trained["bump_hunt-gmm"]
    cat = categoriser.from_result(results[0], config)
    assert cat["scores"]["columns"] == ["p_signal1", "p_signal2"]
    columns = {"p_signal2": events.scores[:, 1], "p_signal1": events.scores[:, 0], "other": 0}
    np.testing.assert_array_equal(apply(cat, columns), apply(cat, events.scores))
    windowed = apply(cat, events.scores, mass=events.mass)
    np.testing.assert_array_equal(windowed < 0, ~events.in_window())
    with pytest.raises(ExportError, match=r"score column\(s\) \['p_signal2'\] not found"):
        apply(cat, {"p_signal1": events.scores[:, 0]})
    with pytest.raises(ExportError, match=r"scores must be \[N, 2\]"):
        apply(cat, events.scores[:, :1])
    custom = categoriser.from_result(results[0], config, score_columns=["nn_h", "nn_z"])
    assert custom["scores"]["columns"] == ["nn_h", "nn_z"]


def test_training_stores_the_statistical_model(trained):
    config, events, results = trained["three_class-gmm"]
    for result in results:
        sm = result.statistical_model
        category = apply(categoriser.from_result(result, config), events.scores)
        # recomputed from the events: the run's own Z, and pyhf without MC-stat uncertainty
        # is the exact Asimov formula summed in quadrature (FIELD-NOTES: 4.6405 vs 4.6405)
        by_hand = z_per_signal(events, category, result.n_cats, documented_asimov_z)
        assert sm["asimov_z"] == pytest.approx(by_hand, rel=1e-9)
        assert result.significance == pytest.approx(by_hand, rel=1e-9)
        assert sm["pyhf_z"] == pytest.approx(
            z_per_signal(events, category, result.n_cats, full_asimov_z), rel=1e-3)
        for s in ("signal1", "signal2"):
            assert sm["pyhf_z_mc_stat"][s] < sm["pyhf_z"][s]
        assert [f["category"] for f in sm["flags"]] == list(range(result.n_cats))
        assert sm["thresholds"] == {"min_background": statmodel.MIN_BACKGROUND,
                                    "max_rel_mc_uncertainty": statmodel.MAX_REL_MC_UNCERTAINTY}


def test_yields_table_matches_a_plain_numpy_sum(trained):
    config, events, results = trained["bump_hunt-gmm"]
    got = apply(categoriser.from_result(results[0], config), events.scores)
    table = yields_table(events, got, results[0].n_cats)
    inside = events.in_window()
    for k in range(table.n_categories):
        for j, p in enumerate(events.process_names):
            sel = (got == k) & (events.process == j) & inside
            w = events.weight[sel].astype(np.float64)
            assert table.sum_w[k, j] == pytest.approx(w.sum(), rel=1e-12, abs=1e-12)
            assert table.sum_w2[k, j] == pytest.approx((w * w).sum(), rel=1e-12, abs=1e-12)
            assert table.n_events[k, j] == sel.sum()
    assert table.mass_window == list(BUMP_HUNT_WINDOW)
    back = _read_yields_csv(table.to_csv(), table)
    np.testing.assert_array_equal(back.sum_w, table.sum_w)
    np.testing.assert_array_equal(back.n_events, table.n_events)


def _read_yields_csv(text, like):
    import csv
    rows = list(csv.DictReader(io.StringIO(text)))
    shape = (1 + max(int(r["category"]) for r in rows), len(like.processes))
    out = YieldsTable(like.processes, like.signals, np.zeros(shape), np.zeros(shape),
                      np.zeros(shape, dtype=int))
    for r in rows:
        k, j = int(r["category"]), like.processes.index(r["process"])
        out.sum_w[k, j], out.sum_w2[k, j] = float(r["sum_w"]), float(r["sum_w2"])
        out.n_events[k, j] = int(r["n_events"])
    return out


# ----- statistical model on hand-made tables -------------------------------------------
def make_table(n_mc=10_000, k=5, signals=("signal",), seed=0):
    """Yields with ``n_mc`` simulated events per background process and category: fewer
    events, larger weights, larger sum w^2 = b^2 / n."""
    rng = np.random.default_rng(seed)
    backgrounds = ["bkg1", "bkg2"]
    processes = list(signals) + backgrounds
    sum_w = np.column_stack([rng.uniform(2, 15, k) for _ in signals]
                            + [rng.uniform(20, 300, k) for _ in backgrounds])
    n_events = np.full(sum_w.shape, n_mc)
    sum_w2 = sum_w ** 2 / n_events
    return YieldsTable(processes, list(signals), sum_w, sum_w2, n_events)


def test_pyhf_without_mc_stat_equals_the_quadrature_sum_of_asimov_z():
    table = make_table(n_mc=10 ** 12)  # negligible MC-stat uncertainty
    s, b = table.signal()[0], table.background()
    expected = np.sqrt(np.sum(full_asimov_z(s, b) ** 2))
    summary = statmodel.summary(table)
    assert summary["pyhf_z"]["signal"] == pytest.approx(expected, rel=1e-3)
    assert summary["pyhf_z_mc_stat"]["signal"] == pytest.approx(expected, rel=1e-3)


def test_two_signals_each_counts_the_other_as_background():
    table = make_table(n_mc=10 ** 12, signals=("signal1", "signal2"), seed=3)
    s, b = table.signal(), table.background()
    summary = statmodel.summary(table)
    for j, name in enumerate(table.signals):
        other = s[1 - j]
        expected = np.sqrt(np.sum(full_asimov_z(s[j], b + other) ** 2))
        assert summary["pyhf_z"][name] == pytest.approx(expected, rel=1e-3)


def test_mc_stat_lowers_the_significance_more_for_fewer_events():
    many = statmodel.summary(make_table(n_mc=5_000))
    few = statmodel.summary(make_table(n_mc=200))
    # same yields, so the same significance without MC-stat uncertainty
    assert many["pyhf_z"]["signal"] == pytest.approx(few["pyhf_z"]["signal"], rel=1e-6)
    assert few["pyhf_z_mc_stat"]["signal"] < many["pyhf_z_mc_stat"]["signal"] \
        < many["pyhf_z"]["signal"]
    assert few["pyhf_z_mc_stat"]["signal"] < 0.99 * many["pyhf_z_mc_stat"]["signal"]


def test_flags_mark_tiny_background_and_large_mc_uncertainty():
    table = make_table(n_mc=10_000, k=3)
    table.sum_w[0, 1:] = [0.3, 0.2]  # 0.5 expected background events
    table.sum_w2[0, 1:] = table.sum_w[0, 1:] ** 2 / 10_000
    table.sum_w2[1, 1:] = (0.5 * table.sum_w[1, 1:]) ** 2  # 50 % per process
    flags = statmodel.summary(table)["flags"]
    assert [f["tiny_background"] for f in flags] == [True, False, False]
    assert [f["large_mc_uncertainty"] for f in flags] == [False, True, False]
    assert flags[1]["rel_mc_unc"] == pytest.approx(
        np.sqrt(table.sum_w2[1, 1:].sum()) / table.sum_w[1, 1:].sum())


def test_category_without_background_stays_finite():
    table = make_table(k=3)
    table.sum_w[2, 1:] = 0.0
    table.sum_w2[2, 1:] = 0.0
    summary = statmodel.summary(table)
    assert np.isfinite(summary["pyhf_z_mc_stat"]["signal"])
    assert summary["flags"][2]["tiny_background"] and summary["flags"][2]["large_mc_uncertainty"]


def test_workspace_validates_and_round_trips_through_pyhf():
    table = make_table(n_mc=400, signals=("signal1", "signal2"), seed=7)
    spec = statmodel.workspace(table)
    pyhf.schema.validate(spec, "workspace.json")  # pyhf's own schema check
    ws = pyhf.Workspace(spec)
    again = pyhf.Workspace(json.loads(json.dumps(ws)))
    assert again == ws
    model = again.model(measurement_name="signal2")
    assert model.config.poi_name == "mu_signal2"
    assert model.config.channels == sorted(f"cat{k}" for k in range(table.n_categories))
    # nominal expected counts = Asimov s + b per category
    nominal = model.expected_actualdata(model.config.suggested_init())
    by_channel = dict(zip(model.config.channels, nominal))
    for k in range(table.n_categories):
        assert by_channel[f"cat{k}"] == pytest.approx(table.sum_w[k].sum(), rel=1e-12)
    # staterror widths = relative MC uncertainty of the category's background
    rel = np.sqrt(table.background_sum_w2()) / table.background()
    for k in range(table.n_categories):
        sigma = model.config.param_set(f"staterror_cat{k}").width()
        assert sigma[0] == pytest.approx(rel[k], rel=1e-9)


# ----- datacard -------------------------------------------------------------------------
def parse_datacard(text):
    """Minimal Combine counting-card reader (independent of the writer)."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.startswith(("#", "-"))]
    head = {ln[0]: ln[1] for ln in lines if ln[0] in ("imax", "jmax", "kmax")}
    bin_rows = [ln for ln in lines if ln[0] == "bin"]
    observation = next(ln for ln in lines if ln[0] == "observation")[1:]
    obs = dict(zip(bin_rows[0][1:], map(float, observation)))
    proc_rows = [ln for ln in lines if ln[0] == "process"]
    rate = next(ln for ln in lines if ln[0] == "rate")[1:]
    columns = list(zip(bin_rows[1][1:], proc_rows[0][1:], map(int, proc_rows[1][1:]),
                       map(float, rate)))
    syst = {}
    for ln in lines:
        if len(ln) > 1 and ln[1] in ("lnN", "gmN"):
            values = ln[3:] if ln[1] == "gmN" else ln[2:]
            syst[ln[0]] = (ln[1], int(ln[2]) if ln[1] == "gmN" else None, values)
    return head, obs, columns, syst


@pytest.mark.parametrize("mc_stat", ["lnN", "gmN"])
def test_datacard_parses_back_to_the_yields_table(mc_stat):
    table = make_table(n_mc=300, signals=("signal1", "signal2"), seed=11)
    head, obs, columns, syst = parse_datacard(datacard.datacard(table, mc_stat))
    assert head == {"imax": str(table.n_categories), "jmax": "3", "kmax": "*"}
    assert len(columns) == table.n_categories * len(table.processes)
    for k in range(table.n_categories):
        assert obs[f"cat{k}"] == pytest.approx(table.sum_w[k].sum(), rel=1e-10)
    for (b, p, index, rate), n in zip(columns, range(len(columns))):
        k, j = int(b[3:]), table.processes.index(p)
        assert rate == pytest.approx(table.sum_w[k, j], rel=1e-10)
        assert (index <= 0) == (p in table.signals)
    if mc_stat == "lnN":
        assert len(syst) == table.n_categories
        for k in range(table.n_categories):
            kind, _, values = syst[f"mcstat_cat{k}"]
            kappas = [float(v) for v, (b, p, _, _) in zip(values, columns) if v != "-"]
            rel = np.sqrt(table.background_sum_w2()[k]) / table.background()[k]
            assert kappas == pytest.approx([1.0 + rel] * 2, rel=1e-10)
            assert {p for v, (b, p, _, _) in zip(values, columns) if v != "-"} == {"bkg1", "bkg2"}
    else:
        for k in range(table.n_categories):
            for p in table.backgrounds:
                kind, n, values = syst[f"mcstat_cat{k}_{p}"]
                alpha = [float(v) for v in values if v != "-"]
                assert n == 300 and alpha[0] * n == pytest.approx(
                    table.sum_w[k, table.processes.index(p)], rel=1e-10)


# ----- bundle, run folder, bad requests -------------------------------------------------
def test_bundle_holds_every_file_and_root_histograms_match(trained, tmp_path):
    config, events, results = trained["bump_hunt-gmm"]
    path = bundle.write_bundle(tmp_path / "b.zip", config, [r.to_dict() for r in results],
                               events=events)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert names == {"README.md"} | {f"K4/{n}" for n in (
            "categoriser.json", "yields.csv", "workspace.json", "datacard.txt",
            "statistical_model.json", "mass_histograms.csv", "mass_histograms.root",
            "yields_held_out.csv", "statistical_model_held_out.json")}
        (tmp_path / "h.root").write_bytes(zf.read("K4/mass_histograms.root"))
        cat = json.loads(zf.read("K4/categoriser.json"))
        sm = json.loads(zf.read("K4/statistical_model.json"))
        spec = json.loads(zf.read("K4/workspace.json"))
    got = apply(cat, events.scores)
    # the bundle's numbers against independent ones: the exact Asimov formula over the
    # events in the mass window, and pyhf's own hypotest on the exported workspace
    assert sm["pyhf_z"] == pytest.approx(
        z_per_signal(events, got, 4, full_asimov_z, window=BUMP_HUNT_WINDOW), rel=1e-3)
    for signal in events.signal_names:
        assert sm["pyhf_z_mc_stat"][signal] == pytest.approx(pyhf_discovery_z(spec, signal),
                                                             rel=1e-3)
    import uproot
    with uproot.open(tmp_path / "h.root") as f:
        for k in range(4):
            for j, p in enumerate(events.process_names):
                sel = (got == k) & (events.process == j)
                hist = f[f"cat{k}/{p}"]
                expected, _ = np.histogram(events.mass[sel], bins=80, range=(100, 180),
                                           weights=events.weight[sel].astype(np.float64))
                np.testing.assert_allclose(hist.values(), expected, rtol=1e-9, atol=1e-9)
                np.testing.assert_allclose(
                    hist.variances(),
                    np.histogram(events.mass[sel], bins=80, range=(100, 180),
                                 weights=events.weight[sel].astype(np.float64) ** 2)[0],
                    rtol=1e-9, atol=1e-12)
            total = sum(f[f"cat{k}/{p}"].values() for p in events.process_names)
            np.testing.assert_allclose(f[f"cat{k}/data_obs"].values(), total, rtol=1e-12)


def test_one_entry_gives_the_zip_or_any_one_of_its_files(trained):
    config, events, results = trained["three_class-gmm"]
    dicts = [r.to_dict() for r in results]
    zipped = zipfile.ZipFile(io.BytesIO(bundle.export(config, dicts, 5, events=events)))
    assert {n.split("/")[0] for n in zipped.namelist()} == {"README.md", "K5"}
    for name in ("workspace.json", "datacard.txt", "yields.csv", "categoriser.json"):
        assert bundle.export(config, dicts, 5, name, events=events) == zipped.read(f"K5/{name}")
    with pytest.raises(ExportError, match="no file 'nope.txt'"):
        bundle.export(config, dicts, 5, "nope.txt", events=events)
    with pytest.raises(ExportError, match="one K"):
        bundle.export(config, dicts, None, "workspace.json", events=events)
    # the parameters of any trained K, finished or not (the CLI folder keeps a cancelled
    # K's too); no events needed
    cancelled = [dict(dicts[0], status="cancelled"), dicts[1]]
    content = bundle.export(config, cancelled, 3, bundle.PARAMETERS_FILE)
    assert json.loads(content) == json.loads(json.dumps(dicts[0]["parameters"]))
    with pytest.raises(ExportError, match=r"no categorisation with K=4 \(trained K: 3, 5\)"):
        bundle.export(config, cancelled, 4, bundle.PARAMETERS_FILE)


def test_bad_requests_raise_export_error_with_a_message(trained, tmp_path):
    config, events, results = trained["three_class-gmm"]
    dicts = [r.to_dict() for r in results]
    with pytest.raises(ExportError, match=r"no categorisation with K=7 \(trained K: 3, 5\)"):
        bundle.select_results(dicts, 7)
    with pytest.raises(ExportError, match="no finished categorisation yet"):
        bundle.export(config, [], events=events)
    cancelled = dict(dicts[0], status="cancelled", message="cancelled at epoch 4")
    with pytest.raises(ExportError, match=r"K=3 did not finish \(cancelled at epoch 4\)"):
        bundle.export_files(config, cancelled, events)
    with pytest.raises(ExportError, match="integer"):
        bundle.select_results(dicts, "five")
    with pytest.raises(ExportError, match="has no result.json: the run has not finished"):
        bundle.bundle_from_run_dir(tmp_path)
    (tmp_path / "bad.json").write_text('{"format": "gato-categoriser", "version": 9}')
    with pytest.raises(ExportError, match="schema version 9 is not supported"):
        categoriser.load(tmp_path / "bad.json")
    assert not list(tmp_path.glob("*.zip")) and not list(tmp_path.glob("*.tmp"))


def test_cli_export_flag_and_export_command(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    out = tmp_path / "run"
    run = subprocess.run(
        [sys.executable, "-m", "gato_core", "run", "--scenario", "three_class", "--epochs", "6",
         "--gato-bins", "3", "--n-signal", "3000", "--n-bkg", "20000", "--quiet",
         "--out", str(out), "--export", str(tmp_path / "exp")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr
    summary = json.loads((out / "result.json").read_text())["trainings"][0]["statistical_model"]
    assert summary["pyhf_z_mc_stat"]["signal1"] < summary["pyhf_z"]["signal1"]
    with zipfile.ZipFile(tmp_path / "exp" / "gato_analysis.zip") as zf:
        from_training = json.loads(zf.read("K3/categoriser.json"))
        yields_training = zf.read("K3/yields.csv")
    # the run folder (parameters only, no order) gives the same categoriser and yields
    proc = subprocess.run([sys.executable, "-m", "gato_core", "export", str(out), "--k", "3"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(out / "gato_analysis.zip") as zf:
        assert json.loads(zf.read("K3/categoriser.json")) == from_training
        assert zf.read("K3/yields.csv") == yields_training
    bad = subprocess.run([sys.executable, "-m", "gato_core", "export", str(out), "--k", "4"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert bad.returncode == 2
    assert "no categorisation with K=4 (trained K: 3)" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_dataset_run_exports_its_own_columns_rescaling_and_mass_window(tmp_path):
    """A run on an imported dataset: the categoriser reads the user's column names and
    undoes the import's rescaling itself, so raw values from the user's file give the run's
    categories; yields, datacard and histograms come from the dataset's events."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from gato_core.datasets import import_dataset
    from gato_core.scenarios import generate
    from gato_core.training import train

    toy = generate("bump_hunt", 2000, 20000, seed=4)
    raw_a = 10.0 * toy.scores[:, 0] - 3.0  # outside [0, 1]: the import rescales it
    raw_b = toy.scores[:, 1].astype(np.float32)
    pq.write_table(pa.table({
        "nn_a": pa.array(raw_a.astype(np.float32)), "nn_b": pa.array(raw_b),
        "w": pa.array(toy.weight), "m_yy": pa.array(toy.mass),
        "proc": pa.array(np.array(toy.process_names)[toy.process])}), tmp_path / "ev.parquet")
    mapping = {"score_columns": ["nn_a", "nn_b"], "weight_column": "w", "process_column": "proc",
               "signals": ["signal1", "signal2"], "mass_column": "m_yy",
               "mass_window": [123.0, 127.0], "mass_range": [100.0, 180.0]}
    datasets_dir = tmp_path / "datasets"
    manifest = import_dataset([str(tmp_path / "ev.parquet")], mapping, datasets_dir, "mine")
    assert manifest.report["rescaled"]  # the case under test
    config = RunConfig.defaults("dataset", dataset=manifest.id, held_out_fraction=0.0,
                                epochs=5, n_cats=[3], snapshot_interval=5)
    result = [r for r in train(config, datasets_dir=datasets_dir) if r.kind == "result"][0]

    files = bundle.export_files(config.to_dict(), result.to_dict(), datasets_dir=datasets_dir)
    cat = json.loads(files["categoriser.json"])
    assert cat["scores"]["columns"] == ["nn_a", "nn_b"]
    assert cat["mass"] == {"column": "m_yy", "window": [123.0, 127.0]}
    assert cat["dataset"]["id"] == manifest.id
    stored = load_events(config, datasets_dir=datasets_dir)
    expected = np.asarray(result.order)[gaussian_argmax(result.components, stored.scores)[0]]
    got = apply(cat, {"nn_a": raw_a.astype(np.float32), "nn_b": raw_b}, mass=toy.mass)
    inside = (toy.mass >= 123.0) & (toy.mass <= 127.0)
    # raw -> [0, 1] in float64 here, in float32 at import: only float32 rounding may differ
    assert np.mean(got[inside] == expected[inside]) > 0.9999
    assert np.all(got[~inside] == -1)
    table = _read_yields_csv(files["yields.csv"].decode(), statmodel_table_like(stored))
    np.testing.assert_allclose(table.background(),
                               [c["background"] for c in result.categories], rtol=1e-9)
    assert "mass_histograms.root" in files


def statmodel_table_like(events):
    shape = (1, len(events.process_names))
    return YieldsTable(list(events.process_names), list(events.signal_names), np.zeros(shape),
                       np.zeros(shape), np.zeros(shape, dtype=int))


def test_one_d_dataset_column_cuts_cut_the_raw_score_as_the_categoriser_does(tmp_path):
    """A 1-D score outside [0, 1] is rescaled on import; ``column_cuts`` are the cuts on
    the user's own score values, so cutting the raw column reproduces apply()."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from gato_core.datasets import import_dataset
    from gato_core.scenarios import generate
    from gato_core.training import train

    toy = generate("one_d", 2000, 8000, seed=5)
    raw = (8.0 * toy.scores[:, 0] - 2.0).astype(np.float32)  # a logit-like range
    pq.write_table(pa.table({
        "bdt": pa.array(raw), "w": pa.array(toy.weight),
        "proc": pa.array(np.array(toy.process_names)[toy.process])}), tmp_path / "ev.parquet")
    mapping = {"score_columns": ["bdt"], "weight_column": "w", "process_column": "proc",
               "signals": ["signal"]}
    datasets_dir = tmp_path / "datasets"
    manifest = import_dataset([str(tmp_path / "ev.parquet")], mapping, datasets_dir, "oned")
    lo, hi = manifest.report["rescaled"]["bdt"]
    config = RunConfig.defaults("dataset", dataset=manifest.id, held_out_fraction=0.0,
                                epochs=30, n_cats=[4], snapshot_interval=30)
    result = [r for r in train(config, datasets_dir=datasets_dir) if r.kind == "result"][0]
    cat = json.loads(bundle.export_files(config.to_dict(), result.to_dict(),
                                         datasets_dir=datasets_dir)["categoriser.json"])
    assert len(cat["column_cuts"]) == len(cat["cuts"]) >= 1
    # independent of the exporter: the import's own linear map, applied by hand
    np.testing.assert_allclose(cat["column_cuts"], lo + (hi - lo) * np.asarray(cat["cuts"]),
                               rtol=1e-12)
    assert lo < min(cat["column_cuts"]) and max(cat["column_cuts"]) < hi
    by_hand = np.searchsorted(np.asarray(cat["column_cuts"]), raw.astype(np.float64),
                              side="right")
    assert np.mean(by_hand == apply(cat, {"bdt": raw})) > 0.9999
