"""The categorisation as a statistical model: a pyhf (HistFactory) workspace and a summary of
expected discovery significances with and without MC statistical uncertainty.

Input is a ``gato_core.yields.YieldsTable``; pyhf is imported only when a function here
needs it (the numpy backend), so importing this module stays cheap.

Two signals: one workspace holds one *measurement* per signal. Measurement ``<signal>`` has
the POI ``mu_<signal>`` and fixes every other signal's normalisation at 1, so the other
signal counts as background, exactly as in GATO's own significance (ALGORITHM §1).
"""
from __future__ import annotations

import time

import numpy as np

from .categoriser import ExportError
from .significance import B_FLOOR, significance_per_signal
from .yields import YieldsTable

WORKSPACE_VERSION = "1.0.0"
#: Flag categories whose expected background is below this many events: asymptotic
#: formulae (and the Asimov Z) are unreliable there.
MIN_BACKGROUND = 1.0
#: Flag categories whose background MC statistical uncertainty sqrt(sum w^2) / sum w is
#: above this: the simulated sample is too small for the category's yield to be trusted.
MAX_REL_MC_UNCERTAINTY = 0.2
#: Sample that keeps a channel without any simulated background finite (same floor as
#: gato_core.significance uses for the Asimov formula).
FLOOR_SAMPLE = "background_floor"


def channel_name(category: int) -> str:
    return f"cat{category}"


def poi_name(signal: str) -> str:
    return f"mu_{signal}"


def staterror_name(category: int) -> str:
    return f"staterror_{channel_name(category)}"


def normsys_data(u: float) -> dict:
    """pyhf ``normsys`` factors of a relative normalisation uncertainty ``u``: hi = 1 + u,
    lo = 1 / (1 + u). That is the log-normal of Combine's ``lnN`` with kappa = 1 + u (its
    down variation is 1/kappa), so the workspace and the datacard describe one model."""
    return {"hi": 1.0 + float(u), "lo": 1.0 / (1.0 + float(u))}


def workspace(table: YieldsTable, systematics: dict | None = None) -> dict:
    """HistFactory JSON: one single-bin channel per category; each signal scaled by its own
    ``mu_<signal>`` (normfactor), each background with the channel's ``staterror``
    (absolute uncertainty sqrt(sum w^2)); observations are the Asimov data s + b.

    ``systematics`` ``{nuisance: {process: u}}`` (``*`` already expanded: import_steps.
    resolved_systematics) adds one ``normsys`` modifier per nuisance to each process it
    names, in every category (one parameter, correlated across categories)."""
    systematics = systematics or {}

    def normsys(process):
        return [{"name": name, "type": "normsys", "data": normsys_data(per[process])}
                for name, per in systematics.items() if process in per]

    if not (np.all(np.isfinite(table.sum_w)) and np.all(np.isfinite(table.sum_w2))):
        raise ExportError("the yields are not finite numbers (NaN or infinite event weights?); "
                          "no statistical model can be built")
    channels, observations = [], []
    backgrounds = table.backgrounds
    for k in range(table.n_categories):
        samples = []
        for s in table.signals:
            j = table.processes.index(s)
            samples.append({"name": s, "data": [float(table.sum_w[k, j])],
                            "modifiers": [{"name": poi_name(s), "type": "normfactor",
                                           "data": None}] + normsys(s)})
        total_bkg = 0.0
        for p in backgrounds:
            j = table.processes.index(p)
            if table.sum_w[k, j] <= 0.0:
                continue  # an empty sample adds nothing and would make staterror 0/0
            total_bkg += float(table.sum_w[k, j])
            samples.append({"name": p, "data": [float(table.sum_w[k, j])],
                            "modifiers": [{"name": staterror_name(k), "type": "staterror",
                                           "data": [float(np.sqrt(table.sum_w2[k, j]))]}]
                            + normsys(p)})
        if total_bkg < B_FLOOR:
            samples.append({"name": FLOOR_SAMPLE, "data": [B_FLOOR - total_bkg], "modifiers": []})
        channels.append({"name": channel_name(k), "samples": samples})
        observations.append({"name": channel_name(k),
                             "data": [float(sum(smp["data"][0] for smp in samples))]})
    measurements = [
        {"name": s, "config": {"poi": poi_name(s), "parameters": [
            {"name": poi_name(other), "fixed": True, "inits": [1.0]}
            for other in table.signals if other != s]}}
        for s in table.signals
    ]
    return {"channels": channels, "observations": observations,
            "measurements": measurements, "version": WORKSPACE_VERSION}


def _pyhf():
    try:
        import pyhf
    except ImportError:
        raise ExportError("the statistical model needs pyhf (pip install pyhf==0.7.6)") from None
    pyhf.set_backend("numpy")
    return pyhf


def preload() -> None:
    """Import pyhf on a background thread (the training job calls this when it starts), so
    the first K's summary does not wait for the import (~0.7 s here)."""
    import threading

    def load():
        try:
            _pyhf()
        except ExportError:
            pass  # try_summary reports None later

    # not a daemon: a thread still importing at interpreter exit must be waited for
    threading.Thread(target=load, name="gato-pyhf-import", daemon=False).start()


