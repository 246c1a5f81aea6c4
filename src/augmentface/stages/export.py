"""``export-mesh``: write fitted or synthesized faces as OBJ/PLY meshes (model frame, mm)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from augmentface.errors import UsageError
from augmentface.stages.common import (
    DEFAULT_WORKDIR,
    FITS_FILE,
    TARGETS_FILE,
    StageReport,
    progress,
    row_failure,
    sample_name,
    upstream,
)
from augmentface.stages.lineage import face_model_of
from augmentface.stages.schemas import FITS, TARGETS

MESH_FORMATS = ("obj", "ply")


@dataclass(frozen=True)
class ExportConfig:
    """Settings of ``augmentface export-mesh``."""

    workdir: Path = DEFAULT_WORKDIR
    source: Literal["fits", "targets"] = "targets"
    out: Path | None = None  # default: <workdir>/meshes
    mesh_format: str = "obj"
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.source not in ("fits", "targets"):
            raise UsageError(f"source must be fits or targets, not {self.source!r}")
        if self.mesh_format not in MESH_FORMATS:
            raise UsageError(f"mesh format must be one of {', '.join(MESH_FORMATS)}")


def run_export_meshes(config: ExportConfig | None = None) -> StageReport:
    """One mesh per ``ok`` row: the fitted face, or the face with its target expression."""
    config = config or ExportConfig()
    workdir = Path(config.workdir)
    out_dir = Path(config.out or workdir / "meshes")
    fits = upstream(workdir / FITS_FILE, FITS, "augmentface fit3dmm IMAGES")
    model = face_model_of(fits)
    faces = {
        (r["image_path"], int(r["face_index"])): r
        for r in fits.df.to_dict("records")
        if r["status"] == "ok"
    }
    if config.source == "fits":
        rows = [
            (
                r,
                r["expression_offsets_model_mm"],
                f"{Path(r['image_path']).stem}_f{r['face_index']}_fit",
            )
            for r in faces.values()
        ]
    else:
        targets = upstream(
            workdir / TARGETS_FILE, TARGETS, "augmentface synth-au or augmentface synth-va"
        )
        rows = [
            (
                faces[(t["image_path"], int(t["face_index"]))],
                t["expression_offsets_model_mm"],
                sample_name(
                    t["image_path"], int(t["face_index"]), t["target_id"], int(t["sample"])
                ),
            )
            for t in targets.df.to_dict("records")
            if t["status"] == "ok"
        ]
    report = StageReport("export-mesh", out_dir)
    for face, expression, stem in progress(rows, "export-mesh", len(rows), config.quiet):
        try:
            verts = model.verts_model_mm(face["identity_offsets_model_mm"], expression)
            model.export_mesh(out_dir / f"{stem}.{config.mesh_format}", verts)
        except Exception as exc:  # the row gets a status; the run goes on
            report.fail(*row_failure(exc, face["image_path"]))
            continue
        report.ok()
    return report
