"""gato_dash.view_state: a page's view read from a link (checked like any untrusted input)
and written back, only where it differs from the default view."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from gato_dash import view_state as vs
from gato_dash.view_state import view_field


@dataclass
class View:
    tab: str = view_field("tab", "a", "choice", ("a", "b"))
    shown: bool = view_field("show", True, "flag")
    k: int | None = view_field("k", None, "k")
    weight: float = view_field("w", 0.0, "number", (0.0, 0.5))


def test_round_trip_writes_only_what_differs():
    defaults = View(k=8)
    view = View(tab="b", shown=False, k=5, weight=0.25)
    text = vs.query(view, defaults)
    assert text == "tab=b&show=0&k=5&w=0.25"  # a switch on by default is written as 0
    parsed, problems = vs.parse(defaults, dict(p.split("=") for p in text.split("&")), [5, 8])
    assert (parsed, problems) == (view, [])
    assert vs.query(defaults, defaults) == ""


@pytest.mark.parametrize("key, raw, why", [
    ("tab", "c", "expected one of a, b"),
    ("show", "maybe", "expected 1 or 0"),
    ("k", "6", "the trained category counts are K = 5, 8"),
    ("k", "five", "the trained category counts are K = 5, 8"),
    ("w", "0.51", "expected a number from 0 to 0.5"),
    ("w", "-0.1", "expected a number from 0 to 0.5"),
    ("w", "nan", "expected a number from 0 to 0.5"),
])
def test_values_the_controls_cannot_give_are_ignored_and_named(key, raw, why):
    parsed, problems = vs.parse(View(k=8), {key: raw, "other": "left alone"}, [8, 5])
    assert parsed == View(k=8)
    assert problems == [f"ignored {key}={raw!r} in the link: {why}"]


def test_a_repeated_key_counts_by_its_last_value_and_long_values_are_cut():
    assert vs.parse(View(), {"tab": ["b", "a"]})[0].tab == "a"
    _, problems = vs.parse(View(), {"tab": "x" * 1000})
    assert problems == ["ignored tab='" + "x" * 20 + "…' in the link: expected one of a, b"]


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown view field kind"):
        view_field("z", 0, "colour")


def test_controls_are_checked_like_a_link():
    """What the browser sends for the controls goes through the same checks (a tampered
    callback request cannot put anything into the address)."""
    defaults = View(k=8)
    assert vs.from_controls(defaults, {"tab": "b", "show": False, "k": 5, "w": 0.5},
                            [5, 8]) == View(tab="b", shown=False, k=5, weight=0.5)
    assert vs.from_controls(defaults, {"tab": "<script>", "show": None, "k": 99, "w": 7},
                            [5, 8]) == defaults
