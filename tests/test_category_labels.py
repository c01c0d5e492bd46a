"""1-D categories are numbered left to right everywhere (issue #22 item 5): the category
table's "component" is the model component that wins each interval, and the components
figure names a component by the categories it wins, through one gato_core mapping."""
from __future__ import annotations

import numpy as np
import pytest

from gato_core import geometry
from gato_core.evaluation import component_categories, evaluate, segment_components
from gato_core.scenarios import generate

#: component k sits at POSITIONS[k]: left to right the intervals go to components 0, 3, 4, 1, 2
POSITIONS = [0.1, 0.7, 0.9, 0.3, 0.5]
LEFT_TO_RIGHT = [0, 3, 4, 1, 2]


def shuffled_parameters():
    k = len(POSITIONS)
    return {"model": "gmm", "n_cats": k, "dim": 1, "mean_mode": "sigmoid",
            "mean_range": [0.0, 1.0], "sigma_base": geometry.sigma_base(1, k),
            "damping": geometry.OFFDIAG_DAMPING, "logits": [0.0] * k,
            "raw_means": geometry.raw_means_for(np.array(POSITIONS)[:, None], "sigmoid").tolist(),
            "raw_scale": np.zeros((k, 1, 1)).tolist()}


def test_segments_are_won_by_the_components_in_position_order():
    parameters = shuffled_parameters()
    events = generate("one_d", 2000, 6000, seed=4)
    evaluated = evaluate(parameters, events)
    assert segment_components(parameters, evaluated["boundaries"]) == LEFT_TO_RIGHT
    cats = evaluated["categories"]
    assert [c["index"] for c in cats] == [0, 1, 2, 3, 4]
    assert [c["component"] for c in cats] == LEFT_TO_RIGHT  # not 0..4 in order
    ranges = [c["range"] for c in cats]
    assert all(lo < hi for lo, hi in ranges) and ranges == sorted(ranges)
    # each category's range holds the mean of the component that wins it
    for cat in cats:
        lo, hi = cat["range"]
        assert lo < POSITIONS[cat["component"]] < hi
    result = {"n_cats": 5, "parameters": parameters, "boundaries": evaluated["boundaries"],
              "order": evaluated["order"], "categories": cats}
    assert component_categories(result) == {0: [0], 3: [1], 4: [2], 1: [3], 2: [4]}


def test_components_figure_names_each_component_by_the_category_it_wins():
    from gato_dash.figures.categories import gaussian_components_1d

    parameters = shuffled_parameters()
    events = generate("one_d", 2000, 6000, seed=4)
    evaluated = evaluate(parameters, events)
    result = {"n_cats": 5, "parameters": parameters, "boundaries": evaluated["boundaries"],
              "order": evaluated["order"], "categories": evaluated["categories"],
              "components": evaluated["components"]}
    fig = gaussian_components_1d(result, points=2001)
    named = {trace.name: trace for trace in fig.data if trace.name != "sum"}
    assert list(named) == ["Cat 1", "Cat 2", "Cat 3", "Cat 4", "Cat 5"]  # legend in order
    for display, component in enumerate(LEFT_TO_RIGHT):
        trace = named[f"Cat {display + 1}"]
        peak = trace.x[int(np.argmax(trace.y))]
        assert peak == pytest.approx(POSITIONS[component], abs=2e-3)
