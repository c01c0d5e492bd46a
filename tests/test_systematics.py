"""Background uncertainties (issue #22 item 3): the Asimov significance with sigma_b in numpy
and TensorFlow, the training objective that uses it, and lnN systematics in the exported
pyhf workspace (normsys) and Combine datacard (lnN rows), checked against pyhf."""
from __future__ import annotations

import mpmath
import numpy as np
import pytest

from gato_core import datacard, statmodel
from gato_core.config import ConfigError, RunConfig
from gato_core.significance import asimov_z, asimov_z_bkg_unc, combined_z, significance_per_signal
from gato_core.yields import YieldsTable


def cowan_direct(s, b, sigma):
    """The textbook formula, term by term in 50-digit arithmetic (no log1p rewriting)."""
    mpmath.mp.dps = 50
    s, b, v = mpmath.mpf(s), mpmath.mpf(b), mpmath.mpf(sigma) ** 2
    z2 = 2 * ((s + b) * mpmath.log((s + b) * (b + v) / (b * b + (s + b) * v))
              - b * b / v * mpmath.log(1 + v * s / (b * (b + v))))
    return float(mpmath.sqrt(z2))


@pytest.mark.parametrize("s, b, sigma", [
    (5.0, 10.0, 1.0), (10.0, 50.0, 5.0), (3.0, 2.0, 0.5), (100.0, 400.0, 80.0),
    (40.0, 100.0, 0.01), (7.0, 20.0, 60.0)])
def test_formula_against_a_high_precision_evaluation(s, b, sigma):
    assert asimov_z_bkg_unc(s, b, sigma) == pytest.approx(cowan_direct(s, b, sigma), rel=1e-10)


def test_known_values():
    # s = 10, b = 10 by hand: without uncertainty Z = sqrt(2 (20 ln 2 - 10)) = 2.7795.
    # sigma = 1: 20 ln(20*11/120) = 12.1227, (100/1) ln(1 + 10/110) = 8.7011,
    # Z = sqrt(2 (12.1227 - 8.7011)) = 2.6159. sigma = 10: 20 ln(2200/2100) = 0.9304,
    # (100/100) ln(1 + 1000/1100) = 0.6466, Z = sqrt(2 (0.9304 - 0.6466)) = 0.7534.
    assert asimov_z(10.0, 10.0) == pytest.approx(2.7795, abs=1e-4)
    assert asimov_z_bkg_unc(10.0, 10.0, 1.0) == pytest.approx(2.6159, abs=1e-4)
    assert asimov_z_bkg_unc(10.0, 10.0, 10.0) == pytest.approx(0.7534, abs=1e-4)


def test_sigma_to_zero_is_the_plain_asimov_z():
    rng = np.random.default_rng(1)
    s, b = rng.uniform(1, 50, 200), rng.uniform(5, 500, 200)
    plain = asimov_z(s, b)
    np.testing.assert_array_equal(asimov_z_bkg_unc(s, b, 0.0), plain)
    for rel in (1e-3, 1e-5, 1e-8):
        np.testing.assert_allclose(asimov_z_bkg_unc(s, b, rel * b), plain, rtol=5 * rel + 1e-12)
    # and it only ever lowers Z, more for larger sigma
    z1, z2 = asimov_z_bkg_unc(s, b, 0.05 * b), asimov_z_bkg_unc(s, b, 0.2 * b)
    assert np.all(z1 < plain) and np.all(z2 < z1)


def test_small_signal_limit_is_s_over_sqrt_b_plus_sigma2():
    b, sigma = 1000.0, 50.0
    s = 20.0  # s/b = 0.02: the expansion branch
    assert asimov_z_bkg_unc(s, b, sigma) == pytest.approx(s / np.sqrt(b + sigma ** 2), rel=1e-12)
    # the expansion is the formula's own limit: at s/b = 0.1 they agree to about s/b
    assert cowan_direct(100.0, b, sigma) == pytest.approx(100.0 / np.sqrt(b + sigma ** 2),
                                                          rel=0.05)


def test_per_signal_with_relative_uncertainty():
    signal = np.array([[5.0, 10.0, 2.0], [1.0, 3.0, 8.0]])
    background = np.array([50.0, 20.0, 30.0])
    got = significance_per_signal(signal, background, 0.1)
    for j in range(2):
        b = background + signal[1 - j]
        per_category = [cowan_direct(signal[j, k], b[k], 0.1 * b[k]) if signal[j, k] >= 0.1 * b[k]
                        else signal[j, k] / np.sqrt(b[k] + (0.1 * b[k]) ** 2)  # s/b < 0.1
                        for k in range(3)]
        expected = np.sqrt(np.sum(np.square(per_category)))
        assert got[j] == pytest.approx(expected, rel=1e-9)
    np.testing.assert_array_equal(significance_per_signal(signal, background, 0.0),
                                  significance_per_signal(signal, background))


