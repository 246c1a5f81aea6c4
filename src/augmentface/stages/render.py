"""Stage ``render``: deform each fitted face to its target and re-render it with its own texture."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augmentface.datasets.frames import read_frame
from augmentface.errors import UpstreamRowError, UsageError
from augmentface.face import topology as topo
from augmentface.face.model import N_MESH_VERTICES, FaceModel, identity_au_noise, load_face_model
from augmentface.frames import offsets_model_to_image
from augmentface.manifest import STATUS_OK, read_checked_meta
from augmentface.manifest_index import KeySet, ManifestIndex
from augmentface.render.crop_file import SUFFIX, write_crop
from augmentface.render.detail_maps import BUILTIN_SOURCE, builtin_detail_maps
from augmentface.render.details import (
    DetailMaps,
    DetailsInput,
    detail_weights,
    load_detail_maps,
)
from augmentface.render.face_render import RenderedFace, render_expression
from augmentface.source_check import SOURCE_COLUMNS, check_source, fit_fingerprint
from augmentface.stages.common import (
    DEFAULT_WORKDIR,
    RENDERS_DIR,
    RENDERS_FILE,
    TARGETS_FILE,
    StageReport,
    file_digest,
    resolved_folder,
    sample_name,
)
from augmentface.stages.execution import Execution, cached
from augmentface.stages.lineage import FIT_FIRST, face_model_of, upstream_path
from augmentface.stages.runner import Outcome, Stage, attempt, run_stage
from augmentface.stages.schemas import FITS, RENDERS, TARGETS

#: ``RenderConfig.details`` for the built-in detail maps.
BUILTIN_DETAILS = BUILTIN_SOURCE


@dataclass(frozen=True)
class RenderConfig:
    """Settings of the render stage (see ``augmentface render --help``).

    ``details`` chooses the expression-detail layer's maps: :data:`BUILTIN_DETAILS` (the
    default, :func:`augmentface.render.detail_maps.builtin_detail_maps`), the path of a maps
    file from ``augmentface synth-au train-details``, or None for no detail layer.
    """

    workdir: Path = DEFAULT_WORKDIR
    targets: Path | None = None  # default: <workdir>/targets.parquet
    quiet: bool = False
    details: str | Path | None = BUILTIN_DETAILS
    execution: Execution = field(default_factory=Execution)


#: The fits columns a render depends on (besides the target).
FIT_COLUMNS_USED = (
    "status",
    "landmarks_px",
    "rotation",
    "scale_px_per_mm",
    "expression_offsets_model_mm",
    "au_signed",
    *SOURCE_COLUMNS,
)


def detail_choice(
    details: str | Path | None, model: FaceModel
) -> tuple[DetailMaps | None, dict[str, str | None]]:
    """The detail maps a render uses, and the parameters that name them: the choice and the
    digest of the maps (a maps file's sha256; the built-in maps' content digest)."""
    if details is None:
        return None, {"details": None, "details_sha256": None}
    if details == BUILTIN_DETAILS:
        maps = builtin_detail_maps(model)
        return maps, {"details": BUILTIN_DETAILS, "details_sha256": maps.digest()}
    path = Path(details)
    maps = load_detail_maps(path, model)
    return maps, {"details": str(path.resolve()), "details_sha256": file_digest(path)}


def _details_input(
    maps: DetailMaps | None, model: FaceModel, target: dict[str, Any], fit: dict[str, Any]
) -> DetailsInput | None:
    if maps is None:
        return None
    noise = cached("identity AU noise", lambda: identity_au_noise(model.rig.au_numbers))
    weights = detail_weights(
        maps, model.rig.au_numbers, target["au_intensities"], fit["au_signed"], noise
    )
    return DetailsInput(maps, weights)


def last_frame(image_path: str) -> np.ndarray:
    """The decoded frame of ``image_path``, decoded once for the consecutive rows of one photo
    a worker does (its failure too: every row of a bad image reports it)."""
    held = cached("last frame", dict)
    if held.get("path") != image_path:
        held.clear()
        try:
            held.update(path=image_path, frame=read_frame(image_path))
        except Exception as exc:  # remembered, so each row of this image reports it
            held.update(path=image_path, frame=exc)
    if isinstance(held["frame"], Exception):
        raise held["frame"]
    return held["frame"]


def target_delta_px(target: dict[str, Any], fit: dict[str, Any]) -> np.ndarray:
    """(468, 3) float64: the target's expression change posed into its photo (px)."""
    return offsets_model_to_image(
        target["expression_offsets_model_mm"] - fit["expression_offsets_model_mm"],
        fit["rotation"].astype(np.float64),
        fit["scale_px_per_mm"],
    )


