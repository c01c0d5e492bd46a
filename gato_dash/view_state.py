"""A page's view (tab, category count, switches) kept in its URL, so that a link reproduces it.

A page describes its view as a dataclass whose fields are made with ``view_field``: the
field's key in the query string and what kind of value the page's controls can give it.
``parse`` reads a link back into that dataclass, checking every value as the controls
would have set it (a link is untrusted input): a value that cannot be meant is ignored,
and named in a message the page shows. ``query`` writes what differs from the page's
default view, so a plain link keeps meaning the default view and stays short.

The browser keeps the query in its address bar (gato_dash.address_bar). No Dash import.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Iterable, TypeVar

View = TypeVar("View")

#: Kinds of values: one of fixed words, a 1/0 switch, a trained category count, a number in
#: a closed range.
KINDS = ("choice", "flag", "k", "number")


def view_field(key: str, default, kind: str, allowed: Iterable = ()):
    """A view dataclass field: ``key`` in the URL; ``allowed`` the words of a "choice" or
    the (low, high) of a "number"."""
    if kind not in KINDS:
        raise ValueError(f"unknown view field kind {kind!r}")
    return dataclasses.field(default=default,
                             metadata={"key": key, "kind": kind, "allowed": tuple(allowed)})


def _last(raw):
    if isinstance(raw, (list, tuple)):  # a key given twice counts by its last value
        raw = raw[-1] if raw else None
    return None if raw is None else str(raw)


def _read(kind: str, raw: str, allowed: tuple, ks: list[int]):
    """(value, None) or (None, why it cannot be meant)."""
    if kind == "choice":
        return (raw, None) if raw in allowed else (None, "expected one of " + ", ".join(allowed))
    if kind == "flag":
        flag = {"1": True, "true": True, "yes": True,
                "0": False, "false": False, "no": False}.get(raw.strip().lower())
        return (flag, None) if flag is not None else (None, "expected 1 or 0")
    if kind == "k":
        try:
            k = int(raw)
        except ValueError:
            k = None
        if k in ks:
            return k, None
        return None, "the trained category counts are K = " + (
            ", ".join(str(k) for k in ks) or "none")
    low, high = allowed
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if low <= number <= high:
        return number, None
    return None, f"expected a number from {low:g} to {high:g}"


def parse(defaults: View, query: dict, ks: Iterable[int] = ()) -> tuple[View, list[str]]:
    """The view a link's query asks for, and one message per value that was ignored.

    ``defaults``: the page's default view; ``ks``: the category counts the page's runs
    trained (the values a "k" field may take). Keys the view does not know are left alone
    (Dash Pages hands every query value to the layout).
    """
    ks = sorted({int(k) for k in ks})
    values, problems = {}, []
    for spec in dataclasses.fields(defaults):
        key, kind, allowed = spec.metadata["key"], spec.metadata["kind"], spec.metadata["allowed"]
        raw = _last(query.get(key))
        if raw is None:
            continue
        value, why = _read(kind, raw, allowed, ks)
        if why is None:
            values[spec.name] = value
        else:
            problems.append(ignored(key, raw, why))
    return dataclasses.replace(defaults, **values), problems


def ignored(key: str, raw: str, why: str) -> str:
    """The message for a link value that was not used (the value cut short: it is
    whatever the link carried)."""
    shown = raw if len(raw) <= 20 else raw[:20] + "…"
    return f"ignored {key}={shown!r} in the link: {why}"


def query(view, defaults) -> str:
    """``key=value`` pairs joined by "&" for every field that differs from ``defaults``
    (values are words, integers and numbers: nothing needs escaping)."""
    parts = []
    for spec in dataclasses.fields(view):
        value = getattr(view, spec.name)
        if value is None or value == getattr(defaults, spec.name):
            continue
        if isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, float):
            text = f"{value:g}"
        else:
            text = str(value)
        parts.append(f"{spec.metadata['key']}={text}")
    return "&".join(parts)


def from_controls(defaults: View, values: dict, ks: Iterable[int] = ()) -> View:
    """The view a page's controls show now (``values`` keyed as in the URL), checked like a
    link: a value the controls cannot give (a tampered request) is left at its default."""
    asked = {key: int(value) if isinstance(value, bool) else value
             for key, value in values.items() if value is not None}
    return parse(defaults, asked, ks)[0]
