"""Read event tables from CSV, Parquet and ROOT TTree files into numpy columns.

Only numbers are read: a column holding text is refused unless it is the process label.
Nothing is ever unpickled (no pandas pickles, no ``allow_pickle``). ROOT files are read
with ``uproot``; only flat numeric branches qualify, a jagged branch is named and refused.

``inspect_sources`` returns the mapping step's preview (first rows, per-column dtype,
min, max, NaN/inf counts) as plain data, reading a file piece by piece.
"""
from __future__ import annotations

import math
import os
import re
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Files larger than this are refused before reading (callers may pass their own limit).
DEFAULT_MAX_FILE_BYTES = 4 * 1024 ** 3
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".root": "root"}
PREVIEW_ROWS = 10
#: what inspecting a file holds at once, not the whole file: a ROOT batch of this many
#: entries, a CSV block of this many bytes, one Parquet row group (its writer chose it)
INSPECT_BATCH_ROWS = 1 << 20
INSPECT_CSV_BLOCK_BYTES = 32 << 20
#: Most rows (events) the files of one import may hold, as declared by their metadata and
#: checked before anything is decoded. It is gato_core.datasets.MAX_DATASET_EVENTS: a
#: dataset holds no more events than training has memory for (~330 bytes per event), so a
#: file declaring more could never be imported anyway. Parquet and ROOT compress a constant
#: column to almost nothing: 0.9 MB on disk can declare 100 M rows, which decoded to
#: 1.9 GB of memory (7.8 GB with more columns) before this check existed.
MAX_ROWS = 20_000_000
#: Most bytes one piece of an inspection may decode at once: the rows of one Parquet row
#: group times the widths of the columns read (from the metadata). Inspection runs in the
#: web process, which must stay small whatever a file's writer chose for its row groups.
INSPECT_MAX_PIECE_BYTES = 1 << 30
#: Decoded bytes per row assumed for a text column (offsets plus a short process name).
TEXT_BYTES_PER_ROW = 16
#: Most distinct values a process column may hold. Each process becomes a legend entry, a
#: yield in every result and an entry of the dataset's manifest, and the stored process
#: index is int16; analyses have a few to a few dozen. A column with more (an event number
#: picked by mistake, or a crafted file with 2 M labels) is refused with a message. Values
#: are counted by hashing (Arrow, numpy), never by searching a list, so the count is linear.
MAX_PROCESSES = 1000


class DatasetError(ValueError):
    """Bad input for a dataset; ``problems`` maps a field or column -> message."""

    def __init__(self, problems: dict[str, str] | str):
        if isinstance(problems, str):
            problems = {"data": problems}
        self.problems = dict(problems)
        super().__init__("; ".join(self.problems.values()))


@dataclass(frozen=True)
class Source:
    """One input: a file, optionally one TTree of it, optionally its process name.

    Without a process column each source (or each tree of a ROOT file) is one process,
    named ``process`` or else after the tree or the file stem.
    """

    path: str
    tree: str | None = None
    process: str | None = None

    @property
    def format(self) -> str:
        suffix = Path(self.path).suffix.lower()
        if suffix not in FORMATS:
            raise DatasetError({"format": f"{self.label}: unknown file type {suffix or '(none)'!r}; "
                                          f"use .csv, .parquet or .root"})
        return FORMATS[suffix]

    @property
    def label(self) -> str:
        name = Path(self.path).name
        return f"{name}:{self.tree}" if self.tree else name


def as_source(source) -> Source:
    """``source`` as a Source: one already is, a text (path[:process]) is parsed."""
    return source if isinstance(source, Source) else parse_source(source)


def parse_source(text: str, process: str | None = None) -> Source:
    """``file.root:tree`` names one tree of a ROOT file; any other text is a path."""
    path, sep, tree = str(text).rpartition(":")
    if sep and path.lower().endswith(".root") and tree and "/" not in tree:
        return Source(path, tree, process)
    return Source(str(text), None, process)


