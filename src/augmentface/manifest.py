"""Stage manifests: one Parquet dataset per stage, one row per item, described by a :class:`Schema`.

Each stage reads the manifest of the stage before it and writes its own. A manifest carries
the per-row results (``status`` is ``"ok"`` for finished rows, a short failure code otherwise,
and ``error`` holds the message) and, in each Parquet footer under the key ``b"augmentface"``,
the provenance of the run: stage, schema version, package version, parameters, seed, face model.

On disk a manifest is a directory of immutable parts with completion markers
(:mod:`augmentface.manifest_parts`): a long run appends a part at each checkpoint instead of
rewriting what it wrote before, so what it holds in memory and what a crash loses are one part,
whatever the dataset's size, and ``pandas.read_parquet`` still reads the directory whole. A
single Parquet file written by an older version is still read.

Array columns (landmarks, coefficients, ...) are stored as a flat ``list<float32>`` (or
``list<int32>``) per row, so any Parquet reader can open the files; :func:`read_manifest` gives
them back as numpy arrays of the shape the schema declares.

Resuming: :func:`done_keys` lists the rows already finished, and :class:`ManifestWriter`
checkpoints a long loop to disk so a run killed half-way keeps its finished parts; a retried
row replaces the failed one. Every part and marker is written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path, PurePath
from types import TracebackType
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from augmentface.atomic import sync_file_systems
from augmentface.errors import MissingManifestError, UsageError
from augmentface.manifest_parts import (
    WriterLock,
    live_parts,
    read_parts,
    remove_void_parts,
    write_part,
)

__all__ = [
    "ERROR_COLUMN",
    "META_KEY",
    "STATUS_COLUMN",
    "STATUS_OK",
    "Column",
    "Dtype",
    "Manifest",
    "ManifestWriter",
    "Schema",
    "done_keys",
    "pack_array",
    "read_checked_meta",
    "read_manifest",
    "read_meta",
    "unpack_array",
    "write_manifest",
]

Dtype = Literal["string", "int64", "float64", "bool", "array"]

#: Footer metadata key under which the run's provenance is stored as JSON.
META_KEY = b"augmentface"
#: The ``status`` value of a finished row; any other value means "retry on resume".
STATUS_OK = "ok"

_SCALAR_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
}
_DTYPES = (*_SCALAR_TYPES, "array")
_INT32 = np.iinfo(np.int32)


@dataclass(frozen=True)
class Column:
    """One manifest column.

    Parameters
    ----------
    name : str
        Column name in the Parquet file and the DataFrame.
    dtype : {"string", "int64", "float64", "bool", "array"}
        Logical type. ``"array"`` cells are numpy arrays of ``shape`` (float32 or int32).
    doc : str
        One-line description for the documentation table.
    unit : str, optional
        Physical unit (``"px"``, ``"deg"``, ...); ``""`` when none.
    shape : tuple of int or None, optional
        Per-row shape of an ``"array"`` column, e.g. ``(478, 3)``; the leading dimension may be
        ``-1`` when it varies from row to row. Must be None for every other dtype.
    nullable : bool, optional
        Whether cells may be missing (None/NaN), as they are in failed rows. Default True.
    """

    name: str
    dtype: Dtype
    doc: str
    unit: str = ""
    shape: tuple[int, ...] | None = None
    nullable: bool = True

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise ValueError(f"column {self.name!r}: dtype {self.dtype!r} not in {_DTYPES}")
        if self.dtype != "array":
            if self.shape is not None:
                raise ValueError(f"column {self.name!r}: only 'array' columns have a shape")
            return
        if not self.shape:
            raise ValueError(f"column {self.name!r}: an 'array' column needs a shape")
        shape = tuple(int(d) for d in self.shape)
        if any(d < 1 for d in shape[1:]) or (shape[0] < 1 and shape[0] != -1):
            raise ValueError(
                f"column {self.name!r}: shape {shape} must be positive (-1 only leading)"
            )
        object.__setattr__(self, "shape", shape)  # normalise lists to a hashable tuple


STATUS_COLUMN = Column(
    "status",
    "string",
    f"`{STATUS_OK}` when the row finished; otherwise a short failure code (e.g. `no_face`).",
    nullable=False,
)
ERROR_COLUMN = Column("error", "string", "Error message when `status` is not `ok`, else empty.")


@dataclass(frozen=True)
class Schema:
    """The columns of one stage's manifest.

    ``status`` and ``error`` columns (:data:`STATUS_COLUMN`, :data:`ERROR_COLUMN`) are appended
    automatically when ``columns`` does not already declare them.

    Parameters
    ----------
    stage : str
        Stage name, e.g. ``"fit3dmm"``; stored in the file and checked on read.
    version : int
        Schema version; bump it whenever a column changes meaning, type or shape.
    key : tuple of str
        Columns that identify a row across runs (used to resume).
    columns : tuple of Column
        The stage's own columns, in file order.
    """

    stage: str
    version: int
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        columns = tuple(self.columns)
        names = [c.name for c in columns]
        columns += tuple(c for c in (STATUS_COLUMN, ERROR_COLUMN) if c.name not in names)
        by_name = {c.name: c for c in columns}
        if len(by_name) != len(columns):
            raise ValueError(f"schema {self.stage!r}: duplicate column names in {names}")
        key = tuple(self.key)
        if not key or any(k not in by_name for k in key):
            raise ValueError(f"schema {self.stage!r}: key {key} must name declared columns")
        if self.version < 1:
            raise ValueError(f"schema {self.stage!r}: version must be >= 1")
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "_by_name", by_name)

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in file order (``status`` and ``error`` included)."""
        return tuple(self._by_name)

    def column(self, name: str) -> Column:
        """Return the column called ``name``.

        Raises
        ------
        KeyError
            If the schema has no such column.
        """
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"stage {self.stage!r} has no column {name!r}") from None

    def validate(self, df: pd.DataFrame) -> None:
        """Check that ``df`` has exactly this schema's columns and well-formed cells.

        Parameters
        ----------
        df : pandas.DataFrame
            Rows to check; array cells may be numpy arrays or nested lists.

        Raises
        ------
        UsageError
            Naming missing or unexpected columns, array cells of the wrong shape, nulls in a
            non-nullable column, or duplicate keys (at most one bad row reported per column).
        """
        problems = []
        missing = [n for n in self.names if n not in df.columns]
        unexpected = [str(c) for c in df.columns if c not in self._by_name]
        if missing:
            problems.append(f"missing columns {missing}")
        if unexpected:
            problems.append(f"unexpected columns {unexpected}")
        for column in self.columns:
            if column.name not in df.columns or (column.dtype != "array" and column.nullable):
                continue  # nothing cell-level to check: pyarrow checks scalar types on write
            for position, value in enumerate(df[column.name]):
                problem = _cell_problem(column, value)
                if problem:
                    problems.append(f"column {column.name!r} row {position} {problem}")
                    break
        if not missing:
            duplicated = df.duplicated(subset=list(self.key))
            if duplicated.any():
                first = tuple(df.loc[duplicated, list(self.key)].iloc[0])
                problems.append(f"duplicate key {first} for key columns {self.key}")
        if problems:
            raise UsageError(f"{self.stage} manifest: " + "; ".join(problems))

    def to_markdown(self) -> str:
        """Return a Markdown table documenting the columns (column, type, shape, unit, doc)."""
        lines = [
            "| column | type | shape | unit | description |",
            "| --- | --- | --- | --- | --- |",
        ]
        for c in self.columns:
            kind = c.dtype if c.nullable else f"{c.dtype}, not null"
            shape = "×".join("N" if d == -1 else str(d) for d in c.shape) if c.shape else ""
            doc = c.doc.replace("|", "\\|") + (" (key)" if c.name in self.key else "")
            lines.append(f"| `{c.name}` | {kind} | {shape} | {c.unit} | {doc} |")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Manifest:
    """A manifest read from disk.

    Attributes
    ----------
    df : pandas.DataFrame
        One row per item, columns in schema order, array cells as numpy arrays (or None).
    meta : dict
        The provenance stored in the footer (see :func:`write_manifest`).
    path : pathlib.Path
        Where it was read from.
    """

    df: pd.DataFrame
    meta: dict[str, Any]
    path: Path


