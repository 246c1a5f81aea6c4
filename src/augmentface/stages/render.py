"""Stage ``render``: deform each fitted face to its target and re-render it with its own texture."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from augmentface.atomic import atomic_write_bytes
from augmentface.datasets.frames import read_frame
from augmentface.errors import UsageError
from augmentface.face import topology as topo
from augmentface.face.model import FaceModel, identity_au_noise, load_face_model
from augmentface.frames import offsets_model_to_image
from augmentface.manifest import ManifestWriter, done_keys
from augmentface.render.detail_maps import BUILTIN_SOURCE, builtin_detail_maps
from augmentface.render.details import (
    DetailMaps,
    DetailsInput,
    detail_weights,
    load_detail_maps,
)
from augmentface.render.face_render import RenderedFace, render_expression
from augmentface.stages.common import (
    DEFAULT_WORKDIR,
    RENDERS_DIR,
    RENDERS_FILE,
    TARGETS_FILE,
    StageReport,
    file_digest,
    frame_order,
    manifest_digest,
    previous_rows,
    progress,
    row_failure,
    sample_name,
    upstream,
)
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


def _write_rgba_png(path: Path, rendered: RenderedFace) -> None:
    rgba = np.dstack([rendered.image_rgb[..., ::-1], rendered.alpha])  # BGRA for OpenCV
    ok, data = cv2.imencode(".png", rgba, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    atomic_write_bytes(path, data.tobytes())


#: The fits columns a render depends on (besides the target).
FIT_COLUMNS_USED = (
    "image_path",
    "face_index",
    "status",
    "landmarks_px",
    "rotation",
    "scale_px_per_mm",
    "expression_offsets_model_mm",
    "au_signed",
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


def run_render(config: RenderConfig | None = None) -> StageReport:
    """Render every target row; write crops to ``<workdir>/renders/`` and ``renders.parquet``."""
    config = config or RenderConfig()
    workdir = Path(config.workdir)
    targets_path = Path(config.targets or workdir / TARGETS_FILE)
    targets = upstream(targets_path, TARGETS, "augmentface synth-au or augmentface synth-va")
    fits_path = Path(targets.meta["params"]["fits"])
    fits = upstream(fits_path, FITS, "augmentface fit3dmm IMAGES")
    model = load_face_model()
    if targets.meta.get("face_model_id") != model.model_id:
        raise UsageError(
            f"{targets_path}: made with face model "
            f"{targets.meta.get('face_model_id')}, this installation has "
            f"{model.model_id}; run fit3dmm and synth again"
        )
    path = workdir / RENDERS_FILE
    maps, details_params = detail_choice(config.details, model)
    noise = identity_au_noise(model.rig.au_numbers)
    params = {
        "targets": str(targets_path.resolve()),
        "targets_digest": manifest_digest(
            targets.df,
            [*TARGETS.key, "status", "expression_offsets_model_mm", "au_intensities"],
        ),
        "fits_digest": manifest_digest(fits.df, FIT_COLUMNS_USED),
        **details_params,
    }
    previous = previous_rows(path, RENDERS, params)
    done = done_keys(previous, RENDERS)
    face_rows = {
        (r["image_path"], int(r["face_index"])): r
        for r in fits.df.to_dict("records")
        if r["status"] == "ok"
    }
    rows = [r for r in targets.df.to_dict("records") if r["status"] == "ok"]
    report = StageReport("render", path)
    todo = []
    for row in rows:
        if tuple(row[k] for k in RENDERS.key) in done:
            report.skipped += 1
        else:
            todo.append(row)
    todo.sort(key=lambda r: frame_order(r["image_path"]))  # decode each photo once
    out_dir = workdir / RENDERS_DIR
    cached: tuple[str, np.ndarray | Exception] | None = None
    with ManifestWriter(
        path,
        RENDERS,
        previous,
        params=params,
        seed=targets.meta.get("seed"),
        face_model_id=model.model_id,
        every_n=1000,
    ) as writer:
        for row in progress(todo, "render", len(todo), config.quiet):
            key = {k: row[k] for k in RENDERS.key}
            try:
                if cached is None or cached[0] != row["image_path"]:
                    try:
                        cached = (row["image_path"], read_frame(row["image_path"]))
                    except Exception as exc:  # remembered so each row of this image reports it
                        cached = (row["image_path"], exc)
                if isinstance(cached[1], Exception):
                    raise cached[1]
                fit = face_rows[(row["image_path"], int(row["face_index"]))]
                delta_px = offsets_model_to_image(
                    row["expression_offsets_model_mm"] - fit["expression_offsets_model_mm"],
                    fit["rotation"].astype(np.float64),
                    fit["scale_px_per_mm"],
                )
                details = None
                if maps is not None:
                    weights = detail_weights(
                        maps,
                        model.rig.au_numbers,
                        row["au_intensities"],
                        fit["au_signed"],
                        noise,
                    )
                    details = DetailsInput(maps, weights)
                rendered = render_expression(
                    cached[1], fit["landmarks_px"], delta_px, model, details=details
                )
                file = out_dir / (sample_name(**key) + ".png")
                _write_rgba_png(file, rendered)
            except Exception as exc:  # the row gets a status; the run goes on
                status, message = row_failure(exc, row["image_path"])
                writer.add({**key, "status": status, "error": message})
                report.fail(status, message)
                continue
            writer.add(
                {
                    **key,
                    "render_path": str(file.resolve()),
                    "roi_px": np.asarray(rendered.roi),
                    "target_landmarks_px": rendered.target_verts_px,
                    "target_ibug68_px": rendered.target_verts_px[list(topo.IBUG68), :2],
                    "mouth_painted": rendered.mouth_painted,
                    "status": "ok",
                    "error": None,
                }
            )
            report.ok()
    return report