def target_ibug68_px(target: dict[str, Any], fit: dict[str, Any]) -> np.ndarray:
    """(68, 2) float64: the iBUG-300W points of the target face in its photo (px), as its
    render records them (``target_ibug68_px``), without rendering it."""
    source_px = np.asarray(fit["landmarks_px"], dtype=np.float64)[:N_MESH_VERTICES]
    return (source_px + target_delta_px(target, fit))[list(topo.IBUG68), :2]


def rendered_columns(rendered: RenderedFace) -> dict[str, Any]:
    """The renders-manifest columns of a render besides its key, file, status and error."""
    return {
        "roi_px": np.asarray(rendered.roi),
        "target_landmarks_px": rendered.target_verts_px,
        "target_ibug68_px": rendered.target_verts_px[list(topo.IBUG68), :2],
        "mouth_painted": rendered.mouth_painted,
    }


@dataclass(frozen=True)
class FaceRenderer:
    """Renders one target row on its fit row, in memory: what ``render`` writes as a crop and
    what ``blend --from-targets`` composites at once. The face model and detail maps are
    loaded once per process (``cached``)."""

    details: str | Path | None
    landmarker: str  # the bundle the fits were made with (lineage.face_model_of)
    details_sha256: str | None = None  # the maps' digest: a changed file is loaded afresh

    @property
    def maps_key(self) -> str:
        """The name of this renderer's detail maps among the process's cached models."""
        return f"detail maps {self.details} {self.details_sha256} {self.landmarker}"

    def __call__(self, target: dict[str, Any], fit: dict[str, Any] | None) -> RenderedFace:
        if fit is None or fit["status"] != STATUS_OK:
            raise UpstreamRowError(
                f"{target['image_path']}: face {target['face_index']} has no finished fit"
            )
        model = cached(f"face model {self.landmarker}", lambda: load_face_model(self.landmarker))
        maps = cached(self.maps_key, lambda: detail_choice(self.details, model)[0])
        check_source(target["image_path"], fit_fingerprint(fit))
        return render_expression(
            last_frame(target["image_path"]),
            fit["landmarks_px"],
            target_delta_px(target, fit),
            model,
            details=_details_input(maps, model, target, fit),
        )