@dataclass
class Table:
    """Columns read from one source (one tree, for ROOT).

    ``columns`` holds numeric numpy arrays; the process label, if read, is ``labels``
    (codes into ``label_names``).
    """

    source: Source
    process: str  # default process name of this table (tree name or file stem)
    n_rows: int
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)  # every column of the file
    labels: np.ndarray | None = None
    label_names: list[str] | None = None
    #: columns read for an import, as the file's chunks (row groups): zero-copy views that
    #: the import copies once, straight into its final arrays
    chunks: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def take(self, name: str) -> list[np.ndarray]:
        """The pieces of column ``name`` in row order, released from this table."""
        if name in self.chunks:
            return self.chunks.pop(name)
        return [self.columns.pop(name)]

    @property
    def label(self) -> str:
        if self.source.format == "root" and not self.source.tree:
            return f"{Path(self.source.path).name}:{self.process}"
        return self.source.label


# ----- reading ---------------------------------------------------------------------------
def check_size(source: Source, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> int:
    """The file's size, once it is known to be a regular file this process may read (a
    FIFO or a device would block or never end), or DatasetError saying which it is not."""
    try:
        info = os.stat(source.path)
        if stat.S_ISDIR(info.st_mode):
            raise DatasetError({"file": f"{source.label} is a folder, not a file"})
        if not stat.S_ISREG(info.st_mode):
            raise DatasetError({"file": f"{source.label} is not a regular file (a device, a "
                                        f"pipe or a socket)"})
        with open(source.path, "rb"):
            pass
        size = info.st_size
    except OSError as err:
        raise DatasetError({"file": f"{source.label}: cannot open the file "
                                    f"({err.strerror or type(err).__name__})"}) from None
    if size > max_bytes:
        raise DatasetError({"file": f"{source.label} is {size / 1e6:,.1f} MB, over the limit of "
                                    f"{max_bytes / 1e6:,.1f} MB"})
    return size


def check_rows(label: str, n_rows: int, max_rows: int) -> None:
    """Refuse a table whose metadata declares more than ``max_rows`` rows (see MAX_ROWS)."""
    if n_rows > max_rows:
        raise DatasetError({"data": f"{label} declares {n_rows:,} rows, more than the limit of "
                                    f"{max_rows:,} events (training needs memory in proportion "
                                    f"to events); nothing of it was decoded"})


def read_source(source: Source, columns, label_column: str | None = None,
                max_bytes: int = DEFAULT_MAX_FILE_BYTES, max_rows: int = MAX_ROWS) -> list[Table]:
    """Read the numeric ``columns`` and the optional text/integer ``label_column`` of one
    source. ROOT files without a tree name give one Table per TTree. A Parquet or ROOT
    source (all its trees together) declaring more than ``max_rows`` rows is refused from
    its metadata, before any column is decoded.
    """
    check_size(source, max_bytes)
    fmt = source.format
    if fmt == "root":
        return _read_root(source, columns, label_column, max_rows)
    return [_read_arrow(source, fmt, columns, label_column, max_rows)]


def _default_process(source: Source) -> str:
    return source.process or source.tree or Path(source.path).stem


def _is_numeric(arrow_type) -> bool:
    import pyarrow as pa

    return (pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
            or pa.types.is_boolean(arrow_type) or pa.types.is_null(arrow_type))


def _arrow_schema(source: Source, fmt: str):
    """The columns and types of a Parquet or CSV file (for a CSV the header and a first
    block fix the types), or DatasetError when the file cannot be read as ``fmt``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import csv as pa_csv

    try:
        if fmt == "parquet":
            return pq.read_schema(source.path)
        with pa_csv.open_csv(source.path) as reader:
            return reader.schema
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DatasetError({"file": f"{source.label} could not be read as {fmt.upper()} "
                                    f"(truncated or corrupted?): {_short(err)}"}) from None


def check_csv_rows(source: Source, n_columns: int, max_rows: int,
                   block_bytes: int = 16 << 20) -> None:
    """Refuse a CSV file with more than ``max_rows`` rows before parsing it.

    A CSV file has no row count: its line breaks are counted instead, a pass at disk speed
    without parsing, and only when the file is large enough to hold that many rows (each
    row takes at least one byte per column: separators and the line break). A line break
    inside a quoted field counts as a row too, so this errs on the side of refusing.
    """
    if os.path.getsize(source.path) <= (max_rows + 1) * max(n_columns, 1):
        return
    breaks = {b"\n": 0, b"\r": 0}  # a file may end its lines with \n, \r\n or \r
    last = b"\n"
    with open(source.path, "rb") as handle:
        while block := handle.read(block_bytes):
            for mark in breaks:
                breaks[mark] += block.count(mark)
            last = block[-1:]
            rows = max(breaks.values()) - 1  # the header line
            if rows > max_rows:
                break
    rows = max(breaks.values()) - 1 + (last not in breaks)
    if rows > max_rows:
        raise DatasetError({"data": f"{source.label} has more than {max_rows:,} rows (line "
                                    f"breaks counted), the limit of events (training needs "
                                    f"memory in proportion to events); nothing of it was "
                                    f"decoded"})


def _parquet_metadata(source: Source):
    """The footer of a Parquet file (row counts, row groups), or DatasetError."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(source.path)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DatasetError({"file": f"{source.label} could not be read as PARQUET "
                                    f"(truncated or corrupted?): {_short(err)}"}) from None


