"""Stage ``blend``: put each rendered face into its photo; write the images and the labels."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augmentface.blend import BLEND_METHODS, BlendMethod, blend_face
from augmentface.errors import UpstreamRowError, UsageError
from augmentface.expression.source_residual import RESIDUAL_LIMIT, label_conflict
from augmentface.face.detect import DetectConfig, FaceLandmarker
from augmentface.imageio import write_image_atomic
from augmentface.manifest import STATUS_OK, read_checked_meta
from augmentface.manifest_index import KeySet, ManifestIndex, column_values
from augmentface.metrics.measure import OutputMeasurer, QualityGates
from augmentface.render.crop_file import read_crop
from augmentface.source_check import SOURCE_COLUMNS, check_source, fit_fingerprint
from augmentface.stages import render as render_stage
from augmentface.stages.common import (
    DEFAULT_WORKDIR,
    LABELS_FILE,
    RENDERS_FILE,
    TARGETS_FILE,
    StageReport,
    file_digest,
    resolved_folder,
    sample_name,
)
from augmentface.stages.execution import Execution, cached
from augmentface.stages.export_outputs import (
    AU_LABELLED_KINDS,
    ExportOutputsConfig,
    refuse_overwriting_sources,
    run_export_outputs,
)
from augmentface.stages.lineage import FIT_FIRST, upstream_path
from augmentface.stages.render import (
    BUILTIN_DETAILS,
    FaceRenderer,
    RenderInputs,
    last_frame,
    rendered_columns,
    targets_with_fits,
)
from augmentface.stages.runner import Outcome, Stage, attempt, run_stage
from augmentface.stages.schemas import AU_NAMES, FITS, LABELS, RENDERS, TARGETS

#: Columns copied from the target to the label row.
LABEL_COLUMNS = (
    "subject_id",
    "clip_id",
    "sequence",
    "frame",
    "kind",
    *AU_NAMES,
    "valence",
    "arousal",
    "va_class",
    "emotion",
    "emotion_intensity",
)


@dataclass(frozen=True)
class BlendConfig:
    """Settings of the blend stage (see ``augmentface blend --help``).

    With ``from_targets`` it renders each target itself (``details`` as
    :class:`.RenderConfig`'s) and composites it at once: no render stage, no crop files;
    the outputs are the bytes a render then a blend write.
    """

    workdir: Path = DEFAULT_WORKDIR
    renders: Path | None = None  # default: <workdir>/renders.parquet
    from_targets: bool = False
    targets: Path | None = None  # with from_targets; default: <workdir>/targets.parquet
    details: str | Path | None = BUILTIN_DETAILS  # with from_targets
    output: Path | None = None  # default: <workdir>/output
    method: BlendMethod = "alpha"
    image_format: str = "jpg"
    jpeg_quality: int = 95
    gates: QualityGates = field(default_factory=QualityGates)
    #: Reject an output when the photo's own expression survives in it by at least this much
    #: (FACS units) against its label (:func:`.label_conflict`); None keeps every output.
    max_source_residual: float | None = RESIDUAL_LIMIT
    keep_rejected: bool = False
    #: The shorthand for ``export-layout`` after blending (:class:`.ExportOutputsConfig`):
    #: a dataset layout, its root, and the frame rate of smooth paths' videos. They change
    #: no output, so a changed layout never redoes the blending.
    layout: str | None = None
    layout_root: Path | None = None
    fps: float = 25.0
    quiet: bool = False
    execution: Execution = field(default_factory=Execution)

    def outputs(self) -> ExportOutputsConfig:
        """The ``export-layout`` settings of this run."""
        return ExportOutputsConfig(
            workdir=self.workdir,
            output=self.output,
            layout=self.layout,
            layout_root=self.layout_root,
            fps=self.fps,
        )

    def __post_init__(self) -> None:
        self.outputs()  # validates the layout and the frame rate
        if self.method not in BLEND_METHODS:
            raise UsageError(
                f"unknown blend method {self.method!r}; allowed: {', '.join(BLEND_METHODS)}"
            )
        if self.image_format not in ("jpg", "png", "webp"):
            raise UsageError(f"image format must be jpg, png or webp, not {self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise UsageError(f"jpeg quality must be in 1–100, got {self.jpeg_quality}")
        if self.max_source_residual is not None and not self.max_source_residual > 0:
            raise UsageError(
                f"max source residual must be > 0 (FACS units), got {self.max_source_residual}"
            )


def residual_conflict(target: dict, au_numbers, limit: float | None) -> list[str]:
    """The label conflict of one target row's source residual, as a rejection reason list."""
    if limit is None:
        return []
    emotion = target.get("emotion")
    conflict = label_conflict(
        target["source_residual"],
        target["au_intensities"],
        au_numbers,
        valence=np.nan if target.get("valence") is None else float(target["valence"]),
        emotion=emotion if isinstance(emotion, str) else None,
        au_labelled=target.get("kind") in AU_LABELLED_KINDS,
        limit=limit,
    )
    return [] if conflict is None else [conflict]


@dataclass(frozen=True)
class BlendTask:
    """blend's work on a few renders: each item holds the render row (or, with a
    ``renderer``, the target row to render), its ``target`` row and its ``fit`` row."""

    config: BlendConfig
    out_dir: Path
    blendshape_names: tuple[str, ...] | None  # the fits' (quality gates only)
    renderer: FaceRenderer | None = None  # renders each target here (blend --from-targets)

    def __call__(self, items: Sequence[dict[str, Any]]) -> list[Outcome]:
        measurer = None
        if self.config.gates.active:
            landmarker = cached(
                "gate landmarker", lambda: FaceLandmarker(DetectConfig(max_faces=4)).__enter__()
            )
            measurer = OutputMeasurer(landmarker, self.blendshape_names)
        work = functools.partial(self.blend, measurer=measurer)
        return [attempt(work, item, item["image_path"]) for item in items]

    def blend(self, item: dict[str, Any], measurer: OutputMeasurer | None) -> list[dict]:
        config = self.config
        key = {k: item[k] for k in LABELS.key}
        target = item["target"]
        label = {c: target[c] for c in LABEL_COLUMNS}
        if self.renderer is not None:
            rendered = self.renderer(target, item["fit"])  # checks the fit and the source
            crop, alpha, render = rendered.image_rgb, rendered.alpha, rendered_columns(rendered)
        else:
            if item["fit"] is None or item["fit"]["status"] != STATUS_OK:
                raise UpstreamRowError(f"{item['image_path']}: its face has no finished fit")
            check_source(item["image_path"], fit_fingerprint(item["fit"]))
            crop, alpha = read_crop(item["render_path"])
            render = item
        roi = tuple(int(v) for v in render["roi_px"])
        image = blend_face(last_frame(item["image_path"]), crop, alpha, roi, config.method)
        au_numbers = tuple(int(name[2:]) for name in AU_NAMES)
        rejected = residual_conflict(target, au_numbers, config.max_source_residual)
        if measurer is not None:
            lossless = config.image_format == "png"
            metrics = measurer.measure(image, item["fit"], render, alpha, lossless)
            requested = [int(n[2:]) for n in AU_NAMES if label[n] and label[n] > 0]
            rejected += config.gates.reasons(metrics, requested)
        file = self.out_dir / ("rejected" if rejected else "images")
        file = file / f"{sample_name(**key)}.{config.image_format}"
        kept = not rejected or config.keep_rejected
        if kept:
            # synced with its manifest part (ManifestWriter's synced_column), not one by one
            write_image_atomic(file, image, jpeg_quality=config.jpeg_quality, durable=False)
        row = {
            **key,
            **label,
            "output_path": str(resolved_folder(file.parent) / file.name) if kept else None,
            "method": config.method,
            "seed": item["seed"],
            "status": "rejected" if rejected else "ok",
            "error": "; ".join(rejected) if rejected else None,
        }
        return [row]


#: The target columns blend uses: the label and what its residual check reads.
TARGET_COLUMNS_USED = (*TARGETS.key, *LABEL_COLUMNS, "au_intensities", "source_residual")


#: The fits columns blend uses without quality gates (which use every column).
FIT_COLUMNS_USED = ("status", *SOURCE_COLUMNS)


def _blend_items(
    renders_path: Path, targets_path: Path, fits_path: Path, gates: bool, seed: int | None
) -> Iterator[dict[str, Any]]:
    """The ``ok`` render rows, streamed in the renders' order, each with its ``target`` row
    and its ``fit`` row (its source's fingerprint; every column for the quality gates)."""
    targets = ManifestIndex(targets_path, TARGETS, TARGET_COLUMNS_USED)
    fits = ManifestIndex(fits_path, FITS, FITS.names if gates else FIT_COLUMNS_USED)
    for render in ManifestIndex(renders_path, RENDERS, RENDERS.names).rows():
        if render["status"] != STATUS_OK:
            continue
        key = tuple(render[k] for k in TARGETS.key)
        face = fits.get(key[:2])
        yield {**render, "target": targets.get(key), "fit": face, "seed": seed}


def _target_items(
    targets_path: Path, fits_path: Path, gates: bool, seed: int | None
) -> Iterator[dict[str, Any]]:
    """The ``ok`` target rows, streamed in the targets' order, each as its own ``target`` row
    with its ``fit`` row (what a render reads; every column for the quality gates)."""
    target_columns = dict.fromkeys((*render_stage.TARGET_COLUMNS_USED, *TARGET_COLUMNS_USED))
    fit_columns = FITS.names if gates else render_stage.FIT_COLUMNS_USED
    for item in targets_with_fits(targets_path, fits_path, tuple(target_columns), fit_columns):
        yield {**item, "target": item, "seed": seed}


def _failure_rows(item: dict[str, Any], status: str, message: str) -> list[dict[str, Any]]:
    label = {c: item["target"][c] for c in LABEL_COLUMNS}
    return [{**{k: item[k] for k in LABELS.key}, **label, "status": status, "error": message}]


def run_blend(config: BlendConfig | None = None) -> StageReport:
    """Blend every render; write ``<output>/images/`` and ``<output>/labels.parquet`` + ``.csv``.

    An output whose source residual contradicts its label (``max_source_residual``), or with
    quality gates set one whose measurements fail them, is recorded with status ``rejected``
    and its reasons, and written to ``<output>/rejected/`` only with ``keep_rejected``.

    Then, unless it is a shard, it runs ``export-layout`` (:func:`.run_export_outputs`:
    the CSV, the videos, the layout). A shard's run writes its outputs and label rows only:
    the rest needs every shard, and is written by ``export-layout`` (or a blend without a
    shard, which resumes every row) once they are all done.
    """
    config = config or BlendConfig()
    workdir = Path(config.workdir)
    out_dir = config.outputs().out_dir
    path = out_dir / LABELS_FILE
    if config.from_targets:
        inputs = RenderInputs.resolve(
            Path(config.targets or workdir / TARGETS_FILE), config.details
        )
        targets_path, targets, fits_path = inputs.targets_path, inputs.targets, inputs.fits_path
        upstream, rows_path, rows_schema = inputs.params, targets_path, TARGETS
        face_model_id, renderer = inputs.model.model_id, inputs.renderer
    else:
        renders_path = Path(config.renders or workdir / RENDERS_FILE)
        renders = read_checked_meta(renders_path, RENDERS, run_first="augmentface render")
        targets_path = upstream_path(renders, "targets", renders_path)
        targets = read_checked_meta(
            targets_path, TARGETS, run_first="augmentface synth-au or augmentface synth-va"
        )
        fits_path = upstream_path(targets, "fits", targets_path)
        upstream = {
            "renders": str(renders_path.resolve()),
            # Any change of the upstream rows (a part replaced or added) starts blend afresh.
            "renders_digest": file_digest(renders_path),
        }
        rows_path, rows_schema = renders_path, RENDERS
        face_model_id, renderer = renders.get("face_model_id"), None
    root = config.outputs().root()
    if root is not None:  # refused before any blending, not after
        refuse_overwriting_sources(root, set(column_values(rows_path, "image_path")))
    params = {
        **upstream,
        "labels_digest": file_digest(targets_path),
        "method": config.method,
        "image_format": config.image_format,
        "jpeg_quality": config.jpeg_quality,
        "gates": asdict(config.gates),
        "max_source_residual": config.max_source_residual,
        "keep_rejected": config.keep_rejected,
    }
    fits = read_checked_meta(fits_path, FITS, run_first=FIT_FIRST)
    blendshape_names = None
    if config.gates.active:
        blendshape_names = tuple(fits["params"]["blendshape_names"])
    seed = targets.get("seed")
    stage = Stage(
        name="blend",
        schema=LABELS,
        path=path,
        params=params,
        seed=seed,
        face_model_id=face_model_id,
        task=BlendTask(config, out_dir, blendshape_names, renderer),
        image_of=lambda item: item["image_path"],
        resume_key=lambda item: tuple(item[k] for k in LABELS.key),
        failure_rows=_failure_rows,
        file_column="output_path",
        every_n=1000,
        # ~1.5 ms an item, ~3.5 ms rendered here (--from-targets): 0.4-0.9 s a task. Each task
        # costs the driver ~13 ms whatever it holds; 64 items a task cost it ~1 s more CPU
        # over 12,000 (two workers, beside them on two cores).
        rows_per_task=256,
    )
    total = len(KeySet(rows_path, rows_schema))  # the ok renders (targets)
    if config.from_targets:
        items = _target_items(targets_path, fits_path, config.gates.active, seed)
    else:
        items = _blend_items(renders_path, targets_path, fits_path, config.gates.active, seed)
    report = run_stage(stage, items, config.execution, config.quiet, total=total)
    if config.execution.shard is None:
        run_export_outputs(config.outputs())
    return report
