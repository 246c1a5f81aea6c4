"""Stages ``synth-au`` and ``synth-va``: fitted faces × targets -> expression offsets.

Replace semantics: the target expression replaces the face's fitted expression (its identity is
kept), so the label is the target whatever the source showed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from augmentface.errors import UsageError
from augmentface.expression import va_prior
from augmentface.expression.targets import ExpressionTarget, RigSource, sample_rng
from augmentface.face.model import load_face_model
from augmentface.manifest import ManifestWriter, done_keys
from augmentface.stages.common import (
    DEFAULT_WORKDIR,
    FITS_FILE,
    TARGETS_FILE,
    StageReport,
    previous_rows,
    progress,
    upstream,
)
from augmentface.stages.schemas import AU_NAMES, FITS, TARGETS


@dataclass(frozen=True)
class SynthConfig:
    """Settings of the synthesis stage (see ``augmentface synth-au --help``)."""

    workdir: Path = DEFAULT_WORKDIR
    fits: Path | None = None  # default: <workdir>/fits.parquet
    samples: int = 1
    seed: int = 0
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise UsageError(f"samples must be >= 1, got {self.samples}")


def _target_row(face: dict, target: ExpressionTarget, sample: int, source: str, au, offsets):
    is_va = target.kind == "va"
    row = {
        "image_path": face["image_path"],
        "face_index": int(face["face_index"]),
        "target_id": target.target_id,
        "sample": sample,
        "source": source,
        "kind": target.kind,
        "valence": target.label_valence,
        "arousal": target.label_arousal,
        "va_class": va_prior.va_class(target.valence, target.arousal) if is_va else -1,
        "requested_valence": target.valence,
        "requested_arousal": target.arousal,
        "au_intensities": au,
        "expression_offsets_model_mm": offsets,
        "status": "ok",
        "error": None,
    }
    row.update(zip(AU_NAMES, map(float, au), strict=True))
    return row


def run_synth(
    targets: Sequence[ExpressionTarget], config: SynthConfig | None = None
) -> StageReport:
    """Realise every target on every fitted face; write ``<workdir>/targets.parquet``."""
    config = config or SynthConfig()
    if not targets:
        raise UsageError("no targets given")
    fits_path = Path(config.fits or Path(config.workdir) / FITS_FILE)
    fits = upstream(fits_path, FITS, "augmentface fit3dmm IMAGES")
    model_id = fits.meta.get("face_model_id")
    model = load_face_model()
    if model_id != model.model_id:
        raise UsageError(
            f"{fits_path}: fitted with face model {model_id}, "
            f"but this installation has {model.model_id}; run fit3dmm again"
        )
    source = RigSource(model.rig)
    path = Path(config.workdir) / TARGETS_FILE
    params = {
        "fits": str(fits_path.resolve()),
        "samples": config.samples,
        "targets": [t.target_id for t in targets],
        "labels": sorted(
            {
                "class-median" if t.kind == "va" and t.label_valence != t.valence else "target"
                for t in targets
            }
        ),
    }
    previous = previous_rows(path, TARGETS, params)
    done = done_keys(previous, TARGETS)
    faces = [row for row in fits.df.to_dict("records") if row["status"] == "ok"]
    jobs = [
        (face, target, sample)
        for face in faces
        for target in targets
        for sample in range(config.samples)
    ]
    report = StageReport("synth", path)
    todo = []
    for job in jobs:
        face, target, sample = job
        key = (face["image_path"], int(face["face_index"]), target.target_id, sample)
        if key in done:
            report.skipped += 1
        else:
            todo.append(job)
    with ManifestWriter(
        path,
        TARGETS,
        previous,
        params=params,
        seed=config.seed,
        face_model_id=model.model_id,
        every_n=500,
    ) as writer:
        for face, target, sample in progress(todo, "synth", len(todo), config.quiet):
            rng = sample_rng(
                config.seed, face["image_path"], face["face_index"], target.target_id, sample
            )
            au, offsets = source.realize(target, sample, rng)
            name = "va-prior" if target.kind == "va" else source.name
            writer.add(_target_row(face, target, sample, name, au, offsets))
            report.ok()
    return report