def _decoded_bytes_per_row(schema, names) -> int:
    """What one row of the columns ``names`` takes once decoded (an estimate for text)."""
    import pyarrow as pa

    total = 0
    for name in names:
        kind = schema.field(name).type
        if pa.types.is_dictionary(kind):
            kind = kind.index_type  # dictionary-encoded text: codes plus a few names
        try:
            total += max(kind.bit_width // 8, 1)
        except ValueError:  # text and other variable-width types
            total += TEXT_BYTES_PER_ROW
    return total


def _read_arrow(source: Source, fmt: str, columns, label_column,
                max_rows: int = MAX_ROWS) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import csv as pa_csv

    label = source.label
    schema = _arrow_schema(source, fmt)
    if fmt == "parquet":
        check_rows(label, _parquet_metadata(source).num_rows, max_rows)
    else:
        check_csv_rows(source, len(schema.names), max_rows)
    names = list(schema.names)
    _check_columns(label, names, columns, label_column)
    wanted = list(columns)
    if label_column is not None and label_column not in wanted:
        wanted.append(label_column)
    for name in wanted:
        if name != label_column and not _is_numeric(schema.field(name).type):
            raise DatasetError({name: f"{label}: column {name!r} holds {schema.field(name).type}, "
                                      f"not numbers (only the process column may hold text)"})
    try:
        if fmt == "parquet":
            table = pq.read_table(source.path, columns=wanted,
                                  read_dictionary=[label_column] if label_column else None)
        else:
            table = pa_csv.read_csv(source.path, convert_options=pa_csv.ConvertOptions(
                include_columns=wanted))
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DatasetError({"file": f"{label} could not be read as {fmt.upper()} "
                                    f"(truncated or corrupted?): {_short(err)}"}) from None
    if fmt == "csv":  # the types of the whole file, not only of its first block
        for name in wanted:
            if name != label_column and not _is_numeric(table.schema.field(name).type):
                raise DatasetError({name: f"{label}: column {name!r} holds "
                                          f"{table.schema.field(name).type}, not numbers "
                                          f"(only the process column may hold text)"})
    out = Table(source, _default_process(source), table.num_rows,
                dtypes={n: str(schema.field(n).type) for n in names})
    for name in wanted:
        column = table.column(name)
        if name == label_column:
            out.labels, out.label_names = _labels_from_arrow(column)
        else:
            out.chunks[name] = _numeric_chunks(column)
    return out


def _numeric_from_arrow(column) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.null_count:
        # empty cells and NaN spellings are nulls for Arrow: they count as NaN here
        column = pc.cast(column, pa.float64())
    if pa.types.is_boolean(column.type):
        return column.to_numpy()
    if column.num_chunks == 1:
        return column.chunk(0).to_numpy(zero_copy_only=False)
    # one allocation, filled chunk by chunk from zero-copy views
    out = np.empty(len(column), column.type.to_pandas_dtype())
    start = 0
    for chunk in column.chunks:
        out[start:start + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
        start += len(chunk)
    return out


def _numeric_chunks(column) -> list[np.ndarray]:
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.null_count:
        column = pc.cast(column, pa.float64())  # nulls (empty cells, NaN spellings) -> NaN
    if pa.types.is_boolean(column.type):
        return [column.to_numpy()]
    return [chunk.to_numpy(zero_copy_only=False) for chunk in column.chunks]


def _labels_from_arrow(column):
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.null_count:
        raise DatasetError({"process": f"the process column has {column.null_count:,} empty entries"})
    if _is_numeric(column.type):
        values = column.to_numpy()
        return _labels_from_numbers(values)
    if not (pa.types.is_dictionary(column.type) or pa.types.is_string(column.type)
            or pa.types.is_large_string(column.type)):
        raise DatasetError({"process": f"the process column holds {column.type}; "
                                       f"use text or whole numbers"})
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    column = column.unify_dictionaries() if hasattr(column, "unify_dictionaries") else column
    chunks = column.chunks
    check_process_count(len(chunks[0].dictionary) if chunks else 0)
    names = [str(x) for x in chunks[0].dictionary.to_pylist()] if chunks else []
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks]) \
        if chunks else np.zeros(0, np.int32)
    return codes.astype(np.int32, copy=False), names


