"""Stage ``blend``: put each rendered face into its photo; write the images and the labels."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augmentface.atomic import atomic_write_text
from augmentface.blend import BLEND_METHODS, BlendMethod, blend_face
from augmentface.datasets.frames import parse_frame_ref
from augmentface.datasets.layouts import LAYOUTS, write_layout
from augmentface.errors import UsageError
from augmentface.expression.source_residual import RESIDUAL_LIMIT, label_conflict
from augmentface.face.detect import DetectConfig, FaceLandmarker
from augmentface.imageio import read_image, write_image_atomic
from augmentface.manifest import STATUS_OK, read_checked_meta, read_manifest, write_manifest
from augmentface.manifest_index import KeySet, ManifestIndex, column_values
from augmentface.metrics.measure import OutputMeasurer, QualityGates
from augmentface.render.crop_file import read_crop
from augmentface.stages.common import (
    DEFAULT_WORKDIR,
    LABELS_FILE,
    OUTPUT_DIR,
    RENDERS_FILE,
    StageReport,
    file_digest,
    log,
    sample_name,
)
from augmentface.stages.execution import Execution, cached
from augmentface.stages.lineage import FIT_FIRST, upstream_path
from augmentface.stages.render import last_frame
from augmentface.stages.runner import Outcome, Stage, attempt, run_stage
from augmentface.stages.schemas import AU_NAMES, FITS, LABELS, RENDERS, TARGETS
from augmentface.video import write_video

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
SEQUENCES_DIR = "sequences"


@dataclass(frozen=True)
class BlendConfig:
    """Settings of the blend stage (see ``augmentface blend --help``)."""

    workdir: Path = DEFAULT_WORKDIR
    renders: Path | None = None  # default: <workdir>/renders.parquet
    output: Path | None = None  # default: <workdir>/output
    method: BlendMethod = "alpha"
    image_format: str = "jpg"
    jpeg_quality: int = 95
    gates: QualityGates = field(default_factory=QualityGates)
    #: Reject an output when the photo's own expression survives in it by at least this much
    #: (FACS units) against its label (:func:`.label_conflict`); None keeps every output.
    max_source_residual: float | None = RESIDUAL_LIMIT
    keep_rejected: bool = False
    #: Also write the outputs in a dataset's own layout ("flat", "disfa", "afew-va",
    #: "affwild2"), under ``layout_root`` (default ``<output>/<layout>``).
    layout: str | None = None
    layout_root: Path | None = None
    #: Frame rate of the videos written for smooth paths (``synth-va --path``).
    fps: float = 25.0
    quiet: bool = False
    execution: Execution = field(default_factory=Execution)

    def __post_init__(self) -> None:
        if self.layout is not None and self.layout not in LAYOUTS:
            raise UsageError(f"unknown layout {self.layout!r}; allowed: {', '.join(LAYOUTS)}")
        if not self.fps > 0:
            raise UsageError(f"fps must be > 0, got {self.fps}")
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
    """blend's work on a few renders: each item holds the render row, its ``target`` row and,
    with quality gates, its ``fit`` row."""

    config: BlendConfig
    out_dir: Path
    blendshape_names: tuple[str, ...] | None  # the fits' (quality gates only)

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
        crop, alpha = read_crop(item["render_path"])
        roi = tuple(int(v) for v in item["roi_px"])
        image = blend_face(last_frame(item["image_path"]), crop, alpha, roi, config.method)
        au_numbers = tuple(int(name[2:]) for name in AU_NAMES)
        rejected = residual_conflict(target, au_numbers, config.max_source_residual)
        if measurer is not None:
            lossless = config.image_format == "png"
            metrics = measurer.measure(image, item["fit"], item, alpha, lossless)
            requested = [int(n[2:]) for n in AU_NAMES if label[n] and label[n] > 0]
            rejected += config.gates.reasons(metrics, requested)
        file = self.out_dir / ("rejected" if rejected else "images")
        file = file / f"{sample_name(**key)}.{config.image_format}"
        kept = not rejected or config.keep_rejected
        if kept:
            write_image_atomic(file, image, jpeg_quality=config.jpeg_quality)
        row = {
            **key,
            **label,
            "output_path": str(file.resolve()) if kept else None,
            "method": config.method,
            "seed": item["seed"],
            "status": "rejected" if rejected else "ok",
            "error": "; ".join(rejected) if rejected else None,
        }
        return [row]


#: The target columns blend uses: the label and what its residual check reads.
TARGET_COLUMNS_USED = (*TARGETS.key, *LABEL_COLUMNS, "au_intensities", "source_residual")


def _blend_items(
    renders_path: Path, targets_path: Path, fits_path: Path | None, seed: int | None
) -> Iterator[dict[str, Any]]:
    """The ``ok`` render rows, streamed in the renders' order, each with its ``target`` row
    and (quality gates only, else None) its ``fit`` row."""
    targets = ManifestIndex(targets_path, TARGETS, TARGET_COLUMNS_USED)
    fits = None if fits_path is None else ManifestIndex(fits_path, FITS, FITS.names)
    for render in ManifestIndex(renders_path, RENDERS, RENDERS.names).rows():
        if render["status"] != STATUS_OK:
            continue
        key = tuple(render[k] for k in TARGETS.key)
        face = None if fits is None else fits.get(key[:2])
        yield {**render, "target": targets.get(key), "fit": face, "seed": seed}


def _failure_row(item: dict[str, Any], status: str, message: str) -> dict[str, Any]:
    label = {c: item["target"][c] for c in LABEL_COLUMNS}
    return {**{k: item[k] for k in LABELS.key}, **label, "status": status, "error": message}


def run_blend(config: BlendConfig | None = None) -> StageReport:
    """Blend every render; write ``<output>/images/`` and ``<output>/labels.parquet`` + ``.csv``.

    An output whose source residual contradicts its label (``max_source_residual``), or with
    quality gates set one whose measurements fail them, is recorded with status ``rejected``
    and its reasons, and written to ``<output>/rejected/`` only with ``keep_rejected``.

    A shard's run (``config.execution.shard``) writes its outputs and label rows only; the
    CSV, the layout and the videos need every shard, and are written by a run without a shard
    once they are all done (it resumes every row, so it only finishes).
    """
    config = config or BlendConfig()
    workdir = Path(config.workdir)
    renders_path = Path(config.renders or workdir / RENDERS_FILE)
    renders = read_checked_meta(renders_path, RENDERS, run_first="augmentface render")
    targets_path = upstream_path(renders, "targets", renders_path)
    targets = read_checked_meta(
        targets_path, TARGETS, run_first="augmentface synth-au or augmentface synth-va"
    )
    out_dir = Path(config.output or workdir / OUTPUT_DIR)
    path = out_dir / LABELS_FILE
    layout_root = None
    if config.layout is not None:
        layout_root = Path(config.layout_root or out_dir / config.layout).resolve()
        _refuse_overwriting_sources(layout_root, set(column_values(renders_path, "image_path")))
    params = {
        "renders": str(renders_path.resolve()),
        # Any change of the upstream rows (a part replaced or added) starts blend afresh.
        "renders_digest": file_digest(renders_path),
        "labels_digest": file_digest(targets_path),
        "layout": config.layout,
        "layout_root": None if layout_root is None else str(layout_root),
        "method": config.method,
        "image_format": config.image_format,
        "jpeg_quality": config.jpeg_quality,
        "gates": asdict(config.gates),
        "max_source_residual": config.max_source_residual,
        "keep_rejected": config.keep_rejected,
        "fps": config.fps,
    }
    fits_path, blendshape_names = None, None
    if config.gates.active:
        fits_path = upstream_path(targets, "fits", targets_path)
        fits = read_checked_meta(fits_path, FITS, run_first=FIT_FIRST)
        blendshape_names = tuple(fits["params"]["blendshape_names"])
    seed = targets.get("seed")
    stage = Stage(
        name="blend",
        schema=LABELS,
        path=path,
        params=params,
        seed=seed,
        face_model_id=renders.get("face_model_id"),
        task=BlendTask(config, out_dir, blendshape_names),
        image_of=lambda item: item["image_path"],
        resume_key=lambda item: tuple(item[k] for k in LABELS.key),
        failure_row=_failure_row,
        every_n=1000,
    )
    total = len(KeySet(renders_path, RENDERS))  # the ok renders
    items = _blend_items(renders_path, targets_path, fits_path, seed)
    report = run_stage(stage, items, config.execution, config.quiet, total=total)
    if config.execution.shard is not None:
        return report
    finished = read_manifest(path, LABELS, run_first="augmentface blend")
    if config.layout is not None and layout_root is not None:
        _write_layout(path, finished, renders_path, config.layout, layout_root)
    _write_sequences(finished.df, out_dir / SEQUENCES_DIR, config.fps)
    atomic_write_text(path.with_suffix(".csv"), finished.df.to_csv(index=False))
    return report


def _refuse_overwriting_sources(root: Path, image_paths) -> None:
    """A layout written where the source dataset lies would replace its files: refuse."""
    for ref in sorted(set(image_paths)):
        source = parse_frame_ref(ref)[0].resolve()
        if source.is_relative_to(root):
            raise UsageError(
                f"layout root {root} holds the source {source}; writing the layout there would "
                "replace the dataset's own files: choose another --layout-root"
            )


#: Targets whose AU columns are labels someone asked for; VA and emotion targets get their AUs
#: from a prior or a model reading, which a dataset's AU files must not present as ground truth.
AU_LABELLED_KINDS = ("au", "transfer")


def _write_layout(labels_path: Path, manifest, renders_path: Path, layout: str, root: Path) -> None:
    """Write the finished outputs in a dataset's layout and record where each one went
    (``manifest.df`` and the file at ``labels_path`` both get the ``layout_path`` column)."""
    labels = manifest.df
    ok = labels[(labels["status"] == "ok") & labels["output_path"].notna()].copy()
    ok.loc[~ok["kind"].isin(AU_LABELLED_KINDS), list(AU_NAMES)] = np.nan
    renders = ManifestIndex(renders_path, RENDERS, ["target_ibug68_px"])
    ok["ibug68_px"] = [
        (renders.get(key) or {}).get("target_ibug68_px")
        for key in ok[list(LABELS.key)].itertuples(index=False, name=None)
    ]
    written = write_layout(layout, ok, root)
    labels.loc[written.index, "layout_path"] = written["frame_ref"].where(
        written["frame_ref"].notna(), written["written_path"]
    )
    meta = manifest.meta
    write_manifest(
        labels_path,
        labels,
        LABELS,
        params=meta["params"],
        seed=meta.get("seed"),
        face_model_id=meta.get("face_model_id"),
    )


def _write_sequences(labels, folder: Path, fps: float) -> None:
    """One video per smooth path (``synth-va --path``): its frames in order.

    A path with a failed or rejected frame gets no video (a gap would put every later frame
    out of step with its label); the log names it.
    """
    paths = labels[labels["sequence"].notna()]
    for (image_path, face, sequence, sample), group in paths.groupby(
        ["image_path", "face_index", "sequence", "sample"], sort=True
    ):
        stem = sample_name(image_path, int(face), str(sequence), int(sample))
        if not (group["status"] == "ok").all():
            log.warning("%s: not every frame of the path was made; no video written", stem)
            continue
        frames = [read_image(p) for p in group.sort_values("frame")["output_path"]]
        write_video(folder / f"{stem}.mp4", frames, fps)
