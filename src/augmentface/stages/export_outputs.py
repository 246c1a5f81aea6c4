"""``export-layout``: what needs every output of blend at once, written after it.

Blend composites and labels one output at a time (in shards, on Dask workers); what needs
them all is done here, once, from its labels manifest: ``labels.csv``, the videos of smooth
paths (``synth-va --path``) and, with a layout, the outputs in a dataset's own layout and
label format. ``blend`` without ``--shard`` runs it at the end (``blend --layout`` is the
shorthand); after array jobs, run it once when every blend shard is done.

Nothing here reads the manifest whole (:class:`TypedRows`: batches of the needed columns):
the CSV is appended a batch at a time, the videos and the layout take a face's or a subject's
rows at a time (:class:`RowGroups`), and where the layout put each row is kept on disk until
the labels are rewritten. ``evaluate`` streams its manifests with the same tools.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augmentface.atomic import atomic_path
from augmentface.datasets.frames import parse_frame_ref
from augmentface.datasets.layout_items import Written, items_from_labels
from augmentface.datasets.layout_writers import (
    AU_OCCURRENCE_THRESHOLD,
    REQUIRED_LABELS,
    WRITERS,
    flat_writer,
    unlabelled_error,
)
from augmentface.datasets.layouts import LAYOUTS
from augmentface.errors import UsageError
from augmentface.imageio import read_image
from augmentface.manifest import Schema, write_manifest
from augmentface.manifest_index import ManifestIndex, column_values
from augmentface.manifest_parts import (
    WriterLock,
    live_parts,
    read_parts,
    remove_void_parts,
    write_part,
)
from augmentface.manifest_stream import ManifestStream
from augmentface.stages.common import DEFAULT_WORKDIR, LABELS_FILE, OUTPUT_DIR, log, sample_name
from augmentface.stages.lineage import upstream_path
from augmentface.stages.schemas import AU_NAMES, LABELS, RENDERS
from augmentface.video import write_video

SEQUENCES_DIR = "sequences"

#: Targets whose AU columns are labels someone asked for; VA and emotion targets get their AUs
#: from a prior or a model reading, which a dataset's AU files must not present as ground truth.
AU_LABELLED_KINDS = ("au", "transfer")

#: Rows per batch read from a manifest.
BATCH_ROWS = 1000
#: Rows a :class:`RowGroups` over a manifest out of key order holds at once (one group's,
#: when a single group has more).
GROUP_ROWS = 20_000

#: The key of a face, by which evaluate and the path videos group the labels.
FACE_KEY = ("image_path", "face_index")
#: What the layouts read of a labels row: its label, its subject, what orders it, its file.
LAYOUT_COLUMNS = (
    *LABELS.key,
    "subject_id",
    "clip_id",
    "output_path",
    "kind",
    *AU_NAMES,
    "valence",
    "arousal",
    "emotion",
)


@dataclass(frozen=True)
class ExportOutputsConfig:
    """Settings of ``augmentface export-layout`` (and of blend's ``--layout`` shorthand)."""

    workdir: Path = DEFAULT_WORKDIR
    output: Path | None = None  # default: <workdir>/output
    #: Also write the outputs in a dataset's own layout ("flat", "disfa", "afew-va",
    #: "affwild2"), under ``layout_root`` (default ``<output>/<layout>``).
    layout: str | None = None
    layout_root: Path | None = None
    #: Frame rate of the videos written for smooth paths (``synth-va --path``).
    fps: float = 25.0

    def __post_init__(self) -> None:
        if self.layout is not None and self.layout not in LAYOUTS:
            raise UsageError(f"unknown layout {self.layout!r}; allowed: {', '.join(LAYOUTS)}")
        if not self.fps > 0:
            raise UsageError(f"fps must be > 0, got {self.fps}")

    @property
    def out_dir(self) -> Path:
        return Path(self.output or Path(self.workdir) / OUTPUT_DIR)

    def root(self) -> Path | None:
        """Where the layout goes (None without a layout)."""
        if self.layout is None:
            return None
        return Path(self.layout_root or self.out_dir / self.layout).resolve()


# --- streaming a manifest ---------------------------------------------------------------------


class TypedRows:
    """A manifest read in batches with the column types ``read_manifest`` gives it whole.

    ``read_manifest`` concatenates every stored row (a retried row's earlier versions too)
    before it keeps a key's last row, so an integer column with a null anywhere is float64
    in every row; a batch alone would be int64 where it holds no null, and a CSV would write
    ``7`` for ``7.0``. Those columns are found first (their stored values, part by part) and
    made float64 in every batch.

    Parameters
    ----------
    path : Path
        The manifest.
    schema : Schema
        Its schema.
    run_first : str
        The command that makes it, named when it is missing.

    Raises
    ------
    MissingManifestError, UsageError
        As :class:`~augmentface.manifest_stream.ManifestStream`.
    """

    def __init__(self, path: Path, schema: Schema, *, run_first: str) -> None:
        self.path = Path(path)
        self.schema = schema
        self.stream = ManifestStream(path, schema, run_first=run_first)
        self.meta = self.stream.meta
        self._floats = {
            c.name: "float64"
            for c in schema.columns
            if c.dtype == "int64"
            and c.nullable
            and any(v is None for v in column_values(self.path, c.name))
        }

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        """The rows in manifest order, ``columns`` (and the key and ``status``; default all)
        in batches of :data:`BATCH_ROWS`, each row indexed by its position in the manifest."""
        start = 0
        for batch in self.stream.batches(columns, BATCH_ROWS):
            batch.index = pd.RangeIndex(start, start + len(batch))
            start += len(batch)
            floats = {c: t for c, t in self._floats.items() if c in batch.columns}
            yield batch.astype(floats) if floats else batch


@contextlib.contextmanager
def csv_appender(path: Path, columns: Sequence[str]) -> Iterator[Callable[[pd.DataFrame], None]]:
    """A function appending frames to the CSV ``path``: the bytes of one ``to_csv`` of them
    all (the header once; ``columns`` alone when no frame comes). The file replaces ``path``
    atomically when the block ends, and not at all on an error."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        header = [True]

        def append(frame: pd.DataFrame) -> None:
            frame.to_csv(handle, index=False, header=header[0])
            header[0] = False

        yield append
        if header[0]:
            pd.DataFrame(columns=list(columns)).to_csv(handle, index=False)


def write_csv(rows: TypedRows, path: Path) -> None:
    """Every row of ``rows`` as the CSV ``path``, as ``read_manifest(...).df.to_csv`` writes
    it, a batch at a time."""
    with csv_appender(path, rows.schema.names) as append:
        for batch in rows.batches():
            append(batch)


Selector = Callable[[pd.DataFrame], "pd.Series[bool]"]


class RowGroups:
    """The rows of a manifest with equal ``key`` values, a group at a time, in sorted key
    order (``groupby(key, sort=True)``), each group's rows in manifest order and indexed by
    their positions in the manifest.

    Upstream stages write a face's rows together (synth makes a face's targets one after the
    other, render and blend keep that order), so a survey of the keys usually finds every
    group in one run and the runs in key order: then one pass gives each group as its run
    ends, holding one group and a batch. A manifest out of that order (rows finished on Dask
    in the order they finished, retried rows at the end, shards side by side, or a key the
    upstream does not order by, such as a subject) is partitioned instead: the survey gives
    each row its group's rank (8 bytes a row), consecutive groups make buckets of about
    :data:`GROUP_ROWS` rows, one more pass spills each bucket's rows to a temporary file,
    and the buckets are read back one at a time. What is held is then about
    :data:`GROUP_ROWS` rows (one group's, when a single group has more), and the manifest
    is read twice whatever its size.

    Parameters
    ----------
    rows : TypedRows
        The manifest.
    key : sequence of str
        The grouping columns (not null in the selected rows).
    columns : sequence of str
        The other columns each group carries.
    where : callable, optional
        The rows to take, a boolean Series of a batch (of ``key`` and ``columns``).
    max_rows : int, optional
        Rows held out of key order (default :data:`GROUP_ROWS`).
    """

    def __init__(
        self,
        rows: TypedRows,
        key: Sequence[str],
        columns: Sequence[str],
        *,
        where: Selector | None = None,
        max_rows: int | None = None,
    ) -> None:
        self._rows = rows
        self._key = list(key)
        self._names = list(dict.fromkeys([*key, *columns]))
        self._where = where
        self._max_rows = max_rows or GROUP_ROWS
        self._count, self._ranks = self._survey()

    def __len__(self) -> int:
        """The number of groups."""
        return self._count

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return self._runs() if self._ranks is None else self._partitioned(self._ranks)

    def _selected(self) -> Iterator[pd.DataFrame]:
        for batch in self._rows.batches(self._names):
            if self._where is not None:
                batch = batch[self._where(batch)]
            if len(batch):
                yield batch

    def _keys(self, batch: pd.DataFrame) -> list[tuple[Any, ...]]:
        return list(zip(*(batch[c].tolist() for c in self._key), strict=True))

    def _survey(self) -> tuple[int, np.ndarray | None]:
        """The number of groups, and each selected row's group rank in key order; no ranks
        when each group is one run and the runs come in key order. Holds 8 bytes a row and
        each group's key, for this pass."""
        ids: dict[tuple[Any, ...], int] = {}
        codes = [
            np.fromiter((ids.setdefault(k, len(ids)) for k in self._keys(b)), np.int64, len(b))
            for b in self._selected()
        ]
        first_seen = list(ids)
        order = sorted(range(len(first_seen)), key=first_seen.__getitem__)
        row_codes = np.concatenate(codes) if codes else np.zeros(0, np.int64)
        # A group seen again after another has begun breaks the runs.
        if order == list(range(len(order))) and not (np.diff(row_codes) < 0).any():
            return len(order), None
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        return len(order), rank[row_codes]

    def _runs(self) -> Iterator[pd.DataFrame]:
        pieces: list[pd.DataFrame] = []
        current = None
        for batch in self._selected():
            start = 0
            for i, key in enumerate(self._keys(batch)):
                if key == current:
                    continue
                if current is not None:
                    # No empty slice: concat would weigh its dtypes in.
                    yield pd.concat([*pieces, batch.iloc[start:i]] if i > start else pieces)
                pieces, current, start = [], key, i
            pieces.append(batch.iloc[start:])
        if current is not None:
            yield pd.concat(pieces)

    def _partitioned(self, ranks: np.ndarray) -> Iterator[pd.DataFrame]:
        counts = np.bincount(ranks, minlength=self._count)
        starts = _bucket_starts(counts, self._max_rows)
        with _Spill(self._max_rows) as spill:
            done = 0
            for batch in self._selected():
                rank = ranks[done : done + len(batch)]
                done += len(batch)
                bucket = np.searchsorted(starts, rank, side="right") - 1
                for number in np.unique(bucket):
                    inside = bucket == number
                    spill.add(int(number), batch[inside], rank[inside])
            spill.flush()
            for number in range(len(starts)):
                frame, rank = spill.read(number)
                for _, group in frame.groupby(rank, sort=True):
                    yield group


def _bucket_starts(counts: np.ndarray, max_rows: int) -> np.ndarray:
    """The first rank of each bucket: consecutive groups of at most ``max_rows`` rows in
    all (a larger group alone)."""
    starts, low = [], 0
    while low < len(counts):
        starts.append(low)
        fits = int(np.searchsorted(np.cumsum(counts[low:]), max_rows, side="right"))
        low += max(1, fits)
    return np.array(starts, np.int64)


class _Spill:
    """Frames (and their rows' group ranks) put aside by bucket in one temporary file, to be
    read back a bucket at a time.

    Frames wait in memory until ``max_rows`` rows wait in all, when the buckets holding the
    most are written out (pickled: every dtype comes back as it was), so that chunks stay
    large and what waits stays bounded.
    """

    def __init__(self, max_rows: int) -> None:
        self._max_rows = max_rows
        self._file = tempfile.TemporaryFile()
        self._waiting: dict[int, list[tuple[pd.DataFrame, np.ndarray]]] = {}
        self._held = 0
        self._chunks: dict[int, list[int]] = {}  # bucket -> offsets of its chunks

    def __enter__(self) -> _Spill:
        return self

    def __exit__(self, *_: object) -> None:
        self._file.close()

    def add(self, bucket: int, frame: pd.DataFrame, ranks: np.ndarray) -> None:
        self._waiting.setdefault(bucket, []).append((frame, ranks))
        self._held += len(frame)
        while self._held > self._max_rows:
            self._write(max(self._waiting, key=lambda b: sum(len(r) for _, r in self._waiting[b])))

    def flush(self) -> None:
        """Write out every waiting frame."""
        for bucket in list(self._waiting):
            self._write(bucket)

    def read(self, bucket: int) -> tuple[pd.DataFrame, np.ndarray]:
        """The bucket's frames (it has some: every bucket holds a group), in the order they
        came, as one, and their ranks."""
        chunks = []
        for offset in self._chunks[bucket]:
            self._file.seek(offset)
            chunks.append(pickle.load(self._file))
        return pd.concat([f for f, _ in chunks]), np.concatenate([r for _, r in chunks])

    def _write(self, bucket: int) -> None:
        chunk = self._waiting.pop(bucket)
        ranks = np.concatenate([r for _, r in chunk])
        self._held -= len(ranks)
        self._file.seek(0, os.SEEK_END)
        self._chunks.setdefault(bucket, []).append(self._file.tell())
        frame = pd.concat([f for f, _ in chunk])
        pickle.dump((frame, ranks), self._file, protocol=pickle.HIGHEST_PROTOCOL)


# --- export-layout ------------------------------------------------------------------------------


def run_export_outputs(config: ExportOutputsConfig) -> Path:
    """Write ``labels.csv``, the path videos and (with ``config.layout``) the dataset layout
    from ``<output>/labels.parquet``; returns the CSV's path.

    Raises
    ------
    MissingManifestError
        No labels manifest (run blend first).
    ManifestBusyError
        A blend run (or shard) is still writing it.
    UsageError
        The layout root holds the sources (it would replace the dataset's own files), or the
        layout cannot label the rows; nothing is written then.
    """
    path = config.out_dir / LABELS_FILE
    # Held while reading and rewriting: no blend shard may add rows that this would miss.
    lock = WriterLock(path)
    try:
        labels = TypedRows(path, LABELS, run_first="augmentface blend")
        root = config.root()
        csv = path.with_suffix(".csv")
        if config.layout is None or root is None:
            _write_sequences(labels, config.out_dir / SEQUENCES_DIR, config.fps)
            write_csv(labels, csv)
            return csv
        with PlacedPaths(len(labels.stream)) as placed:
            renders = upstream_path(labels.meta, "renders", path)
            _write_layout(labels, renders, config.layout, root, placed)
            _write_sequences(labels, config.out_dir / SEQUENCES_DIR, config.fps)
            _write_placed_labels(labels, csv, placed)
    finally:
        lock.release()
    return csv


def _first_source_under(root: Path, image_paths: Iterable[str]) -> str | None:
    """The first of the sorted ``image_paths`` whose source file lies under ``root``."""
    for ref in sorted(set(image_paths)):
        if parse_frame_ref(ref)[0].resolve().is_relative_to(root):
            return ref
    return None


def refuse_overwriting_sources(root: Path, image_paths: Iterable[str]) -> None:
    """A layout written where the source dataset lies would replace its files: refuse."""
    ref = _first_source_under(root, image_paths)
    if ref is not None:
        raise UsageError(
            f"layout root {root} holds the source {parse_frame_ref(ref)[0].resolve()}; writing "
            "the layout there would replace the dataset's own files: choose another "
            "--layout-root"
        )


class PlacedPaths:
    """Where the layout put each of ``rows`` labels rows, by the row's position in the
    manifest, kept in a temporary file: 12 bytes a row in memory, whatever the paths."""

    _ABSENT, _NULL = -1, -2  # the offset of a row the layout did not place, of a null path

    def __init__(self, rows: int) -> None:
        self._file = tempfile.TemporaryFile()
        self._offsets = np.full(rows, self._ABSENT, np.int64)
        self._lengths = np.zeros(rows, np.int32)

    def __enter__(self) -> PlacedPaths:
        return self

    def __exit__(self, *_: object) -> None:
        self._file.close()

    def put(self, positions: Sequence[int], paths: Sequence[str | None]) -> None:
        """Record ``paths[i]`` (None: the row has none) for the row at ``positions[i]``."""
        self._file.seek(0, os.SEEK_END)
        for position, path in zip(positions, paths, strict=True):
            if path is None:
                self._offsets[position] = self._NULL
                continue
            data = path.encode()
            self._offsets[position] = self._file.tell()
            self._lengths[position] = len(data)
            self._file.write(data)

    def fill(self, positions: pd.Index, current: pd.Series) -> list[Any]:
        """The ``layout_path`` of the rows at ``positions``: the recorded one, or ``current``
        for a row the layout did not place."""
        values = []
        for position, value in zip(positions, current, strict=True):
            offset = self._offsets[position]
            if offset >= 0:
                self._file.seek(offset)
                value = self._file.read(int(self._lengths[position])).decode()
            elif offset == self._NULL:
                value = None
            values.append(value)
        return values


def _is_under(path: Any, folder: Path) -> bool:
    return isinstance(path, str) and Path(path).resolve().is_relative_to(folder)


def _as_layout_rows(batch: pd.DataFrame, renders: ManifestIndex) -> pd.DataFrame:
    """A layout's input rows: no AU labels for targets whose AUs nobody asked for, and the
    target's 68 points from its render."""
    batch = batch.copy()
    batch.loc[~batch["kind"].isin(AU_LABELLED_KINDS), list(AU_NAMES)] = np.nan
    batch["ibug68_px"] = [
        (renders.get(key) or {}).get("target_ibug68_px")
        for key in batch[list(LABELS.key)].itertuples(index=False, name=None)
    ]
    return batch


def _write_layout(
    labels: TypedRows, renders_path: Path, layout: str, root: Path, placed: PlacedPaths
) -> None:
    """Write the finished outputs in a dataset's layout, a subject at a time, and record in
    ``placed`` where each one went.

    The rows are checked first, in a pass of their own, so that nothing is written when the
    layout refuses them. Then each subject's rows are written, subjects in order: a dataset's
    label files are per subject, and :func:`.write_layout` orders the items by subject first,
    so the files are those it writes from every row at once.
    """
    renders = ManifestIndex(renders_path, RENDERS, ["target_ibug68_px"])
    columns = LABELS.names if layout == "flat" else LAYOUT_COLUMNS
    taken, any_landmarks = _check_layout_rows(labels, renders, layout, root, columns)
    subjects = RowGroups(labels, ["subject_id"], columns, where=lambda b: taken[b.index])
    if layout != "flat":
        for group in subjects:
            rows = _as_layout_rows(group, renders)
            items = items_from_labels(rows)
            _place(placed, rows, WRITERS[layout](items, rows, root, AU_OCCURRENCE_THRESHOLD))
        return
    # The flat labels.csv has the input's scalar columns: ibug68_px only when no row has any.
    scalar = [c for c in LABELS.names if c != "output_path"]
    scalar += [] if any_landmarks else ["ibug68_px"]
    with flat_writer(root, scalar) as writer:
        for group in subjects:
            rows = _as_layout_rows(group, renders)
            _place(placed, rows, writer.write(items_from_labels(rows), rows))


def _place(placed: PlacedPaths, rows: pd.DataFrame, written: list[Written]) -> None:
    """Record where each of ``rows`` went (its frame reference, else its file; else none)."""
    where: dict[Any, str | None] = {w.index: w.frame_ref or str(w.path) for w in written}
    placed.put(list(rows.index), [where.get(position) for position in rows.index])


def _check_layout_rows(
    labels: TypedRows, renders: ManifestIndex, layout: str, root: Path, columns: Sequence[str]
) -> tuple[np.ndarray, bool]:
    """Refuse, before anything is written, a layout over the sources or rows it cannot label
    (the errors, and messages, of a whole read); log the outputs it leaves out.

    Returns
    -------
    taken : numpy.ndarray
        (rows,) bool: whether each row, by position, goes into the layout (finished, with a
        file blend wrote: a tampered manifest must not smuggle any readable file, such as
        /etc/hostname, into a dataset layout).
    any_landmarks : bool
        Whether any of them has its 68 points.

    Raises
    ------
    UsageError
        As :func:`refuse_overwriting_sources`, :func:`.items_from_labels` and the writer.
    """
    offending = [_first_source_under(root, b["image_path"]) for b in labels.batches(LABELS.key)]
    refuse_overwriting_sources(root, [ref for ref in offending if ref is not None])
    images = (labels.path.parent / "images").resolve()
    required = REQUIRED_LABELS.get(layout)
    taken, unlabelled, first = [], 0, None
    any_landmarks = False
    for batch in labels.batches(columns):
        ok = (batch["status"] == "ok") & batch["output_path"].notna()
        inside = ok & batch["output_path"].map(lambda p: _is_under(p, images))
        for path in batch.loc[ok & ~inside, "output_path"]:
            log.warning(
                "%s: not an output of this run (outside %s); not in the layout", path, images
            )
        taken.append(inside.to_numpy(bool))
        rows = _as_layout_rows(batch[inside], renders)
        items = items_from_labels(rows)  # refuses unusable labels, naming the row
        any_landmarks = any_landmarks or any(item.landmarks is not None for item in items)
        if required is not None:
            missing = [item for item in items if getattr(item, required[0]) is None]
            unlabelled += len(missing)
            first = _first_in_layout(first, rows.loc[[m.index for m in missing[:1]]])
    if unlabelled and first is not None:
        raise unlabelled_error(layout, unlabelled, first.index[0])
    return (np.concatenate(taken) if taken else np.zeros(0, bool)), any_landmarks


def _first_in_layout(first: pd.DataFrame | None, row: pd.DataFrame) -> pd.DataFrame | None:
    """Of the one-row frames ``first`` (None: none yet) and ``row`` (maybe empty), the row
    that comes first in the layout's order (:func:`.items_from_labels`)."""
    if not len(row):
        return first
    if first is None:
        return row
    both = pd.concat([first, row])
    return both.loc[[items_from_labels(both)[0].index]]


def _write_sequences(labels: TypedRows, folder: Path, fps: float) -> None:
    """One video per smooth path (``synth-va --path``): its frames in order.

    A path with a failed or rejected frame gets no video (a gap would put every later frame
    out of step with its label); the log names it. The rows come a face at a time (a path
    is one face's), so what is held is one face's path rows and one path's frames.
    """
    faces = RowGroups(
        labels,
        FACE_KEY,
        ("sequence", "sample", "frame", "output_path"),
        where=lambda batch: batch["sequence"].notna(),
    )
    for face in faces:
        image_path, face_index = face.iloc[0][list(FACE_KEY)]
        for (sequence, sample), path in face.groupby(["sequence", "sample"], sort=True):
            stem = sample_name(image_path, int(face_index), str(sequence), int(sample))
            if not (path["status"] == "ok").all():
                log.warning("%s: not every frame of the path was made; no video written", stem)
                continue
            frames = [read_image(p) for p in path.sort_values("frame")["output_path"]]
            write_video(folder / f"{stem}.mp4", frames, fps)


def _write_placed_labels(labels: TypedRows, csv: Path, placed: PlacedPaths) -> None:
    """``labels.csv`` and the labels manifest with each row's ``layout_path``, in one pass.

    The new manifest's parts are staged beside the old one (whose parts are being read), a
    batch at a time, and take its place when all are written: the first voids the old parts,
    as :func:`.write_manifest` does. The CSV follows.
    """
    meta = labels.meta
    provenance = {
        "params": meta["params"],
        "seed": meta.get("seed"),
        "face_model_id": meta.get("face_model_id"),
    }
    with (
        tempfile.TemporaryDirectory(prefix=".labels-", dir=labels.path.parent) as folder,
        csv_appender(csv, LABELS.names) as append,
    ):
        staged = []
        for batch in labels.batches():
            batch["layout_path"] = placed.fill(batch.index, batch["layout_path"])
            append(batch)
            staged.append(Path(folder) / f"{len(staged):08d}")
            write_manifest(staged[-1], batch.reset_index(drop=True), LABELS, **provenance)
        if not staged:  # a manifest without rows stays one, as write_manifest leaves it
            staged.append(Path(folder) / "empty")
            write_manifest(staged[-1], pd.DataFrame(columns=LABELS.names), LABELS, **provenance)
        parts = [part for stage in staged for part in live_parts(stage)]
        for number, part in enumerate(parts):
            write_part(labels.path, read_parts([part])[0], replaces=number == 0)
        remove_void_parts(labels.path)
