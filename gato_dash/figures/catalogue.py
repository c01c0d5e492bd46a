"""Which results figures exist for a run and a trained K: their names, titles, builders.

The one list the figure cache (what it builds and keeps), the run page's results section
(which graph goes on which tab, which ones follow the log switch) and the standalone
report (headings and order) all read, so that a figure added here appears everywhere.

A figure is either per K (built from one ``TrainingResult`` and the epochs of its K) or
per run (from the run's ``RunInfo`` and all its results). ``CATALOGUE`` is in reading
order: the report shows the figures in it.

Which figures a run has depends on the dimension of its scores (``dim``: 1, 2 or 3). The
caller passes it in (it has it from ``gato_dash.runtime.run_facts``, which may read a
dataset's manifest): this module only draws what it is given.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Callable

import plotly.graph_objects as go

from .baselines import significance_comparison
from .categories import (bias_temperature_history, boundary_history_1d,
                         category_map_animation, gaussian_components_1d,
                         gaussian_components_2d)
from .category_numbers import category_statistics
from .spectra import category_mass_spectra, inclusive_mass_spectrum, stacked_histogram_1d

#: The results section's tabs, in order (the run page keeps the shown one in its URL).
TABS = ("categories", "spectra", "baselines", "numbers", "training")


@dataclass(frozen=True)
class Inputs:
    """What a builder may read: the run and the dimension of its scores, and for a per-K
    figure its result and epochs."""

    run: dict
    dim: int
    epochs: Sequence[dict] = ()
    result: dict | None = None
    results: Sequence[dict] = ()
    log: bool = False
    show_density: bool = False

    @property
    def run_info(self) -> dict:
        return self.run.get("run_info") or {}


@dataclass(frozen=True)
class FigureSpec:
    name: str
    #: heading in the report
    title: str
    #: the results section's tab that shows it
    tab: str
    per_k: bool
    #: its y axis follows the section's log switch
    follows_log: bool
    build: Callable[[Inputs], go.Figure]
    #: (run, result, dim) -> whether this run (and K) has the figure at all
    exists: Callable[[dict, dict | None, int], bool] = field(
        default=lambda run, result, dim: True)


def _one_d(run, result, dim) -> bool:
    return dim == 1


def _two_d(run, result, dim) -> bool:
    return dim == 2


def _has_inclusive_mass(run, result, dim) -> bool:
    return bool(((run.get("run_info") or {}).get("inclusive") or {}).get("mass_hist"))


def _has_mass_spectra(run, result, dim) -> bool:
    return dim == 2 and bool((result or {}).get("mass_histograms"))


def _components(i: Inputs) -> go.Figure:
    if i.dim == 1:
        return gaussian_components_1d(i.result)
    return gaussian_components_2d(i.result, i.run_info)


CATALOGUE: tuple[FigureSpec, ...] = (
    # per run
    FigureSpec("significance_comparison", "Significance against number of categories",
               "baselines", per_k=False, follows_log=False,
               build=lambda i: significance_comparison(i.run_info, i.results)),
    FigureSpec("inclusive_mass", "Inclusive mass spectrum", "spectra", per_k=False,
               follows_log=True, exists=_has_inclusive_mass,
               build=lambda i: inclusive_mass_spectrum(i.run_info.get("inclusive"),
                                                       log=i.log)),
    # per K
    FigureSpec("boundary_history", "Bin boundaries over epochs", "categories", per_k=True,
               follows_log=False, exists=_one_d,
               build=lambda i: boundary_history_1d(i.epochs, i.result)),
    FigureSpec("category_map", "Category boundaries over epochs", "categories", per_k=True,
               follows_log=False, exists=_two_d,
               build=lambda i: category_map_animation(i.epochs, i.result, i.run_info,
                                                      show_density=i.show_density)),
    FigureSpec("stacked_histogram", "Yields in the optimised bins", "spectra", per_k=True,
               follows_log=True, exists=_one_d,
               build=lambda i: stacked_histogram_1d(i.result, i.run_info, log=i.log)),
    FigureSpec("components", "Learned Gaussian components", "categories", per_k=True,
               follows_log=False, build=_components),
    FigureSpec("mass_spectra", "Mass spectra per category", "spectra", per_k=True,
               follows_log=True, exists=_has_mass_spectra,
               build=lambda i: category_mass_spectra(i.result, log=i.log)),
    FigureSpec("category_statistics", "Background yield and MC uncertainty per category",
               "numbers", per_k=True, follows_log=True,
               build=lambda i: category_statistics(i.result, log=i.log,
                                                   thresholds=i.run.get("config"))),
    FigureSpec("bias_history", "Soft-vs-hard bias and temperature", "categories", per_k=True,
               follows_log=False,
               build=lambda i: bias_temperature_history(i.epochs, int(i.result["n_cats"]))),
)
SPECS = {spec.name: spec for spec in CATALOGUE}

#: Figures whose y axis follows the log switch.
LOG_FIGURES = tuple(spec.name for spec in CATALOGUE if spec.follows_log)


def title(name: str) -> str:
    return SPECS[name].title if name in SPECS else name


def names(run: dict, result: dict | None = None, *, dim: int, per_k: bool | None = None,
          follows_log: bool | None = None, tab: str | None = None) -> list[str]:
    """The figures this run (and, for per-K figures, this result) has, in reading order,
    optionally only those per K or per run, following the log switch or not, on one tab.
    Per-K figures are listed only when ``result`` is given. ``dim``: the run's score
    dimension."""
    return [spec.name for spec in CATALOGUE
            if (per_k is None or spec.per_k == per_k)
            and (follows_log is None or spec.follows_log == follows_log)
            and (tab is None or spec.tab == tab)
            and (result is not None or not spec.per_k)
            and spec.exists(run, result, dim)]


def build(wanted: Iterable[str], inputs: Inputs) -> dict[str, go.Figure]:
    """The figures named in ``wanted`` (in catalogue order), built from ``inputs``."""
    wanted = set(wanted)
    return {spec.name: spec.build(inputs) for spec in CATALOGUE if spec.name in wanted}


def result_figures(run: dict, epochs: Sequence[dict], result: dict, *, dim: int,
                   log: bool = False, show_density: bool = False,
                   only: Iterable[str] | None = None) -> dict[str, go.Figure]:
    """The per-K figures of one result, keyed by name, in reading order (``only``: build
    just these; a first tab needs 3 of the 5, and the others take ~0.2 s to build)."""
    existing = names(run, result, dim=dim, per_k=True)
    if only is not None:
        existing = [name for name in existing if name in set(only)]
    return build(existing, Inputs(run, dim, epochs, result, log=log,
                                  show_density=show_density))


def run_figures(run: dict, results: Sequence[dict], *, dim: int,
                log: bool = False) -> dict[str, go.Figure]:
    """The run-level figures (independent of the selected K)."""
    return build(names(run, dim=dim, per_k=False), Inputs(run, dim, results=results, log=log))