# ----- TensorFlow ------------------------------------------------------------------------
def test_tf_objective_equals_numpy_and_has_finite_gradients():
    import tensorflow as tf
    from gato_core.objective import significance_per_signal as tf_significance

    rng = np.random.default_rng(3)
    s = rng.uniform(0, 20, (2, 7))
    b = rng.uniform(0.5, 300, 7)
    s[0, 0], b[1] = 0.0, 1e-6  # an empty category and a near-empty background
    for rel in (0.02, 0.1, 0.5):
        got = tf_significance(tf.constant(s, tf.float32), tf.constant(b, tf.float32), rel)
        assert got.numpy() == pytest.approx(significance_per_signal(s, b, rel), rel=2e-4)
    s_var, b_var = tf.Variable(s, dtype=tf.float32), tf.Variable(b, dtype=tf.float32)
    with tf.GradientTape() as tape:
        z = tf_significance(s_var, b_var, 0.1)
    for grad in tape.gradient(z, [s_var, b_var]):
        assert np.all(np.isfinite(grad.numpy()))


# ----- configuration ---------------------------------------------------------------------
def test_objective_settings_are_validated():
    config = RunConfig.from_dict({"scenario": "one_d", "objective": "asimov_bkg_unc",
                                  "bkg_rel_unc": "0.1"})
    assert config.objective == "asimov_bkg_unc" and config.training_bkg_rel_unc == 0.1
    assert RunConfig.defaults("one_d").training_bkg_rel_unc == 0.0
    bad = [({"objective": "likelihood"}, "objective", "must be one of"),
           ({"objective": "asimov_bkg_unc"}, "bkg_rel_unc", "above 0"),
           ({"objective": "asimov_bkg_unc", "bkg_rel_unc": 5}, "bkg_rel_unc", "between 0 and 2"),
           ({"bkg_rel_unc": 0.1}, "bkg_rel_unc", "only by the objective"),
           ({"objective": "asimov_bkg_unc", "bkg_rel_unc": "ten"}, "bkg_rel_unc", "number")]
    for settings, field, words in bad:
        with pytest.raises(ConfigError) as err:
            RunConfig.from_dict({"scenario": "one_d", **settings})
        assert words in err.value.problems[field], settings


def test_training_with_the_background_uncertainty_objective():
    from gato_core.training import train

    def final(config):
        records = list(train(config))
        return ([r for r in records if r.kind == "epoch"],
                next(r for r in records if r.kind == "result"))

    base = dict(n_signal=2000, n_bkg=6000, epochs=8, n_cats=[4], seed=5, n_starts=1)
    plain_epochs, _ = final(RunConfig.defaults("one_d", **base))
    epochs, result = final(RunConfig.defaults("one_d", objective="asimov_bkg_unc",
                                              bkg_rel_unc=0.2, **base))
    assert result.status == "finished"
    # epoch 0 starts from the same categories: the soft Z is the objective's, lower with sigma_b
    first, plain_first = epochs[0].significance["signal"], plain_epochs[0].significance["signal"]
    assert 0 < first < plain_first
    # the reported hard Z stays the plain Asimov Z of the categories found
    cats = result.categories
    s = np.array([c["signal"]["signal"] for c in cats])
    b = np.array([c["background"] for c in cats])
    assert result.significance["signal"] == pytest.approx(combined_z(s, b), rel=1e-9)


# ----- the exported statistical model --------------------------------------------------------
def one_background_per_category(k=4, n_mc=1e6, seed=1):
    """Signal everywhere, background process bkg<k> only in category k: a per-process
    normsys is then an independent uncertainty per category, as in the Cowan formula."""
    rng = np.random.default_rng(seed)
    s, b = rng.uniform(5, 30, k), rng.uniform(50, 400, k)
    sum_w = np.zeros((k, k + 1))
    sum_w[:, 0] = s
    sum_w[np.arange(k), np.arange(k) + 1] = b
    n_events = np.full(sum_w.shape, int(n_mc))
    table = YieldsTable(["sig"] + [f"bkg{i}" for i in range(k)], ["sig"], sum_w,
                        sum_w ** 2 / n_mc, n_events)
    return table, s, b


