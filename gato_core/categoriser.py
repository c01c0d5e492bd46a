"""The categoriser file: a trained categorisation as plain JSON (schema in docs/CATEGORISER.md).

``from_result(result, config)`` turns a TrainingResult (object or dict) into the file's
content; ``gato_core.apply.apply`` assigns categories with it, numpy only. The file holds
derived quantities (means, Cholesky factors, log mixture weights, cut values), not the
training's raw variables, so an analysis can re-implement the rule without this package.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from . import geometry
from .scenarios import SCENARIOS, mass_window

FORMAT = "gato-categoriser"
SCHEMA_VERSION = 1
RULE_ARGMAX = "argmax_log_density"
RULE_CUTS = "cuts"

#: Names of the score columns a categoriser reads, per toy scenario. Analyses on their own
#: data pass ``score_columns`` (the discriminants' names in their ntuples) instead.
DEFAULT_SCORE_COLUMNS = {
    "one_d": ("discriminant",),
    "three_class": ("p_signal1", "p_signal2"),
    "bump_hunt": ("p_signal1", "p_signal2"),
}
MASS_COLUMN = "mass"


class ExportError(ValueError):
    """A categorisation cannot be exported or applied; the message says why, in words a user
    can act on (unfinished run, missing or unknown K, a damaged categoriser file)."""


def _get(result, name, default=None):
    if isinstance(result, dict):
        return result.get(name, default)
    return getattr(result, name, default)


def _config_dict(config) -> dict:
    return config if isinstance(config, dict) else config.to_dict()


def from_result(result, config, score_columns=None, *, rescale=None, window=None,
                mass_column=None, boundaries=None, order=None, dataset=None) -> dict:
    """The categoriser file's content for one trained K.

    ``result``: a TrainingResult or its dict (needs ``parameters``; ``boundaries`` (1-D) and
    ``order`` (2-D) are read from it unless given). ``config``: the run's RunConfig or dict.
    Toy scenarios know their score columns and mass window; for an imported dataset pass
    ``score_columns`` (the columns the model reads), ``rescale`` ({column: [lo, hi]} mapped
    linearly onto [0, 1] at import) and ``window`` ([lo, hi] GeV, with a mass column).
    """
    cfg = _config_dict(config)
    scenario = cfg.get("scenario")
    parameters = _get(result, "parameters")
    if not parameters:
        raise ExportError(f"the result for K={_get(result, 'n_cats')} holds no model parameters")
    dim = int(parameters["dim"])
    score_range = [float(v) for v in parameters["mean_range"]]
    columns = list(score_columns or cfg.get("score_columns") or
                   DEFAULT_SCORE_COLUMNS.get(scenario, ()))
    if len(columns) != dim:
        raise ExportError(f"the categoriser reads {dim} score column(s), got names {columns}")
    rescale = rescale or {}
    boundaries = boundaries if boundaries is not None else _get(result, "boundaries")
    order = order if order is not None else _get(result, "order")
    if window is None and scenario in SCENARIOS and SCENARIOS[scenario].has_mass:
        window = mass_window(float(cfg.get("mass_sigma", 1.5)))

    out = {
        "format": FORMAT,
        "version": SCHEMA_VERSION,
        "scenario": scenario,
        "model": parameters["model"],
        "n_components": int(parameters["n_cats"]),
        "scores": {
            "columns": columns,
            "shift": [float(rescale[c][0]) if c in rescale else 0.0 for c in columns],
            "scale": [float(rescale[c][1] - rescale[c][0]) or 1.0 if c in rescale else 1.0
                      for c in columns],
            "range": score_range,
        },
        "gmm": None,
        "cuts": None,
        "mass": None,
    }
    if dataset:
        out["dataset"] = dict(dataset)
    if parameters["model"] == "gmm":
        out["gmm"] = {
            "means": geometry.means(parameters["raw_means"], parameters["mean_mode"],
                                    parameters["mean_range"]).tolist(),
            "cholesky": geometry.scale_tril(parameters["raw_scale"], parameters["sigma_base"],
                                            parameters["damping"]).tolist(),
            "log_weights": geometry.log_weights(parameters["logits"]).tolist(),
        }
    if dim == 1:
        if boundaries is None:
            from .evaluation import boundaries_1d
            boundaries = boundaries_1d(parameters, score_range)
        cuts = [float(c) for c in boundaries]
        edges = [score_range[0]] + cuts + [score_range[1]]
        out["rule"] = RULE_CUTS
        out["cuts"] = cuts
        # the same cuts on the column's own values, for a reader who cuts on the raw score
        shift, scale = out["scores"]["shift"][0], out["scores"]["scale"][0]
        out["column_cuts"] = [shift + scale * c for c in cuts]
        out["n_categories"] = len(cuts) + 1
        out["categories"] = [{"index": i, "range": [float(edges[i]), float(edges[i + 1])]}
                             for i in range(len(cuts) + 1)]
    else:
        if order is None:
            raise ExportError("a 2-D categoriser needs the display order of its components "
                              "(TrainingResult.order)")
        order = [int(v) for v in order]
        if sorted(order) != list(range(len(order))) or len(order) != out["n_components"]:
            raise ExportError(f"order {order} is not a numbering of {out['n_components']} "
                              "components")
        out["rule"] = RULE_ARGMAX
        out["category_of_component"] = order
        out["n_categories"] = len(order)
        out["categories"] = [{"index": order[c], "component": c} for c in
                             sorted(range(len(order)), key=lambda c: order[c])]
    if window is not None:
        out["mass"] = {"column": mass_column or MASS_COLUMN,
                       "window": [float(v) for v in window]}
    return validate(out)


def validate(categoriser: dict) -> dict:
    """Check a categoriser's structure; returns it, or raises ExportError saying what is wrong."""
    if not isinstance(categoriser, dict):
        raise ExportError("a categoriser must be a JSON object")
    if categoriser.get("format") != FORMAT:
        raise ExportError(f"not a GATO categoriser file (format is {categoriser.get('format')!r}, "
                          f"expected {FORMAT!r})")
    version = categoriser.get("version")
    if version != SCHEMA_VERSION:
        raise ExportError(f"categoriser schema version {version!r} is not supported "
                          f"(this version reads {SCHEMA_VERSION})")
    try:
        scores = categoriser["scores"]
        dim = len(scores["columns"])
        if len(scores["shift"]) != dim or len(scores["scale"]) != dim:
            raise ExportError("scores.shift and scores.scale need one value per score column")
        if not all(float(v) != 0.0 for v in scores["scale"]):
            raise ExportError("scores.scale must not contain 0")
        rule = categoriser["rule"]
        n_cat = int(categoriser["n_categories"])
        if rule == RULE_CUTS:
            cuts = np.asarray(categoriser["cuts"], dtype=np.float64)
            if dim != 1:
                raise ExportError("the 'cuts' rule needs exactly one score column")
            if cuts.ndim != 1 or len(cuts) != n_cat - 1 or np.any(np.diff(cuts) < 0):
                raise ExportError(f"'cuts' must be {n_cat - 1} increasing values")
        elif rule == RULE_ARGMAX:
            gmm = categoriser["gmm"]
            mu = np.asarray(gmm["means"], dtype=np.float64)
            tril = np.asarray(gmm["cholesky"], dtype=np.float64)
            log_w = np.asarray(gmm["log_weights"], dtype=np.float64)
            k = len(log_w)
            if mu.shape != (k, dim) or tril.shape != (k, dim, dim):
                raise ExportError(f"gmm: expected means [{k}, {dim}] and cholesky "
                                  f"[{k}, {dim}, {dim}], got {list(mu.shape)} and "
                                  f"{list(tril.shape)}")
            if np.any(np.diagonal(tril, axis1=1, axis2=2) <= 0):
                raise ExportError("gmm: Cholesky factors need a positive diagonal")
            order = categoriser["category_of_component"]
            if sorted(int(v) for v in order) != list(range(n_cat)) or len(order) != k:
                raise ExportError("category_of_component must number the components 0..K-1")
        else:
            raise ExportError(f"unknown assignment rule {rule!r} (expected {RULE_ARGMAX!r} "
                              f"or {RULE_CUTS!r})")
        mass = categoriser.get("mass")
        if mass is not None and len(mass["window"]) != 2:
            raise ExportError("mass.window must be [low, high]")
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ExportError):
            raise
        raise ExportError(f"damaged categoriser: {type(exc).__name__}: {exc}") from None
    return categoriser


def dumps(categoriser: dict) -> str:
    # json writes floats with repr: they read back bit for bit, so apply() stays exact
    return json.dumps(validate(categoriser), indent=1)


def save(categoriser: dict, path) -> Path:
    """Write atomically (temp file, then rename): a reader never sees half a file."""
    path = Path(path)
    text = dumps(categoriser)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def load(path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ExportError(f"cannot read categoriser {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ExportError(f"categoriser {path} is not valid JSON: {exc}") from None
    return validate(data)