def _labels_from_numbers(values: np.ndarray):
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise DatasetError({"process": "a numeric process column must hold whole numbers"})
        values = values.astype(np.int64)
    unique, codes = np.unique(values, return_inverse=True)
    check_process_count(len(unique))
    return codes.astype(np.int32), [str(int(u)) for u in unique]


def check_process_count(n_distinct: int, what: str = "the process column holds") -> None:
    """Refuse more than MAX_PROCESSES distinct process labels."""
    if n_distinct > MAX_PROCESSES:
        raise DatasetError({"process": f"{what} {n_distinct:,} distinct values, more "
                                       f"than the {MAX_PROCESSES:,} processes a dataset may "
                                       f"have; is it the right column (not an event number)?"})


@contextmanager
def _open_trees(source: Source):
    """The TTrees of a ROOT source (or its one named tree) as (name, tree, label), open."""
    import uproot

    path = source.path
    try:
        handle = uproot.open(path)
    except Exception as err:  # uproot raises many types for damaged files
        raise DatasetError({"file": f"{source.label} is not a readable ROOT file "
                                    f"(truncated or corrupted?): {_short(err)}"}) from None
    with handle:
        try:
            trees = handle.keys(filter_classname="TTree", cycle=False, recursive=True)
        except Exception as err:
            raise DatasetError({"file": f"{source.label} is not a readable ROOT file "
                                        f"(truncated or corrupted?): {_short(err)}"}) from None
        if source.tree:
            if source.tree not in trees:
                raise DatasetError({"tree": f"{Path(path).name} has no TTree {source.tree!r} "
                                            f"(it has: {', '.join(trees) or 'none'})"})
            trees = [source.tree]
        elif not trees:
            found = ", ".join(handle.keys(cycle=False)) or "nothing"
            raise DatasetError({"tree": f"{Path(path).name} holds no TTree (found: {found}); "
                                        f"RNTuples are not supported"})
        opened = []
        for name in trees:
            label = f"{Path(path).name}:{name}"
            try:  # the tree's header is read here: a truncated file fails at this point
                opened.append((name, handle[name], label))
            except Exception as err:  # uproot raises many types (OSError, ValueError, ...)
                raise DatasetError({"file": f"{label} could not be read (truncated or "
                                            f"corrupted?): {_short(err)}"}) from None
        yield opened


def _read_root(source: Source, columns, label_column, max_rows: int = MAX_ROWS) -> list[Table]:
    with _open_trees(source) as trees:
        # entry counts are in the trees' headers: checked for all trees before any basket
        # is decompressed
        check_rows(source.label, sum(int(tree.num_entries) for _, tree, _ in trees), max_rows)
        return [_read_tree(source, tree, name, label, columns, label_column)
                for name, tree, label in trees]


def _tree_process(source: Source, name: str) -> str:
    return source.process or (name if not source.tree else _default_process(source))