@pytest.mark.parametrize("u, tolerance", [(0.02, 0.015), (0.05, 0.015), (0.1, 0.03)])
def test_pyhf_hypotest_with_normsys_matches_the_combined_cowan_z(u, tolerance):
    """At 0.1 % MC statistics the workspace's expected discovery Z (q0 on Asimov data, with
    the normsys profiled) agrees with the quadrature sum of per-category Asimov-with-sigma_b
    Z within 1.5 % up to u = 5 % and 3 % at u = 10 %: pyhf constrains a log-normal
    (normsys) where the formula assumes a Poisson auxiliary measurement, which differ more
    as u grows."""
    import pyhf
    from scipy.stats import norm

    table, s, b = one_background_per_category()
    systematics = {f"norm_bkg{i}": {f"bkg{i}": u} for i in range(len(s))}
    spec = statmodel.workspace(table, systematics)
    ws = statmodel.validated_workspace(spec)
    model = ws.model(measurement_name="sig")
    assert {m for m, kind in model.config.modifiers if kind == "normsys"} == set(systematics)
    # pyhf's own hypotest: CLs-style p-value of mu = 0 under the q0 test statistic
    p0 = pyhf.infer.hypotest(0.0, ws.data(model), model, test_stat="q0")
    z_hypotest = float(norm.isf(float(p0)))  # Asimov data: the median expected Z
    expected = combined_z(s, b, u)
    assert z_hypotest == pytest.approx(expected, rel=tolerance)
    summary = statmodel.summary(table, systematics)
    assert summary["pyhf_z_syst"]["sig"] == pytest.approx(z_hypotest, rel=1e-6)


def test_normsys_lowers_the_expected_significance():
    table, s, b = one_background_per_category(n_mc=1e5)
    shared = {"bkg_xs": {p: 0.1 for p in table.backgrounds}, "lumi": {
        p: 0.025 for p in table.processes}}
    summary = statmodel.summary(table, shared)
    assert summary["pyhf_z_syst"]["sig"] < summary["pyhf_z_mc_stat"]["sig"] - 0.05
    assert summary["pyhf_z_mc_stat"]["sig"] <= summary["pyhf_z"]["sig"]
    assert summary["systematics"] == shared
    # without systematics the workspace has no normsys and the numbers are those of before
    assert statmodel.summary(table)["pyhf_z_mc_stat"]["sig"] == pytest.approx(
        summary["pyhf_z_mc_stat"]["sig"], rel=1e-9)


def test_datacard_lnn_rows_parse_as_combine_expects():
    table, s, b = one_background_per_category(k=3)
    systematics = {"bkg_xs": {p: 0.1 for p in table.backgrounds}, "lumi": {
        p: 0.025 for p in table.processes}}
    text = datacard.datacard(table, "lnN", systematics=systematics, sample="full")
    lines = [line.split() for line in text.splitlines()
             if line.strip() and not line.startswith(("#", "-"))]
    head = {row[0]: row for row in lines[:4]}
    assert head["imax"] == ["imax", "3"] and head["jmax"] == ["jmax", str(len(table.processes) - 1)]
    process_rows = [row for row in lines if row[0] == "process"]
    n_columns = len(process_rows[0]) - 1
    assert n_columns == table.n_categories * len(table.processes)
    rate = next(row for row in lines if row[0] == "rate")
    assert len(rate) == 1 + n_columns
    for name, per_process in systematics.items():
        row = next(r for r in lines if r[0] == name)
        assert row[1] == "lnN" and len(row) == 2 + n_columns  # name, type, one per column
        for column, (value, process) in enumerate(zip(row[2:], process_rows[0][1:])):
            rate_value = float(rate[1 + column])
            if process in per_process and rate_value > 0:
                assert float(value) == pytest.approx(1 + per_process[process])
            else:
                assert value == "-"
    # the workspace's normsys describes the same log-normal: hi = kappa, lo = 1/kappa
    spec = statmodel.workspace(table, systematics)
    mods = [m for ch in spec["channels"] for smp in ch["samples"] for m in smp["modifiers"]
            if m["type"] == "normsys" and m["name"] == "bkg_xs"]
    assert mods and all(m["data"]["hi"] == pytest.approx(1.1) and
                        m["data"]["lo"] == pytest.approx(1 / 1.1) for m in mods)
    assert "# yields on the full sample" in text
