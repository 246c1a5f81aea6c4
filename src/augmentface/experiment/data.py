"""The frames of an experiment, streamed from the workdir's manifests: real frames from
``fits.parquet`` (labels from the dataset), augmented ones from ``output/labels.parquet``
(labels from the target), each with the anchor points of its fit's landmarks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augmentface.datasets.schema import DISFA_AUS, SOURCES
from augmentface.errors import UsageError
from augmentface.experiment.crops import anchor_points
from augmentface.manifest_stream import iter_manifest, read_columns
from augmentface.stages.schemas import AU_NAMES, FITS, LABELS

#: The kinds of experiment: AU intensities, valence/arousal.
KINDS: tuple[str, ...] = ("au", "va")
#: The VA targets: (name, fits label column, augmented labels column).
_VA_TARGETS = (("valence", "label_valence", "valence"), ("arousal", "label_arousal", "arousal"))


@dataclass
class Frames:
    """N frames: references, subjects, (N, 3, 2) anchors (px), (N, T) labels."""

    refs: list[str]
    subjects: np.ndarray
    anchors: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.refs)


@dataclass
class ExperimentData:
    """Real and augmented frames, the target names, the dataset and its splits."""

    real: Frames
    augmented: Frames
    targets: tuple[str, ...]
    dataset: str
    splits: dict[str, str]


def _au_targets() -> tuple[tuple[str, str, str], ...]:
    return tuple((f"AU{n}", f"label_AU{n}", f"AU{n}") for n in DISFA_AUS if f"AU{n}" in AU_NAMES)


def _frames(refs: list, subjects: list, anchors: list, labels: list, t: int) -> Frames:
    return Frames(
        refs,
        np.asarray(subjects, dtype=object),
        np.asarray(anchors, dtype=np.float64).reshape(-1, 3, 2),
        np.asarray(labels, dtype=np.float64).reshape(-1, t),
    )


def load_data(workdir: Path, kind: str) -> ExperimentData:
    """Stream the workdir's fits and augmented labels into :class:`ExperimentData`.

    Targets are the dataset's labels that some real frame has (AU: DISFA's 12 AUs the rig
    has, FACS 0–5; VA: valence, arousal in [-1, 1]); a frame missing one of them is left out.

    Parameters
    ----------
    workdir : holds ``fits.parquet`` (real frames, with landmarks and dataset labels) and,
        when augmented, ``output/labels.parquet``; ``sources.parquet`` gives the splits.
    kind : 'au' or 'va' (:data:`KINDS`).

    Returns
    -------
    ExperimentData
        Real frames (ok fits with every target labelled) and augmented frames (ok outputs of
        a fitted face; AU: of kind 'au' or 'transfer'), each with (N, 3, 2) anchors (px) and
        (N, T) labels.

    Raises
    ------
    UsageError, MissingManifestError
        No fits, or no labelled real frame.
    """
    if kind not in KINDS:
        raise UsageError(f"experiment kind must be one of {', '.join(KINDS)}, got {kind!r}")
    spec = _au_targets() if kind == "au" else _VA_TARGETS
    label_columns = [s[1] for s in spec]
    anchors_by_key: dict[tuple[str, int], np.ndarray] = {}
    refs, subjects, anchors, labels, datasets = [], [], [], [], set()
    columns = ["image_path", "face_index", "subject_id", "dataset", "landmarks_px", *label_columns]
    for batch in iter_manifest(workdir / "fits.parquet", FITS, columns=columns,
                               run_first="augmentface fit3dmm", ok_only=True):  # fmt: skip
        values = batch[label_columns].to_numpy(dtype=np.float64)
        for i, row in enumerate(batch.itertuples(index=False)):
            points = anchor_points(row.landmarks_px)
            anchors_by_key[(row.image_path, int(row.face_index))] = points
            refs.append(row.image_path)
            subjects.append(str(row.subject_id))
            anchors.append(points)
            labels.append(values[i])
            datasets.add(row.dataset)
    real = _frames(refs, subjects, anchors, labels, len(spec))
    present = np.isfinite(real.labels).any(axis=0) & (np.nanstd(real.labels, axis=0) > 0)
    if not present.any():
        raise UsageError(f"{workdir / 'fits.parquet'}: no frame has {kind.upper()} labels")
    spec = tuple(s for s, p in zip(spec, present, strict=True) if p)
    keep = np.isfinite(real.labels[:, present]).all(axis=1)
    real = Frames(
        [r for r, k in zip(real.refs, keep, strict=True) if k],
        real.subjects[keep],
        real.anchors[keep],
        real.labels[keep][:, present],
    )
    augmented = _augmented(workdir, kind, spec, anchors_by_key)
    return ExperimentData(
        real, augmented, tuple(s[0] for s in spec), "+".join(sorted(datasets)), _splits(workdir)
    )


def _augmented(
    workdir: Path, kind: str, spec: tuple, anchors_by_key: dict[tuple[str, int], np.ndarray]
) -> Frames:
    path = workdir / "output" / "labels.parquet"
    refs, subjects, anchors, labels = [], [], [], []
    if path.exists():
        names = [s[2] for s in spec]
        columns = ["image_path", "face_index", "subject_id", "output_path", "kind", *names]
        for batch in iter_manifest(path, LABELS, columns=columns, run_first="augmentface blend",
                                   ok_only=True):  # fmt: skip
            values = batch[names].to_numpy(dtype=np.float64)
            for i, row in enumerate(batch.itertuples(index=False)):
                key = (row.image_path, int(row.face_index))
                if key not in anchors_by_key or not np.isfinite(values[i]).all():
                    continue
                if kind == "au" and row.kind not in ("au", "transfer"):
                    continue
                refs.append(row.output_path)
                subjects.append(str(row.subject_id))
                anchors.append(anchors_by_key[key])
                labels.append(values[i])
    return _frames(refs, subjects, anchors, labels, len(spec))


def _splits(workdir: Path) -> dict[str, str]:
    """subject -> the dataset's split (Aff-Wild2's train/validation), from sources.parquet."""
    path = workdir / "sources.parquet"
    if not path.exists():
        return {}
    table = read_columns(path, SOURCES, ["subject_id", "split"], "augmentface import")
    table = table.dropna(subset=["split"])
    return {str(s): str(v) for s, v in zip(table["subject_id"], table["split"], strict=True)}