def pack_array(a: Any) -> np.ndarray:
    """Flatten an array cell for storage: int32 for integer/bool input, float32 otherwise.

    Parameters
    ----------
    a : array_like
        The cell value.

    Returns
    -------
    numpy.ndarray
        1-D int32 or float32 copy/view of ``a``.

    Raises
    ------
    UsageError
        If integer values do not fit in int32.
    """
    arr = np.asarray(a)
    if arr.dtype.kind in "biu":
        if arr.size and (arr.min() < _INT32.min or arr.max() > _INT32.max):
            raise UsageError(f"integer array values out of int32 range: {arr.min()}..{arr.max()}")
        return arr.astype(np.int32, copy=False).ravel()
    return arr.astype(np.float32, copy=False).ravel()


def unpack_array(cell: Any, shape: Sequence[int]) -> np.ndarray | None:
    """Turn a stored (flat) cell back into an array of ``shape``; a null cell gives None.

    Parameters
    ----------
    cell : array_like or None
        Flat values, e.g. as ``pandas.read_parquet`` returns them.
    shape : sequence of int
        Declared per-row shape; a leading ``-1`` is inferred from the length.

    Returns
    -------
    numpy.ndarray or None
        int32 when the stored values are integers, float32 otherwise.
    """
    if _is_null(cell):
        return None
    return pack_array(cell).reshape(tuple(shape))