def _branch_types(tree) -> tuple[dict[str, str], list[str]]:
    """Every branch's type name, and the flat numeric branches (one number per event)."""
    import uproot

    dtypes, flat = {}, []
    for branch in tree.keys():
        interpretation = tree[branch].interpretation
        if isinstance(interpretation, uproot.AsDtype) and interpretation.to_dtype.shape == ():
            dtypes[branch] = str(interpretation.to_dtype)
            flat.append(branch)
        else:
            dtypes[branch] = tree[branch].typename or "unreadable"
    return dtypes, flat


def _read_tree(source: Source, tree, name: str, label: str, columns, label_column) -> Table:
    branches = list(tree.keys())
    _check_columns(label, branches, columns, label_column)
    dtypes, flat = _branch_types(tree)
    wanted = list(columns)
    if label_column is not None and label_column not in wanted:
        wanted.append(label_column)
    for branch in wanted:
        if branch not in flat:
            kind = "jagged (a variable-length list per event)" if "[]" in dtypes[branch] or \
                "vector" in dtypes[branch] else f"of type {dtypes[branch]}"
            raise DatasetError({branch: f"{label}: branch {branch!r} is {kind}; only flat numeric "
                                        f"branches (one number per event) can be used"})
    try:
        arrays = tree.arrays(wanted, library="np") if wanted else {}
    except Exception as err:
        raise DatasetError({"file": f"{label} could not be read (truncated or corrupted?): "
                                    f"{_short(err)}"}) from None
    out = Table(source, _tree_process(source, name), int(tree.num_entries), dtypes=dtypes)
    for branch in wanted:
        values = np.asarray(arrays[branch])
        if branch == label_column:
            out.labels, out.label_names = _labels_from_numbers(values)
        else:
            out.columns[branch] = values
    return out


def _check_columns(label, names, columns, label_column):
    missing = [c for c in list(columns or []) + ([label_column] if label_column else [])
               if c not in names]
    if missing:
        # A header of names is listed; a "header" that is a line of some other file (a
        # server path read as CSV) is not echoed: it may be a secret
        listed = (f"it has: {', '.join(names)}" if all(_PLAIN_NAME.match(str(n)) for n in names)
                  else f"it has {len(names)} column{'s' if len(names) != 1 else ''}, none "
                       "with a plain name: is it an event table?")
        raise DatasetError({missing[0]: f"{label}: no column {missing[0]!r} ({listed})"})


#: a column name as event tables have them (listed in messages)
_PLAIN_NAME = re.compile(r"^[\w .\-\[\]()/+*]{1,64}$")
#: the parts of the readers' error messages that describe the problem, never the data:
#: Arrow's CSV errors go on to quote the offending line or value, which could be anything
#: in a file read by a server path (a password file, say)
_SAFE_PROBLEMS = (
    re.compile(r"^CSV parse error: Expected \d+ columns?, got \d+"),
    re.compile(r"^(In CSV column #\d+: )?(Row #\d+: )?CSV conversion error to [\w\[\], ]+?"
               r"(?=:|$)"),
)


