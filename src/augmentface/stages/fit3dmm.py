"""Stage ``fit3dmm``: images -> faces -> fitted face model, one row per face."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from augmentface.datasets.frames import read_frame
from augmentface.datasets.schema import RUN_FIRST as SOURCES_FIRST
from augmentface.datasets.schema import SOURCES
from augmentface.errors import OutsideRootError, RowError, UsageError
from augmentface.face.detect import (
    BLENDSHAPE_NAMES,
    DetectConfig,
    FaceDetection,
    RecyclingLandmarker,
)
from augmentface.face.fit_image import Detector, fit_image
from augmentface.face.fitting import FitConfig
from augmentface.face.landmarker_model import locate_landmarker
from augmentface.face.model import FaceModel, load_face_model
from augmentface.imageio import DEFAULT_MAX_PIXELS, list_images, manifest_text, not_utf8_error
from augmentface.manifest import STATUS_OK, read_checked_meta
from augmentface.manifest_index import ManifestIndex
from augmentface.source_check import check_source, fingerprint
from augmentface.stages.common import (
    DEFAULT_WORKDIR,
    FITS_FILE,
    SOURCES_FILE,
    StageReport,
    file_digest,
)
from augmentface.stages.execution import Execution, cached
from augmentface.stages.runner import Outcome, Stage, attempt, run_stage
from augmentface.stages.schemas import AU_NAMES, FITS, SOURCE_LABEL_COLUMNS


@dataclass(frozen=True)
class Fit3dmmConfig:
    """Settings of the fit3dmm stage (see ``augmentface fit3dmm --help``)."""

    workdir: Path = DEFAULT_WORKDIR
    all_faces: bool = False
    proposals: Literal["auto", "always", "never"] = "auto"
    landmarker: Path | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    #: Seconds an image's face search (proposals and tiles) may take; then status ``timeout``.
    time_budget_s: float = DetectConfig.time_budget_s
    fit: FitConfig = field(default_factory=FitConfig)
    quiet: bool = False
    #: MediaPipe's landmarker leaks memory over long runs; it is closed and reopened after
    #: this many images (and Dask replaces whole workers: ``Execution.worker_lifetime_s``).
    recycle_every: int = 1000
    #: Where the images are fitted: in this process, on Dask, or one shard.
    execution: Execution = field(default_factory=Execution)
    #: A source manifest written by ``augmentface import`` (frames, subjects, labels); used
    #: instead of image paths. Default when no images are given: ``<workdir>/sources.parquet``.
    sources: Path | None = None

    def __post_init__(self) -> None:
        if self.recycle_every < 1:
            raise UsageError(f"recycle_every must be >= 1, got {self.recycle_every}")


@dataclass(frozen=True)
class FaceSource:
    """One image to fit: its frame reference and what its dataset says about it."""

    image_path: str  # a still's path or a video frame reference (augmentface.datasets.frames)
    subject_id: str
    dataset: str = "images"
    clip_id: str | None = None
    frame_index: int = -1
    labels: Mapping[str, Any] = field(default_factory=dict)  # SOURCE_LABEL_COLUMNS present
    #: The error the row gets without the file being opened (import's ``outside_root``, a
    #: name no manifest can record), else None.
    refused: RowError | None = None

    def columns(self) -> dict[str, Any]:
        """The manifest columns that describe the source, for every row of its image."""
        return {
            "image_path": self.image_path,
            "dataset": self.dataset,
            "subject_id": self.subject_id,
            "clip_id": self.clip_id,
            "frame_index": self.frame_index,
            **self.labels,
        }


def sources_from_paths(inputs: Sequence[str | Path]) -> list[FaceSource]:
    """Images named directly: each file is its own subject (its stem), without labels."""
    return [
        FaceSource(
            manifest_text(str(p)), subject_id=manifest_text(p.stem), refused=not_utf8_error(p)
        )
        for p in list_images(inputs)
    ]


def sources_from_manifest(path: Path) -> Iterator[FaceSource]:
    """Every frame of a source manifest (``augmentface import``), with subject and labels,
    streamed part by part.

    Frames whose labels are in doubt (status ``invalid_label``, ``label_mismatch``: a label
    file longer or shorter than its video, …) are fitted too, but without labels: the image is
    good, the labels cannot be trusted to belong to it.
    """
    columns = ("image_path", "subject_id", "dataset", "clip_id", "frame_index", "status", "error")
    for row in ManifestIndex(path, SOURCES, (*columns, *SOURCE_LABEL_COLUMNS)).rows():
        trusted = row["status"] == STATUS_OK
        yield FaceSource(
            image_path=row["image_path"],
            subject_id=row["subject_id"],
            dataset=row["dataset"],
            clip_id=row["clip_id"],
            frame_index=int(row["frame_index"]),
            labels={
                k: row[k]
                for k in SOURCE_LABEL_COLUMNS
                if trusted and row[k] is not None and not _is_nan(row[k])
            },
            refused=(
                OutsideRootError(row["error"]) if row["status"] == OutsideRootError.status else None
            ),
        )


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _face_row(source: FaceSource, index: int, n: int, shape, face: FaceDetection, fit) -> dict:
    yaw, pitch, roll = fit.head_angles_deg
    row = {
        **source.columns(),
        "face_index": index,
        "n_faces": n,
        "width_px": shape[1],
        "height_px": shape[0],
        "detection_source": face.source,
        "bbox_px": np.asarray(face.bbox_px),
        "landmarks_px": face.landmarks_px,
        "rotation": fit.rotation,
        "scale_px_per_mm": fit.scale_px_per_mm,
        "translation_px": fit.translation_px,
        "yaw_deg": yaw,
        "pitch_deg": pitch,
        "roll_deg": roll,
        "identity_offsets_model_mm": fit.identity_offsets_model_mm,
        "expression_offsets_model_mm": fit.expression_offsets_model_mm,
        "au_intensities": fit.au_intensities,
        "au_signed": fit.au_signed,
        "blendshape_scores": face.blendshape_scores,
        "status": "ok",
        "error": None,
    }
    row.update(zip(AU_NAMES, map(float, fit.au_intensities), strict=True))
    return row


def fit_source(
    source: FaceSource, detector: Detector, model: FaceModel, config: Fit3dmmConfig
) -> list[dict]:
    """Manifest rows for one image: one per face kept."""
    if source.refused is not None:
        raise source.refused  # never opened
    try:
        before = fingerprint(source.image_path)
    except OSError:
        read_frame(source.image_path, max_pixels=config.max_pixels)  # its typed error: missing…
        raise
    image = read_frame(source.image_path, max_pixels=config.max_pixels)
    fitted = fit_image(image, detector, model, config.fit, source.image_path)
    check_source(source.image_path, before)  # not replaced while it was read
    file_columns = {
        "source_size_bytes": before.size_bytes,
        "source_mtime_ns": before.mtime_ns,
        "source_digest": before.digest,
    }
    return [
        {**_face_row(source, i, len(fitted), image.shape, face, fit), **file_columns}
        for i, (face, fit) in enumerate(fitted)
    ]


@dataclass(frozen=True)
class FitTask:
    """fit3dmm's work on a few images, in any worker process (models cached per process)."""

    detect: DetectConfig
    config: Fit3dmmConfig

    def __call__(self, sources: Sequence[FaceSource]) -> list[Outcome]:
        detector = cached(
            f"landmarker {self.detect!r} {self.config.recycle_every}",
            lambda: RecyclingLandmarker(self.detect, self.config.recycle_every),
        )
        model = cached(
            f"face model {self.detect.model_path}",
            lambda: load_face_model(self.detect.model_path),
        )
        work = functools.partial(fit_source, detector=detector, model=model, config=self.config)
        return [attempt(work, source, source.image_path) for source in sources]