#: Rows per part of a manifest written whole (:func:`write_manifest`).
PART_ROWS = 2000


def _table(df: pd.DataFrame, schema: Schema, meta: Mapping[str, Any]) -> pa.Table:
    """``df`` as an Arrow table of ``schema``'s columns with the provenance in its footer."""
    arrays = [_to_arrow(df[c.name], c) for c in schema.columns]
    fields = [_field(c, a.type) for c, a in zip(schema.columns, arrays, strict=True)]
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    return table.replace_schema_metadata({META_KEY: json.dumps(meta).encode("utf-8")})


def _provenance(
    schema: Schema, params: Mapping[str, Any], seed: int | None, face_model_id: str | None
) -> dict[str, Any]:
    return {
        "stage": schema.stage,
        "schema_version": schema.version,
        "package_version": _package_version(),
        "params": _json_safe(dict(params)),
        "seed": _json_safe(seed),
        "face_model_id": face_model_id,
        "written_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _make_room(path: Path) -> None:
    """A single-file manifest of an older version gives way to the directory of parts."""
    if path.is_file():
        path.unlink()


def write_manifest(
    path: str | os.PathLike[str],
    df: pd.DataFrame,
    schema: Schema,
    *,
    params: Mapping[str, Any],
    seed: int | None,
    face_model_id: str | None,
) -> None:
    """Validate ``df`` and write it as the whole of a manifest, with provenance metadata.

    The footer key ``b"augmentface"`` of each part holds JSON with ``stage``,
    ``schema_version``, ``package_version``, ``params`` (made JSON-safe), ``seed``,
    ``face_model_id`` and ``written_utc``. The rows go into new parts of at most
    :data:`PART_ROWS` rows, the first of which replaces the manifest's earlier parts: until
    its marker is written, readers see the previous manifest whole, then the new rows as their
    parts are marked (a reader running meanwhile may see the first parts only).

    Parameters
    ----------
    path : str or os.PathLike
        The manifest directory; created if needed.
    df : pandas.DataFrame
        Rows with exactly ``schema``'s columns (the index is not stored).
    schema : Schema
        The stage's schema.
    params : mapping
        The run's parameters; Paths become str, numpy scalars/arrays become Python values.
    seed : int or None
        Random seed of the run.
    face_model_id : str or None
        Identifier of the face model used, if any.

    Raises
    ------
    UsageError
        If ``df`` does not match ``schema``, a cell cannot be stored as its column's type, or a
        parameter is not JSON-serialisable.
    """
    schema.validate(df)
    table = _table(df, schema, _provenance(schema, params, seed, face_model_id))
    path = Path(path)
    _make_room(path)
    for start in range(0, max(table.num_rows, 1), PART_ROWS):
        write_part(path, table.slice(start, PART_ROWS), replaces=start == 0)
    remove_void_parts(path)


def _footer_meta(path: Path, schema: pa.Schema) -> dict[str, Any]:
    file_meta = schema.metadata or {}
    if META_KEY not in file_meta:
        raise UsageError(f"{path}: not an augmentface manifest (no {META_KEY!r} metadata)")
    return json.loads(file_meta[META_KEY])


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the provenance JSON of a manifest's last part (the rows are not read).

    Raises
    ------
    MissingManifestError
        If ``path`` does not exist or holds no completed part.
    UsageError
        If a part is not Parquet or carries no augmentface metadata.
    """
    path = Path(path)
    if path.is_dir():
        parts = live_parts(path)
        if not parts:
            raise MissingManifestError(f"{path}: holds no completed part")
        source = parts[-1].path
    elif path.is_file():
        source = path
    else:
        raise MissingManifestError(f"{path}: not found")
    try:
        return _footer_meta(source, pq.read_schema(source))
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(f"{source}: not a readable Parquet file ({exc})") from exc


def read_checked_meta(
    path: str | os.PathLike[str], schema: Schema, *, run_first: str
) -> dict[str, Any]:
    """The provenance of the manifest at ``path``, checked to be of ``schema``'s stage and
    version, without reading its rows (errors as :func:`read_manifest`'s)."""
    try:
        meta = read_meta(path)
    except MissingManifestError as exc:
        raise MissingManifestError(f"{exc}; run `{run_first}` first") from exc
    _check_origin(Path(path), meta, schema, run_first)
    return meta


def read_manifest(path: str | os.PathLike[str], schema: Schema, *, run_first: str) -> Manifest:
    """Read a manifest written by :func:`write_manifest` or :class:`ManifestWriter`.

    Parameters
    ----------
    path : str or os.PathLike
        The manifest directory (or the single file of an older version).
    schema : Schema
        The schema the caller expects; stage and version must match the manifest's.
    run_first : str
        The command that produces this manifest, quoted in the error when it is missing.

    Returns
    -------
    Manifest
        Rows (array columns as numpy arrays of the declared shape, None where null; of a key
        written more than once, the last row), provenance of the last part, and path.

    Raises
    ------
    MissingManifestError
        If ``path`` does not exist or holds no completed part; the message names ``run_first``.
    UsageError
        If the manifest belongs to another stage, has another schema version, does not match
        the schema, or a part changed after it was written.
    """
    path = Path(path)
    meta = read_checked_meta(path, schema, run_first=run_first)
    tables = read_parts(live_parts(path)) if path.is_dir() else [pq.read_table(path)]
    try:
        frames = [_frame(table, schema) for table in tables]
        # Empty parts (a run that wrote nothing) add no rows, only concat's dtype warnings.
        filled = [f for f in frames if len(f)] or frames[:1]
        df = filled[0] if len(filled) == 1 else pd.concat(filled, ignore_index=True)
        if set(schema.key) <= set(df.columns):
            df = df.drop_duplicates(subset=list(schema.key), keep="last").reset_index(drop=True)
        schema.validate(df)
    except (UsageError, ValueError) as exc:
        raise UsageError(f"{path}: {exc}") from exc
    return Manifest(df=df, meta=meta, path=path)


def _frame(table: pa.Table, schema: Schema) -> pd.DataFrame:
    """The rows of one stored table, array columns as numpy arrays, in schema order."""
    stored = set(table.column_names)  # missing ones are reported by validate()
    scalars = [c.name for c in schema.columns if c.dtype != "array" and c.name in stored]
    df = table.select(scalars).to_pandas()
    for c in schema.columns:
        if c.dtype == "array" and c.name in stored:
            df[c.name] = _object_series(_cells_from_arrow(table[c.name], c.shape))
    return df[[n for n in schema.names if n in df.columns]]


def done_keys(df: pd.DataFrame | None, schema: Schema) -> set[tuple[Hashable, ...]]:
    """Return the keys of rows whose ``status`` is ``"ok"`` (empty for None)."""
    if df is None or df.empty:
        return set()
    finished = df.loc[df["status"] == STATUS_OK, list(schema.key)]
    return set(finished.itertuples(index=False, name=None))


class ManifestWriter:
    """Checkpoint a stage's rows to its manifest while a long loop runs.

    Every ``every_n`` added rows, and on exit from the ``with`` block (normal, exception or
    KeyboardInterrupt alike), the rows added since the last checkpoint are appended to the
    manifest as one part; nothing written before is rewritten, so the writer holds at most
    ``every_n`` rows and a crash loses at most those. A row whose key is already in the
    manifest (a retried failure) replaces it for readers.

    Parameters
    ----------
    path : str or os.PathLike
        The manifest directory.
    schema : Schema
        The stage's schema.
    resume : bool
        Whether this run resumes the manifest there (an earlier run of the same job: its rows
        stay); else the writer's first part replaces whatever the manifest held (another
        job's rows, or a run with other parameters). Default False.
    params, seed, face_model_id
        Provenance, as for :func:`write_manifest`.
    every_n : int, optional
        Rows per part, at least 1; default 500.
    shard : str, optional
        The shard (``"I/N"``) this writer adds, beside other shards' writers: its parts never
        void the manifest's other parts, even on a fresh run, and it locks only its shard
        (:class:`.manifest_parts.WriterLock`).
    synced_column : str, optional
        A column of file paths written without an fsync each (the stage's outputs): before a
        part is marked done, the file systems holding its rows' files are flushed, so a part
        never names a file a crash of the machine could take back.

    Raises
    ------
    ManifestBusyError
        When another run is writing the same manifest (:class:`.manifest_parts.WriterLock`).
    UsageError
        A shard's writer over a single-file manifest of an older version.

    Examples
    --------
    >>> with ManifestWriter(path, schema, resume=True, params=p, seed=0,
    ...                     face_model_id=None) as w:  # doctest: +SKIP
    ...     for item in todo:
    ...         w.add({"image": item, "status": "ok", "error": None, ...})
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        schema: Schema,
        resume: bool = False,
        *,
        params: Mapping[str, Any],
        seed: int | None,
        face_model_id: str | None,
        every_n: int = 500,
        shard: str | None = None,
        synced_column: str | None = None,
    ) -> None:
        if every_n < 1:
            raise ValueError("every_n must be >= 1")
        self.path = Path(path)
        self.schema = schema
        self.every_n = every_n
        self.synced_column = synced_column
        self._meta = {"params": params, "seed": seed, "face_model_id": face_model_id}
        if shard is not None and self.path.is_file():
            raise UsageError(f"{self.path}: a single-file manifest cannot take shards' parts")
        # A single-file manifest of an older version cannot take parts: start afresh. A
        # shard never starts afresh: the other shards' parts are as much the run as its own.
        self._fresh = shard is None and (not resume or self.path.is_file())
        if self._fresh:
            _make_room(self.path)
        self._lock = WriterLock(self.path, shard=shard)
        self._rows: list[dict[str, Any]] = []
        self._parts_written = 0
        self._closed = False
        # What add() checks, made once: a nullable scalar cell needs no check (one per cell
        # costs ~1 µs, and a labels row has 43).
        columns = schema.columns
        self._names = frozenset(schema.names)
        self._required = [c.name for c in columns if not c.nullable or c.name in schema.key]
        self._checked = {c.name: c for c in columns if c.dtype == "array" or not c.nullable}

    def add(self, row: Mapping[str, Any]) -> None:
        """Add one row (column name -> value); omitted nullable columns become None.

        Raises
        ------
        UsageError
            If the row names unknown columns, lacks a key or non-nullable column, or has an
            array of the wrong shape; the row is then not added.
        """
        if self._closed:
            raise UsageError(f"{self.path}: add() after the writer was closed")
        unknown = sorted(row.keys() - self._names)
        absent = [name for name in self._required if name not in row]
        problems = [f"unknown columns {unknown}"] if unknown else []
        problems += [f"missing columns {absent}"] if absent else []
        for name, column in self._checked.items():
            if name in row and (problem := _cell_problem(column, row[name])):
                problems.append(f"column {name!r} {problem}")
        if problems:
            raise UsageError(f"{self.schema.stage} row: " + "; ".join(problems))
        # Arrays are stored as float32 anyway (pack_array); holding them so halves the memory
        # of a part (a fitted face carries ~8k numbers).
        self._rows.append(
            {
                k: v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
                for k, v in row.items()
            }
        )
        if len(self._rows) >= self.every_n:
            self.flush()

    def flush(self) -> None:
        """Append the rows added since the last checkpoint as one part (none: nothing)."""
        if not self._rows:
            return
        self._write_part()

    def _write_part(self) -> None:
        new = pd.DataFrame(
            {n: _object_series([r.get(n) for r in self._rows]) for n in self.schema.names}
        ).infer_objects()
        new = new.drop_duplicates(subset=list(self.schema.key), keep="last")
        self.schema.validate(new)
        if (column := self.synced_column) is not None:
            sync_file_systems(row[column] for row in self._rows if row.get(column))
        meta = _provenance(self.schema, **self._meta)
        replaces = self._fresh and self._parts_written == 0
        write_part(self.path, _table(new, self.schema, meta), replaces=replaces)
        self._parts_written += 1
        self._rows = []
        if replaces:
            remove_void_parts(self.path)

    def close(self) -> None:
        """Write the last part; a run that wrote nothing still leaves a readable manifest
        (an empty part, when it starts afresh or the manifest holds none). Later calls do
        nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._rows:
                self._write_part()
            elif self._parts_written == 0 and (self._fresh or not live_parts(self.path)):
                self._write_part()
        finally:
            self._lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # Save the finished rows, but let the loop's own error be the one that propagates.
        try:
            self.close()
        except Exception as write_error:
            exc.add_note(f"augmentface: could not save {self.path}: {write_error}")


# --- helpers -------------------------------------------------------------------------------


def _is_null(value: Any) -> bool:
    """True for None and scalar NaN/NA (pandas turns None into NaN in some operations)."""
    if value is None:
        return True
    if isinstance(value, float):  # the common cells first: pandas' checks cost ~1 µs a cell
        return value != value
    if isinstance(value, (str, bool, int, np.ndarray)):
        return False
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def _cell_problem(column: Column, value: Any) -> str | None:
    """Describe what is wrong with one cell of ``column``, or return None when it is fine."""
    if _is_null(value):
        return None if column.nullable else "is null but the column is not nullable"
    if column.dtype != "array":
        return None
    assert column.shape is not None
    try:
        shape = np.shape(value)
    except ValueError:
        return "is a ragged array"
    fits = len(shape) == len(column.shape) and all(
        want in (-1, got) for want, got in zip(column.shape, shape, strict=True)
    )
    return None if fits else f"has shape {shape}, expected {column.shape}"


def _object_series(values: Iterable[Any]) -> pd.Series:
    """A 1-D object Series whose cells are exactly ``values`` (arrays are not broadcast)."""
    values = list(values)
    cells = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        cells[i] = value
    return pd.Series(cells, dtype=object)


def _to_arrow(values: pd.Series, column: Column) -> pa.Array:
    """Convert one DataFrame column to its Arrow storage type."""
    try:
        if column.dtype == "array":
            cells = [None if _is_null(v) else pack_array(v) for v in values]
            is_int = all(c.dtype == np.int32 for c in cells if c is not None) and any(
                c is not None for c in cells
            )
            return pa.array(cells, type=pa.list_(pa.int32() if is_int else pa.float32()))
        if column.dtype == "string":
            values = pd.Series([os.fspath(v) if isinstance(v, PurePath) else v for v in values])
        return pa.array(values, type=_SCALAR_TYPES[column.dtype], from_pandas=True)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        message = f"column {column.name!r} cannot be stored as {column.dtype}: {exc}"
        raise UsageError(message) from exc


def _cells_from_arrow(chunked: pa.ChunkedArray, shape: tuple[int, ...] | None) -> list[Any]:
    """Split a stored list column into one writable numpy array of ``shape`` per row."""
    assert shape is not None
    lists = chunked.combine_chunks()
    if len(lists) == 0:
        return []
    # Offsets index into .values; a copy makes the cells writable (Arrow buffers are read-only).
    flat = np.array(lists.values.to_numpy(zero_copy_only=False))
    offsets = lists.offsets.to_numpy()
    valid = lists.is_valid().to_numpy(zero_copy_only=False)
    return [
        flat[offsets[i] : offsets[i + 1]].reshape(shape) if valid[i] else None
        for i in range(len(lists))
    ]


def _field(column: Column, arrow_type: pa.DataType) -> pa.Field:
    """An Arrow field carrying the column's doc, unit and shape for other readers."""
    meta = {"doc": column.doc, "unit": column.unit}
    if column.shape is not None:
        meta["shape"] = json.dumps(list(column.shape))
    return pa.field(column.name, arrow_type, nullable=column.nullable, metadata=meta)


def _check_origin(path: Path, meta: Mapping[str, Any], schema: Schema, run_first: str) -> None:
    """Refuse a manifest of another stage or schema version."""
    stage, version = meta.get("stage"), meta.get("schema_version")
    if stage != schema.stage:
        raise UsageError(f"{path}: written by stage {stage!r}, expected {schema.stage!r}")
    if not isinstance(version, int):
        raise UsageError(f"{path}: metadata has no integer schema_version")
    if version > schema.version:
        raise UsageError(
            f"{path}: {stage} schema version {version} is newer than this augmentface "
            f"understands ({schema.version}); upgrade augmentface"
        )
    if version < schema.version:
        raise UsageError(
            f"{path}: {stage} schema version {version} is older than {schema.version} and "
            f"there are no migrations yet; run `{run_first}` again"
        )


def _package_version() -> str:
    try:
        return importlib_metadata.version("augmentface")
    except importlib_metadata.PackageNotFoundError:
        return "0+unknown"


def _json_safe(value: Any) -> Any:
    """Convert ``value`` to JSON-serialisable Python types (Paths, numpy values, containers)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_json_safe(v) for v in value), key=repr)
    raise UsageError(f"cannot store {type(value).__name__} {value!r} in manifest metadata")