def validated_workspace(spec: dict):
    """``pyhf.Workspace(spec)``: raises ExportError if pyhf's schema check refuses it."""
    pyhf = _pyhf()
    try:
        return pyhf.Workspace(spec)
    except pyhf.exceptions.InvalidSpecification as exc:
        raise ExportError(f"the workspace does not follow the HistFactory schema: {exc}") from None


def expected_discovery_z(ws, signal: str, mc_stat: bool = True, model=None,
                         systematics: bool = True) -> float:
    """Median expected discovery significance sqrt(q0) for ``signal`` (asymptotic formulae on
    the workspace's Asimov data); ``mc_stat=False`` fixes every staterror parameter at 1,
    ``systematics=False`` every normsys parameter at 0 (nominal).
    ``model``: that measurement's model if already built (building it costs more than a fit)."""
    pyhf = _pyhf()
    if model is None:
        # the spec was built (and schema-checked in the tests and the export) by workspace():
        # validating it again here would take about a third of the summary's time
        model = ws.model(measurement_name=signal, validate=False)
    data = ws.data(model)
    fixed = list(model.config.suggested_fixed())
    for name, par in model.config.par_map.items():
        if (not mc_stat and name.startswith("staterror_")) or (
                not systematics and name in ws_normsys(model)):
            for i in range(par["slice"].start, par["slice"].stop):
                fixed[i] = True
    try:
        q0 = pyhf.infer.test_statistics.q0(0.0, data, model, model.config.suggested_init(),
                                           model.config.suggested_bounds(), fixed)
    except pyhf.exceptions.FailedMinimization as exc:
        raise ExportError(f"the pyhf fit for {signal} did not converge: {exc}") from None
    return float(np.sqrt(max(float(q0), 0.0)))


def ws_normsys(model) -> set[str]:
    """Names of the model's normsys parameters (the lnN systematics)."""
    return {name for name, mod_type in model.config.modifiers if mod_type == "normsys"}


def category_flags(table: YieldsTable) -> list[dict]:
    background = table.background()
    sum_w2 = table.background_sum_w2()
    counts = table.n_events[:, [table.processes.index(p) for p in table.backgrounds]].sum(axis=1)
    out = []
    for k in range(table.n_categories):
        rel = float(np.sqrt(sum_w2[k]) / background[k]) if background[k] > 0 else None
        out.append({
            "category": k,
            "background": float(background[k]),
            "rel_mc_unc": rel,
            "bkg_mc_events": int(counts[k]),
            "tiny_background": bool(background[k] < MIN_BACKGROUND),
            "large_mc_uncertainty": bool(rel is None or rel > MAX_REL_MC_UNCERTAINTY),
        })
    return out


def summary(table: YieldsTable, systematics: dict | None = None,
            sample: str = "full") -> dict:
    """The statistical model of one K as plain data (JSON-safe):

    ``asimov_z`` {signal: Z} (gato_core.significance, the number the run reports),
    ``pyhf_z`` {signal: Z} expected discovery significance without MC-stat uncertainty,
    ``pyhf_z_mc_stat`` {signal: Z} with it, ``flags`` one dict per category, ``thresholds``
    the constants the flags use, ``seconds`` the time taken, ``sample`` which events the
    numbers are on ("full", "held_out", "training"). With ``systematics`` (lnN, see
    ``workspace``) also ``pyhf_z_syst`` {signal: Z} with MC statistics and systematics and
    ``systematics`` (the nuisances); ``pyhf_z`` / ``pyhf_z_mc_stat`` then hold the
    systematics at their nominal values, so the three compare.
    """
    start = time.perf_counter()
    ws = _pyhf().Workspace(workspace(table, systematics), validate=False)
    z_asimov = significance_per_signal(table.signal(), table.background())
    models = {s: ws.model(measurement_name=s, validate=False) for s in table.signals}
    extra = {}
    if systematics:
        extra = {"systematics": {k: dict(v) for k, v in systematics.items()},
                 "pyhf_z_syst": {s: expected_discovery_z(ws, s, True, models[s], True)
                                 for s in table.signals}}
    return {
        "sample": sample,
        "n_categories": table.n_categories,
        "signals": list(table.signals),
        "asimov_z": {s: float(z_asimov[j]) for j, s in enumerate(table.signals)},
        "pyhf_z": {s: expected_discovery_z(ws, s, False, models[s], False)
                   for s in table.signals},
        "pyhf_z_mc_stat": {s: expected_discovery_z(ws, s, True, models[s], False)
                           for s in table.signals},
        **extra,
        "flags": category_flags(table),
        "thresholds": {"min_background": MIN_BACKGROUND,
                       "max_rel_mc_uncertainty": MAX_REL_MC_UNCERTAINTY},
        "seconds": time.perf_counter() - start,
    }


def try_summary(table: YieldsTable | None, sample: str = "full") -> dict | None:
    """``summary`` for the training job: None (not a failed run) without pyhf or a table."""
    if table is None:
        return None
    try:
        return summary(table, sample=sample)
    except ExportError:
        return None
