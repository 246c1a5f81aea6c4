"""``export-layout``: what needs every output of blend at once, written after it.

Blend composites and labels one output at a time (in shards, on Dask workers); what needs
them all is done here, once, from its labels manifest: ``labels.csv``, the videos of smooth
paths (``synth-va --path``) and, with a layout, the outputs in a dataset's own layout and
label format. ``blend`` without ``--shard`` runs it at the end (``blend --layout`` is the
shorthand); after array jobs, run it once when every blend shard is done.

Nothing here reads the manifest whole (:mod:`augmentface.manifest_groups`: typed batches of
the needed columns, rows grouped by key): the CSV is appended a batch at a time, the videos
and the layout take a face's or a subject's rows at a time, and where the layout put each row
is kept on disk until the labels are rewritten. ``evaluate`` streams its manifests the same way.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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
from augmentface.manifest import write_manifest
from augmentface.manifest_groups import RowGroups, TypedRows, csv_appender, write_csv
from augmentface.manifest_index import ManifestIndex
from augmentface.manifest_parts import (
    WriterLock,
    live_parts,
    read_parts,
    remove_void_parts,
    write_part,
)
from augmentface.stages.common import DEFAULT_WORKDIR, LABELS_FILE, OUTPUT_DIR, log, sample_name
from augmentface.stages.lineage import find_upstream, upstream_path
from augmentface.stages.render import TargetLandmarks
from augmentface.stages.schemas import AU_NAMES, LABELS, RENDERS
from augmentface.video import write_video

#: A renders manifest's index, or the same column computed from targets and fits.
TargetLandmarksLookup = ManifestIndex | TargetLandmarks

SEQUENCES_DIR = "sequences"

#: Targets whose AU columns are labels someone asked for; VA and emotion targets get their AUs
#: from a prior or a model reading, which a dataset's AU files must not present as ground truth.
AU_LABELLED_KINDS = ("au", "transfer")

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
            _write_layout(labels, _target_landmarks(labels.meta, path), config.layout, root, placed)
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


def _target_landmarks(meta: dict[str, Any], path: Path) -> TargetLandmarksLookup:
    """Where a layout finds each output's target landmarks (``target_ibug68_px``): the renders
    manifest the labels name or, for outputs blended straight from the targets (no renders
    manifest), computed from the targets and their fits."""
    if "renders" in meta.get("params", {}):
        renders = upstream_path(meta, "renders", path)
        return ManifestIndex(renders, RENDERS, ["target_ibug68_px"])
    targets = upstream_path(meta, "targets", path)
    return TargetLandmarks(targets, find_upstream(meta, path, "fits"))


def _as_layout_rows(batch: pd.DataFrame, renders: TargetLandmarksLookup) -> pd.DataFrame:
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
    labels: TypedRows,
    renders: TargetLandmarksLookup,
    layout: str,
    root: Path,
    placed: PlacedPaths,
) -> None:
    """Write the finished outputs in a dataset's layout, a subject at a time, and record in
    ``placed`` where each one went.

    The rows are checked first, in a pass of their own, so that nothing is written when the
    layout refuses them. Then each subject's rows are written, subjects in order: a dataset's
    label files are per subject, and :func:`.write_layout` orders the items by subject first,
    so the files are those it writes from every row at once.
    """
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
    labels: TypedRows,
    renders: TargetLandmarksLookup,
    layout: str,
    root: Path,
    columns: Sequence[str],
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