def _failure_rows(source: FaceSource, status: str, message: str) -> list[dict]:
    return [{**source.columns(), "face_index": 0, "status": status, "error": message}]


def run_fit3dmm(inputs: Sequence[str | Path], config: Fit3dmmConfig | None = None) -> StageReport:
    """Detect and fit every face in ``inputs`` (image files or folders) or, with
    ``config.sources`` (or no inputs and ``<workdir>/sources.parquet`` present), in every frame
    of a source manifest; write ``<workdir>/fits.parquet``.

    Resumable: images whose rows are already ``ok`` in a manifest of the same job are skipped.
    """
    config = config or Fit3dmmConfig()
    sources_path = config.sources
    if sources_path is None and not inputs:
        default = Path(config.workdir) / SOURCES_FILE
        sources_path = default if default.exists() else None
    if sources_path is not None and inputs:
        raise UsageError("give either images or a source manifest (--sources), not both")
    sources: Iterable[FaceSource]
    if sources_path is not None:
        read_checked_meta(sources_path, SOURCES, run_first=SOURCES_FIRST)
        sources = sources_from_manifest(Path(sources_path))
        total = len(ManifestIndex(Path(sources_path), SOURCES, []))  # its frames
        what: dict[str, Any] = {
            "sources": str(Path(sources_path).resolve()),
            # A re-import with other frames or labels starts fit3dmm afresh.
            "sources_digest": file_digest(sources_path),
        }
    else:
        sources = sources_from_paths(inputs)
        total = len(sources)
        what = {"inputs": [s.image_path for s in sources]}
    if not total:
        raise UsageError(
            f"no images found in {', '.join(map(str, inputs)) or sources_path or '(no inputs)'}"
        )
    landmarker_file = locate_landmarker(config.landmarker)
    model = load_face_model(landmarker_file)
    params = {
        **what,
        "all_faces": config.all_faces,
        "proposals": config.proposals,
        "max_pixels": config.max_pixels,
        "fit": asdict(config.fit),
        "landmarker": str(landmarker_file.path),
        "landmarker_sha256": landmarker_file.sha256,
        "au_names": list(AU_NAMES),
        "blendshape_names": list(BLENDSHAPE_NAMES),
    }
    detect_config = DetectConfig(
        model_path=landmarker_file.path,
        all_faces=config.all_faces,
        proposals=config.proposals,
        time_budget_s=config.time_budget_s,
    )
    stage = Stage(
        name="fit3dmm",
        schema=FITS,
        path=Path(config.workdir) / FITS_FILE,
        params=params,
        seed=None,
        face_model_id=model.model_id,
        task=FitTask(detect_config, config),
        image_of=lambda source: source.image_path,
        resume_key=lambda source: (source.image_path,),
        failure_rows=_failure_rows,
        done_key=("image_path",),  # a finished face finishes its image
        every_n=200,
    )
    return run_stage(stage, sources, config.execution, config.quiet, total=total)