@dataclass(frozen=True)
class RenderTask:
    """render's work on a few target rows (each with its ``fit`` row, or None)."""

    renderer: FaceRenderer
    out_dir: Path

    def __call__(self, items: Sequence[dict[str, Any]]) -> list[Outcome]:
        return [attempt(self.render, item, item["image_path"]) for item in items]

    def render(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        rendered = self.renderer(item, item["fit"])
        key = {k: item[k] for k in RENDERS.key}
        file = self.out_dir / (sample_name(**key) + SUFFIX)
        # synced with its manifest part (ManifestWriter's synced_column), not one by one
        write_crop(file, rendered.image_rgb, rendered.alpha, durable=False)
        row = {
            **key,
            "render_path": str(resolved_folder(file.parent) / file.name),
            **rendered_columns(rendered),
            "status": "ok",
            "error": None,
        }
        return [row]


#: The target columns a render uses.
TARGET_COLUMNS_USED = (*RENDERS.key, "status", "expression_offsets_model_mm", "au_intensities")


def targets_with_fits(
    targets_path: Path,
    fits_path: Path,
    target_columns: Sequence[str] = TARGET_COLUMNS_USED,
    fit_columns: Sequence[str] = FIT_COLUMNS_USED,
) -> Iterator[dict[str, Any]]:
    """The ``ok`` target rows, streamed in the targets' order (synth writes a face's targets
    together, so each photo is decoded once), each with its ``fit`` row (None when the face
    has none)."""
    fits = ManifestIndex(fits_path, FITS, fit_columns)
    # streamed in order: one decoded part at a time (the fits are looked up at random)
    streamed = ManifestIndex(targets_path, TARGETS, target_columns, cached_parts=1)
    for target in streamed.rows():
        if target["status"] == STATUS_OK:
            yield {**target, "fit": fits.get((target["image_path"], target["face_index"]))}


class TargetLandmarks:
    """The ``target_ibug68_px`` of each target row, computed from its target and fit rows
    (:func:`target_ibug68_px`): what a layout reads of the renders manifest, for outputs
    blended straight from the targets. ``get(key)`` as :meth:`ManifestIndex.get`."""

    def __init__(self, targets_path: Path, fits_path: Path) -> None:
        self._targets = ManifestIndex(targets_path, TARGETS, TARGET_COLUMNS_USED)
        self._fits = ManifestIndex(fits_path, FITS, FIT_COLUMNS_USED)

    def get(self, key: tuple[Any, ...]) -> dict[str, Any] | None:
        target = self._targets.get(key)
        fit = None if target is None else self._fits.get(key[:2])
        if fit is None or fit["status"] != STATUS_OK:
            return None
        return {"target_ibug68_px": target_ibug68_px(target, fit)}


def _failure_rows(item: dict[str, Any], status: str, message: str) -> list[dict[str, Any]]:
    return [{**{k: item[k] for k in RENDERS.key}, "status": status, "error": message}]


@dataclass(frozen=True)
class RenderInputs:
    """What a render of the targets at ``targets_path`` reads: its targets' and fits' paths
    and provenance, the face model the fits were made with, and the parameters that name
    them all (a change of any starts the rendering stage afresh)."""

    targets_path: Path
    targets: dict[str, Any]
    fits_path: Path
    model: FaceModel
    renderer: FaceRenderer
    params: dict[str, Any]

    @classmethod
    def resolve(cls, targets_path: Path, details: str | Path | None) -> RenderInputs:
        """Read and check the targets' provenance, their fits' and their face model.

        Raises
        ------
        MissingManifestError
            No targets, or no fits, manifest.
        UsageError
            The targets were made with another face model than their fits.
        """
        targets = read_checked_meta(
            targets_path, TARGETS, run_first="augmentface synth-au or augmentface synth-va"
        )
        fits_path = upstream_path(targets, "fits", targets_path)
        read_checked_meta(fits_path, FITS, run_first=FIT_FIRST)
        model = face_model_of(fits_path)
        if targets.get("face_model_id") != model.model_id:
            raise UsageError(
                f"{targets_path}: made with face model {targets.get('face_model_id')}, its "
                f"fits with {model.model_id}; run synth again"
            )
        maps, details_params = detail_choice(details, model)
        renderer = FaceRenderer(
            details, str(model.landmarker_path), details_params["details_sha256"]
        )
        cached(renderer.maps_key, lambda: maps)  # a renderer in this process: built once
        params = {
            "targets": str(targets_path.resolve()),
            # Any change of the upstream rows (a part replaced or added) starts afresh.
            "targets_digest": file_digest(targets_path),
            "fits_digest": file_digest(fits_path),
            **details_params,
        }
        return cls(targets_path, targets, fits_path, model, renderer, params)


def run_render(config: RenderConfig | None = None) -> StageReport:
    """Render every target row; write crops to ``<workdir>/renders/`` and ``renders.parquet``."""
    config = config or RenderConfig()
    workdir = Path(config.workdir)
    inputs = RenderInputs.resolve(Path(config.targets or workdir / TARGETS_FILE), config.details)
    targets_path, fits_path, model = inputs.targets_path, inputs.fits_path, inputs.model
    params = {**inputs.params, "crop_format": SUFFIX}
    stage = Stage(
        name="render",
        schema=RENDERS,
        path=workdir / RENDERS_FILE,
        params=params,
        seed=inputs.targets.get("seed"),
        face_model_id=model.model_id,
        task=RenderTask(inputs.renderer, workdir / RENDERS_DIR),
        image_of=lambda item: item["image_path"],
        resume_key=lambda item: tuple(item[k] for k in RENDERS.key),
        failure_rows=_failure_rows,
        file_column="render_path",
        every_n=1000,
        rows_per_task=64,  # ~10 ms an item: about 0.6 s a task
    )
    total = len(KeySet(targets_path, TARGETS))  # the ok targets
    items = targets_with_fits(targets_path, fits_path)
    return run_stage(stage, items, config.execution, config.quiet, total=total)
