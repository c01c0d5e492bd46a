"""What the run store writes and reads back: the engine's records as JSON text, and a
stored run row as the run dict pages read.

Records are written with orjson: numpy scalars and arrays (they come from the engine now
and then) are written as numbers and lists, tuples as lists, keys as strings; a number
that is not finite (NaN, inf: JSON has none) is written as null and comes back as None.
A record that cannot be read back is damaged: ``decoded`` raises DamagedRecord naming
it, and a run row with a damaged column comes back as a run with status DAMAGED, so one
bad row never hides the others.
"""
from __future__ import annotations

import json

import orjson

from .run_fields import DAMAGED

_WRITE_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class DamagedRecord(ValueError):
    """A stored record that is not valid JSON; the message names the run and the record."""


def dumps(obj) -> str:
    """``obj`` as the JSON text the store keeps."""
    return orjson.dumps(obj, default=_numpy_fallback, option=_WRITE_OPTIONS).decode()


def _numpy_fallback(obj):
    # orjson writes C-contiguous arrays of the common dtypes itself and hands the others
    # (a strided view, float16) here
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot store {type(obj).__name__}")


def as_stored(record: dict) -> dict:
    """``record`` as the store hands it back (numpy to lists, tuples to lists, JSON keys)."""
    return orjson.loads(dumps(record))


def decoded(text, what: str, kind: type):
    """``text`` read back as JSON of ``kind``, or DamagedRecord naming ``what``.

    Read with the standard library: a record stored by an older version may hold NaN,
    which it reads and orjson refuses."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raise DamagedRecord(f"{what} is not valid JSON") from None
    if not isinstance(value, kind):
        raise DamagedRecord(f"{what} is not a JSON {'object' if kind is dict else 'list'}")
    return value


def json_value(value):
    """A field the database's JSON functions picked out of a record: SQLite gives objects
    as JSON text, PostgreSQL already parsed."""
    return json.loads(value) if isinstance(value, str) else value


def run_dict(row, heavy: bool) -> dict:
    """The run dict of a ``runs`` row (``heavy``: with its run_info). A row whose JSON
    cannot be read is a run with status DAMAGED and a message saying which column."""
    problems = []

    def column(name: str, kind: type, empty):
        text = row[name]
        if not text:
            return empty
        try:
            return decoded(text, f"the stored {name}", kind)
        except DamagedRecord as exc:
            problems.append(str(exc))
            return empty

    config = column("config", dict, {})
    tags = column("tags", list, [])
    run_info = column("run_info", dict, None) if heavy else None
    n_cats = config.get("n_cats")
    out = {
        "id": row["id"],
        "name": row["name"],
        "note": row["note"],
        "tags": tags,
        "scenario": row["scenario"],
        "status": row["status"],
        "message": row["message"],
        "config": config,
        "n_cats": list(n_cats) if isinstance(n_cats, list) else [],
        "created": row["created"],
        "started": row["started"],
        "finished": row["finished"],
        "heartbeat": row["heartbeat"],
        "current_k": row["current_k"],
        "epochs_done": row["epochs_done"],
        "k_elapsed": row["k_elapsed"],
        "cancel_requested": bool(row["cancel_requested"]),
    }
    if heavy:
        out["run_info"] = run_info
    if problems:
        out["status"] = DAMAGED
        out["message"] = f"damaged: {'; '.join(problems)}; delete it, or restore the store " \
                         "from a backup"
    return out