def _short(err) -> str:
    """What went wrong reading a file, without quoting the file: a known message's
    description, else the text before the first ": " or quote (where libraries start
    quoting data or paths)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    for pattern in _SAFE_PROBLEMS:
        match = pattern.match(text)
        if match:
            return match.group(0)
    text = re.split(r": |['\"`]", text, maxsplit=1)[0].strip().rstrip(":,")
    return text[:200] or type(err).__name__


# ----- preview for the mapping step -------------------------------------------------------
def inspect_sources(sources, n_rows: int = PREVIEW_ROWS,
                    max_bytes: int = DEFAULT_MAX_FILE_BYTES, max_rows: int = MAX_ROWS) -> list[dict]:
    """What the mapping step shows, per table: row count, the first ``n_rows`` rows, and per
    column its dtype, min, max and NaN/inf counts. Plain JSON-safe data.

    Text columns (process label candidates) are listed with their distinct values. Files
    are read piece by piece (Parquet row groups, CSV blocks, ROOT batches), so memory stays
    at one piece whatever the file's size (the web process inspects uploads of several GB).
    A Parquet or ROOT file declaring more than ``max_rows`` rows, or a Parquet row group
    that would decode to more than INSPECT_MAX_PIECE_BYTES, is refused from its metadata.
    """
    out = []
    for source in sources:
        source = as_source(source)
        check_size(source, max_bytes)
        if source.format == "root":
            out += _inspect_root(source, n_rows, max_rows)
        else:
            out.append(_inspect_arrow(source, n_rows, max_rows))
    return out


class _RunningStats:
    """Min and max of the finite values, NaN and inf counts of one column, batch by batch."""

    def __init__(self):
        self.low = self.high = None
        self.nan = self.inf = 0

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values)
        if values.dtype.kind == "f":
            finite = np.isfinite(values)
            n_nan = int(np.isnan(values).sum())
            n_inf = int(values.size - finite.sum() - n_nan)
            self.nan, self.inf = self.nan + n_nan, self.inf + n_inf
            if n_nan or n_inf:
                values = values[finite]
        if values.size:
            low, high = values.min(), values.max()
            self.low = low if self.low is None else min(self.low, low)
            self.high = high if self.high is None else max(self.high, high)

    def describe(self, name: str, dtype: str) -> dict:
        return {"name": name, "dtype": dtype, "kind": "number",
                "min": None if self.low is None else _plain(self.low),
                "max": None if self.high is None else _plain(self.high),
                "nan": self.nan, "inf": self.inf}


def _inspected(label: str, process: str, dtypes: dict, numeric: list, text: list,
               batches) -> dict:
    """One table's preview from ``batches``: per batch ({numeric name: array}, {text name:
    [(value, count), ...]}, [the batch's first rows], its row count)."""
    stats = {name: _RunningStats() for name in numeric}
    counts = {name: {} for name in text}  # value -> count, in order of first appearance
    too_many = set()  # text columns with more than MAX_PROCESSES distinct values
    rows, total = [], 0
    for numbers, texts, head, size in batches:
        for name, values in numbers.items():
            stats[name].add(values)
        for name, counted in texts.items():
            if name in too_many:
                continue
            if counted is None:  # this batch alone has too many
                too_many.add(name)
                continue
            seen = counts[name]
            for value, count in counted:
                seen[value] = seen.get(value, 0) + count
            if len(seen) > MAX_PROCESSES:
                too_many.add(name)
        rows = rows or head  # the first batch holds the preview
        total += size
    described = []
    for name, dtype in dtypes.items():
        if name in stats:
            described.append(stats[name].describe(name, dtype))
        elif name in counts:
            # counts of a column with too many values stop early: a part of the file
            described.append({"name": name, "dtype": dtype, "kind": "text",
                              "values": list(counts[name])[:50],
                              "counts": list(counts[name].values())[:50],
                              "too_many_values": name in too_many})
        else:
            described.append({"name": name, "dtype": dtype, "kind": "other"})
    return {"source": label, "process": process, "n_rows": total, "columns": described,
            "preview": {"columns": numeric + text, "rows": rows}}


def _arrow_batch(batch, numeric: list, text: list, n_rows: int):
    """One Arrow record batch (or table) as _inspected reads it; a text column's counts are
    None when the batch alone has more than MAX_PROCESSES distinct values (counted by
    Arrow: no Python object per value)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def chunked(column):
        return pa.chunked_array([column]) if isinstance(column, pa.Array) else column

    def counted(column):
        counts = pc.value_counts(column.drop_null())
        if len(counts) > MAX_PROCESSES:
            return None
        return [(str(item["values"]), item["counts"]) for item in counts.to_pylist()]

    numbers = {name: _numeric_from_arrow(chunked(batch.column(name))) for name in numeric}
    texts = {name: counted(batch.column(name)) for name in text}
    head = batch.slice(0, n_rows)
    columns = ([numbers[name][:n_rows] for name in numeric]
               + [[None if v is None else str(v) for v in head.column(name).to_pylist()]
                  for name in text])
    rows = [[_plain(column[i]) for column in columns] for i in range(head.num_rows)]
    return numbers, texts, rows, batch.num_rows


def _inspect_arrow(source: Source, n_rows: int, max_rows: int = MAX_ROWS) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import csv as pa_csv

    fmt = source.format

    def inspected(schema, batches):
        numeric = [f.name for f in schema if _is_numeric(f.type)]
        text = _text_fields(schema)
        return _inspected(source.label, _default_process(source),
                          {f.name: str(f.type) for f in schema}, numeric, text,
                          (_arrow_batch(b, numeric, text, n_rows) for b in batches))

    def refused(err):
        return DatasetError({"file": f"{source.label} could not be read as {fmt.upper()} "
                                     f"(truncated or corrupted?): {_short(err)}"})

    schema = _arrow_schema(source, fmt)
    if fmt == "parquet":
        _check_parquet_pieces(source, schema, max_rows)
    else:
        check_csv_rows(source, len(schema.names), max_rows)
    try:
        if fmt == "parquet":
            # row group by row group: ParquetFile.iter_batches was measured to keep the
            # whole file's decoded columns in Arrow's pool until the file is closed
            wanted = [f.name for f in schema if _is_numeric(f.type)] + _text_fields(schema)
            parquet = pq.ParquetFile(source.path)
            return inspected(schema, (parquet.read_row_group(i, columns=wanted or None)
                                      for i in range(parquet.num_row_groups)))
        with pa_csv.open_csv(source.path, read_options=pa_csv.ReadOptions(
                block_size=INSPECT_CSV_BLOCK_BYTES)) as reader:
            return inspected(schema, reader)
    except DatasetError:
        raise
    except (pa.ArrowException, OSError, ValueError) as err:
        if fmt != "csv":
            raise refused(err) from None
    # A CSV column that held numbers in the first block and text later: the whole file's
    # types decide, as at import, so this rare file is read at once.
    try:
        table = pa_csv.read_csv(source.path)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise refused(err) from None
    return inspected(table.schema, [table])


def _check_parquet_pieces(source: Source, schema, max_rows: int) -> None:
    """Refuse, from the footer alone, a Parquet file inspection could not hold piece by
    piece: too many rows, or a row group too large to decode at once."""
    metadata = _parquet_metadata(source)
    check_rows(source.label, metadata.num_rows, max_rows)
    wanted = [f.name for f in schema if _is_numeric(f.type)] + _text_fields(schema)
    per_row = _decoded_bytes_per_row(schema, wanted)
    for i in range(metadata.num_row_groups):
        rows = metadata.row_group(i).num_rows
        if rows * per_row > INSPECT_MAX_PIECE_BYTES:
            raise DatasetError({"file": (
                f"{source.label} has a row group of {rows:,} rows x {len(wanted)} columns, "
                f"about {rows * per_row / 1e9:,.1f} GB decoded, over the "
                f"{INSPECT_MAX_PIECE_BYTES / 1e9:,.1f} GB this server decodes at once; write "
                f"it with smaller row groups (pyarrow: row_group_size)")})


def _inspect_root(source: Source, n_rows: int, max_rows: int = MAX_ROWS) -> list[dict]:
    inspected = []
    with _open_trees(source) as trees:
        check_rows(source.label, sum(int(tree.num_entries) for _, tree, _ in trees), max_rows)
        for name, tree, label in trees:
            dtypes, flat = _branch_types(tree)
            table = _inspected(label, _tree_process(source, name), dtypes, flat, [],
                               _tree_batches(tree, flat, label, n_rows))
            table["n_rows"] = int(tree.num_entries)  # also when no branch is flat
            inspected.append(table)
    return inspected


def _tree_batches(tree, flat: list, label: str, n_rows: int):
    if not flat:
        return
    try:
        for arrays in tree.iterate(flat, step_size=INSPECT_BATCH_ROWS, library="np"):
            numbers = {b: np.asarray(arrays[b]) for b in flat}
            size = len(numbers[flat[0]])
            rows = [[_plain(numbers[b][i]) for b in flat] for i in range(min(n_rows, size))]
            yield numbers, {}, rows, size
    except DatasetError:
        raise
    except Exception as err:  # uproot raises many types for damaged files
        raise DatasetError({"file": f"{label} could not be read (truncated or corrupted?): "
                                    f"{_short(err)}"}) from None


def _text_fields(schema) -> list[str]:
    """Columns that may be a process label: text and dictionary-encoded text."""
    import pyarrow as pa

    return [f.name for f in schema if not _is_numeric(f.type) and (
        pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        or pa.types.is_dictionary(f.type))]


def _plain(value):
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf
    return value
