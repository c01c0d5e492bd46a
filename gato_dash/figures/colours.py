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


#: Process colours that stay the same in every figure (backgrounds muted, signals strong):
#: the results figures, the report, the new-run preview and the training histories.
PROCESS_COLOURS = {
    "bkg1": "#9ecae1",
    "bkg2": "#a1d99b",
    "bkg3": "#fdd0a2",
    "bkg4": "#dadaeb",
    "bkg5": "#fcbba1",
    "signal": "#d62728",
    "signal1": "#d62728",
    "signal2": "#1f3fbf",
}
#: Processes without a colour of their own (a new scenario) take these by position.
_FALLBACK_PROCESS_COLOURS = plotly.colors.qualitative.Pastel


#: Outside-the-simplex cells: drawn fully transparent (value 0 in the display grid).
OUTSIDE_COLOUR = "rgba(0,0,0,0)"


def category_colour(display_index: int) -> str:
    """Colour of displayed category ``display_index`` (0-based)."""
    return CATEGORY_COLOURS[display_index % len(CATEGORY_COLOURS)]


def process_colour(name: str, position: int = 0) -> str:
    """Colour of process (or signal) ``name``; ``position`` picks a fallback colour for a
    process that has none of its own."""
    return PROCESS_COLOURS.get(
        name, _FALLBACK_PROCESS_COLOURS[position % len(_FALLBACK_PROCESS_COLOURS)]
    )


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
