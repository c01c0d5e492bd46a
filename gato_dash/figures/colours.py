"""Every colour the figures use, in one place: categories, processes, compared runs.

A category keeps its colour in every figure and animation frame (by its display number);
a process (``signal1``, ``bkg2``, ...) has the same colour in the results figures, the
report, the new-run preview and the training histories.
"""
from __future__ import annotations

import plotly.colors


#: Enough distinct colours for the engine's maximum of 50 categories, without repeats.
CATEGORY_COLOURS: tuple[str, ...] = tuple(
    dict.fromkeys(
        plotly.colors.qualitative.Plotly
        + plotly.colors.qualitative.D3
        + plotly.colors.qualitative.Dark24
        + plotly.colors.qualitative.Light24
        + plotly.colors.qualitative.Alphabet
    )
)


#: Signal colours, strong, in the order of the run's signals: the first signal is red and
#: the second blue whatever they are called (a dataset's "ggH" and "VBF" as much as the toys'
#: "signal1" and "signal2"). Chosen so that any two of them, and any signal and background,
#: differ by a CIELAB distance (CIE76) of more than 25: told apart at a glance.
SIGNAL_COLOURS = ("#d62728", "#1f3fbf", "#1b7837", "#6a3d9a", "#e6a100", "#e377c2")
#: Background colours, muted, in the order of the run's backgrounds (same distance rule).
BACKGROUND_COLOURS = ("#9ecae1", "#a1d99b", "#fdd0a2", "#fddaec", "#ffed6f", "#b3de69",
                      "#fb8072")


#: A bar of all signals (or all backgrounds) summed, where processes are not told apart
SUMMED_SIGNAL_COLOUR = SIGNAL_COLOURS[0]
SUMMED_BACKGROUND_COLOUR = "#9fb7cf"


def process_colours(processes, signals) -> dict[str, str]:
    """The one colour map of a run's processes: ``{process: colour}``.

    Every figure that draws processes (results, report, new-run preview, training history)
    takes its colours from here, so a process has one colour on every page. Colours go by
    role and position, not by name: signals (in the order of ``signals``) take the strong
    colours, the other processes (in the order of ``processes``) the muted ones. A process
    named in ``signals`` but missing from ``processes`` still gets its signal colour.
    """
    signals = list(dict.fromkeys(signals or ()))
    colours = {name: SIGNAL_COLOURS[i % len(SIGNAL_COLOURS)] for i, name in enumerate(signals)}
    backgrounds = [p for p in dict.fromkeys(processes or ()) if p not in colours]
    for i, name in enumerate(backgrounds):
        colours[name] = BACKGROUND_COLOURS[i % len(BACKGROUND_COLOURS)]
    return colours


#: Outside-the-simplex cells: drawn fully transparent (value 0 in the display grid).
OUTSIDE_COLOUR = "rgba(0,0,0,0)"


def category_colour(display_index: int) -> str:
    """Colour of displayed category ``display_index`` (0-based)."""
    return CATEGORY_COLOURS[display_index % len(CATEGORY_COLOURS)]


def category_colourscale(n_categories: int) -> list:
    """Colourscale for z in [0, K] (use zmin=-0.5, zmax=K+0.5): one flat band per integer
    value, 0 (outside the simplex) transparent."""
    colours = [OUTSIDE_COLOUR] + [category_colour(k) for k in range(n_categories)]
    bands = len(colours)
    scale = []
    for i, colour in enumerate(colours):
        scale.append([i / bands, colour])
        scale.append([(i + 1) / bands, colour])
    return scale


#: One colour per compared run (at most six), distinguishable for common colour blindness.
RUN_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9")


def run_colour(index: int) -> str:
    """Colour of the ``index``-th compared run."""
    return RUN_COLOURS[index % len(RUN_COLOURS)]
