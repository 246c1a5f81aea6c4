"""Stage ``evaluate``: per output image, does it keep the person, show the expression, look clean?

Identity: dlib's ResNet embedding distance between the source face and the output face.
Expression: MediaPipe's blendshapes of the output minus the source's, mapped onto AUs
(:mod:`augmentface.metrics.blendshapes_facs`), and, per AU, the change of a geometric channel
of the landmarks, dlib's 68 and MediaPipe's re-detected ones
(:mod:`augmentface.metrics.au_geometry`). Geometry: re-detected landmarks (MediaPipe's,
and dlib's independent 68-point model) against the intended target landmarks, normalised by
the outer inter-ocular distance. Artifacts: gradient energy along the blend boundary relative
to the unedited photo, and whether pixels outside the mask are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augmentface.atomic import atomic_write_text
from augmentface.errors import UpstreamRowError
from augmentface.face.detect import DetectConfig, FaceLandmarker
from augmentface.imageio import read_image
from augmentface.manifest import STATUS_OK, read_checked_meta
from augmentface.manifest_groups import RowGroups, TypedRows, write_csv
from augmentface.manifest_index import KeySet, ManifestIndex
from augmentface.metrics.blendshapes_facs import response_summary
from augmentface.metrics.measure import OutputMeasurer
from augmentface.render.crop_file import read_crop
from augmentface.stages import render as render_stage
from augmentface.stages.common import (
    DEFAULT_WORKDIR,
    LABELS_FILE,
    OUTPUT_DIR,
    StageReport,
    file_digest,
    row_failure,
)
from augmentface.stages.execution import Execution, cached
from augmentface.stages.export_outputs import FACE_KEY
from augmentface.stages.lineage import FIT_FIRST, find_upstream, upstream_path
from augmentface.stages.render import FaceRenderer, RenderInputs, rendered_columns
from augmentface.stages.runner import Outcome, Stage, run_stage
from augmentface.stages.schemas import (
    AU_NAMES,
    EVALUATION,
    FITS,
    GEOMETRY_AU_NAMES,
    LABELS,
    RENDERS,
    TARGETS,
)

EVALUATION_FILE = "evaluation.parquet"
SUMMARY_FILE = "evaluation_summary.csv"
LOSSLESS_SUFFIXES = (".png",)

#: Expression instruments: the key of their responses in ``OutputMeasurer.measure``'s result,
#: the prefix of their evaluation columns, and the AUs they measure.
INSTRUMENTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "blendshapes": ("au_response", "response", AU_NAMES),
    "geometry": ("geometry_response", "geometry", GEOMETRY_AU_NAMES),
    "geometry-mp": ("geometry_mp_response", "geometry_mp", GEOMETRY_AU_NAMES),
}


@dataclass(frozen=True)
class EvaluateConfig:
    """Settings of ``augmentface evaluate``."""

    workdir: Path = DEFAULT_WORKDIR
    labels: Path | None = None  # default: <workdir>/output/labels.parquet
    quiet: bool = False
    execution: Execution = field(default_factory=Execution)


def is_neutral(row: dict) -> bool:
    """Whether a labels row asks for no AU at all: the face at rest."""
    return all(not row.get(name) for name in AU_NAMES)


def _evaluate_row(row: dict, fit: dict, render: dict, measurer: OutputMeasurer) -> dict:
    output = read_image(row["output_path"])
    # a render row names its crop; a render made here (blend --from-targets) holds its mask
    alpha = render["alpha"] if "alpha" in render else read_crop(render["render_path"])[1]
    lossless = Path(row["output_path"]).suffix.lower() in LOSSLESS_SUFFIXES
    metrics = measurer.measure(output, fit, render, alpha, lossless, neutral=is_neutral(row))
    for key, prefix, names in INSTRUMENTS.values():
        response = metrics.pop(key)
        metrics.update({f"{prefix}_{n}": response.get(int(n[2:]), np.nan) for n in names})
    return {"output_path": row["output_path"], **metrics}


def summarise(evaluation: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Aggregate per target: counts, identity, geometry, seam, and the requested AUs' response."""
    ok = evaluation[evaluation["status"] == "ok"].merge(
        labels[[*EVALUATION.key, *AU_NAMES]], on=list(EVALUATION.key), how="left"
    )
    rows = []
    for target_id, group in ok.groupby("target_id", sort=True):
        requested = [n for n in AU_NAMES if group[n].fillna(0).gt(0).any()]
        rows.append(_target_summary(target_id, group, requested))
    return pd.DataFrame(rows)


def _target_summary(
    target_id: str, group: pd.DataFrame, requested: Sequence[str]
) -> dict[str, Any]:
    """One target's summary row from its ``ok`` evaluation rows (``requested``: the AUs its
    outputs ask for)."""
    return {
        "target_id": target_id,
        "n": len(group),
        "redetected": group["redetected"].mean(),
        "same_person": group["same_person"].mean(),
        "identity_distance_median": group["identity_distance"].median(),
        "nme_dlib68_mean": group["nme_dlib68"].mean(),
        "nme_mediapipe_mean": group["nme_mediapipe"].mean(),
        "seam_ratio_median": group["seam_ratio"].median(),
        "response_of_requested_aus": np.nanmean([group[f"response_{n}"].mean() for n in requested])
        if requested
        else np.nan,
    }


#: What the summary reads of an evaluation row.
SUMMARY_COLUMNS = (
    "target_id",
    "redetected",
    "same_person",
    "identity_distance",
    "nme_dlib68",
    "nme_mediapipe",
    "seam_ratio",
    *(f"response_{n}" for n in AU_NAMES),
)


def _streamed_summary(evaluation: TypedRows, labels: TypedRows) -> pd.DataFrame:
    """:func:`summarise` of the two manifests, streamed.

    A target's medians need all its values, and its means them in order (a mean's last bit
    depends on the order of the sum), so accumulators per target would not do: each
    target's ``ok`` rows are taken together instead (:class:`.RowGroups`, which partitions
    them: the evaluation is in face order, not target order). What is held is the summary's
    columns of about ``manifest_groups.GROUP_ROWS`` rows, or of one target's rows when a target
    has more (a target set on every face has as many rows as faces). The requested AUs come from the
    labels in a pass of their own: one boolean per AU and target.
    """
    requested = _requested_aus(labels, KeySet(evaluation.path, EVALUATION))
    targets = RowGroups(evaluation, ["target_id"], SUMMARY_COLUMNS, where=_is_ok)
    rows = []
    for group in targets:
        target_id = group["target_id"].iloc[0]
        rows.append(_target_summary(target_id, group, requested.get(target_id, [])))
    return pd.DataFrame(rows)


def _requested_aus(labels: TypedRows, evaluated: KeySet) -> dict[str, list[str]]:
    """Per target, the AUs that one of its evaluated outputs (a key of ``evaluated``) asks
    for (intensity > 0); held: one boolean per AU and target."""
    asked: dict[str, np.ndarray] = {}
    for batch in labels.batches(["target_id", *AU_NAMES]):
        keys = batch[list(EVALUATION.key)].itertuples(index=False, name=None)
        batch = batch[[key in evaluated for key in keys]]
        positive = batch[list(AU_NAMES)].fillna(0).gt(0).groupby(batch["target_id"]).any()
        for target_id, row in zip(positive.index, positive.to_numpy(bool), strict=True):
            asked[target_id] = asked.get(target_id, np.zeros(len(AU_NAMES), bool)) | row
    return {t: [n for n, a in zip(AU_NAMES, v, strict=True) if a] for t, v in asked.items()}


def _is_ok(batch: pd.DataFrame) -> pd.Series:
    return batch["status"] == STATUS_OK


def _against_neutral_render(ok: pd.DataFrame) -> pd.DataFrame:
    """``ok`` without the rows measured against the source photo of a face whose other rows
    are measured against its neutral render (``geometry_baseline``)."""
    baseline = ok["geometry_baseline"]
    face_has_render = (
        baseline.eq("neutral render")
        .groupby([ok["image_path"], ok["face_index"]])
        .transform("any")
        .astype(bool)
    )
    return ok[~(baseline.eq("source") & face_has_render)]


def au_correlations(
    evaluation: pd.DataFrame, labels: pd.DataFrame, instrument: str = "blendshapes"
) -> pd.DataFrame:
    """Per AU: correlation of requested intensity with the measured response, and its sign.

    ``instrument`` is one of :data:`INSTRUMENTS`: ``"blendshapes"`` (MediaPipe's blendshapes
    mapped onto AUs, every AU), ``"geometry"`` (dlib-68 landmarks) or ``"geometry-mp"``
    (MediaPipe's landmarks), the last two for the AUs with a geometric channel.

    For the geometric instruments, a face whose outputs are measured against its neutral
    render (``geometry_baseline``) leaves out its rows measured against the source photo:
    that is the neutral render itself, whose response is the change from the photo to the
    face at rest as rendered, another baseline. A face with no neutral render keeps its rows.
    """
    if instrument not in INSTRUMENTS:
        raise ValueError(f"unknown instrument {instrument!r}; allowed: {', '.join(INSTRUMENTS)}")
    _, prefix, names = INSTRUMENTS[instrument]
    ok = evaluation[evaluation["status"] == "ok"].merge(
        labels[[*EVALUATION.key, *AU_NAMES]], on=list(EVALUATION.key), how="left"
    )
    if instrument != "blendshapes":
        ok = _against_neutral_render(ok)
    rows = []
    for name in names:
        summary = response_summary(
            ok[name].fillna(0).to_numpy(), ok[f"{prefix}_{name}"].to_numpy(dtype=float)
        )
        rows.append(
            {
                "au": name,
                "pearson_r": summary.pearson_r,
                "sign": summary.sign,
                "note": summary.reason,
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class EvaluateTask:
    """evaluate's work on a few faces: each item is one face's outputs, its neutral output
    first (the baseline of its geometric responses), with its fit and its renders (or, for
    outputs blended straight from the targets, their targets, rendered here again)."""

    blendshape_names: tuple[str, ...]
    renderer: FaceRenderer | None = None

    def __call__(self, faces: Sequence[dict[str, Any]]) -> list[Outcome]:
        landmarker = cached(
            "gate landmarker", lambda: FaceLandmarker(DetectConfig(max_faces=4)).__enter__()
        )
        measurer = OutputMeasurer(landmarker, self.blendshape_names)
        return [
            ([self._row(face, output, measurer) for output in face["outputs"]], None)
            for face in faces
        ]

    def _render(self, face: dict[str, Any], output: dict[str, Any]) -> dict[str, Any] | None:
        """The output's render row, or its render made again from its target."""
        if self.renderer is None or output["target"] is None:
            return output["render"]
        rendered = self.renderer(output["target"], face["fit"])
        return {**rendered_columns(rendered), "alpha": rendered.alpha}

    def _row(self, face: dict[str, Any], output: dict[str, Any], measurer) -> dict[str, Any]:
        key = {k: output[k] for k in EVALUATION.key}
        try:
            render = None if face["fit"] is None else self._render(face, output)
            if render is None:
                raise UpstreamRowError(f"{output['output_path']}: its fit or render is missing")
            values = _evaluate_row(output, face["fit"], render, measurer)
        except Exception as exc:  # the output gets a status; its face's others go on
            status, message = row_failure(exc, output["output_path"])
            return {**key, "status": status, "error": message}
        return {**key, **values, "status": "ok", "error": None}


#: What evaluate reads of a labels row (with its key): its file and the AUs it asks for.
OUTPUT_COLUMNS = ("output_path", *AU_NAMES)


def _faces(outputs: RowGroups, renders: ManifestIndex, fits_path: Path) -> Iterator[dict[str, Any]]:
    """One item per face (``outputs``: its ``ok`` labels rows): its outputs, neutral first,
    with their rows in ``renders`` (``render``, or ``target`` for a targets manifest), and
    its fit; made as the runner asks for them."""
    fits = ManifestIndex(fits_path, FITS, FITS.names)
    column = "target" if renders.schema is TARGETS else "render"
    for group in outputs:
        face = sorted(_records(group), key=lambda r: not is_neutral(r))
        for output in face:
            output.update(render=None, target=None)
            output[column] = renders.get(tuple(output[k] for k in RENDERS.key))
        image_path, face_index = face[0]["image_path"], face[0]["face_index"]
        yield {
            "image_path": image_path,
            "face_index": int(face_index),
            "fit": fits.get((image_path, face_index)),
            "outputs": face,
        }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame.to_dict("records")``, the same Python values, without its cost in pandas 3.1
    (9 ms for a face of 15 outputs, as much as the rest of evaluate's bookkeeping)."""
    columns = {name: frame[name].tolist() for name in frame.columns}
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _failure_rows(face: dict[str, Any], status: str, message: str) -> list[dict[str, Any]]:
    return [
        {**{k: o[k] for k in EVALUATION.key}, "status": status, "error": message}
        for o in face["outputs"]
    ]


def run_evaluate(config: EvaluateConfig | None = None) -> tuple[StageReport, pd.DataFrame]:
    """Evaluate every ``ok`` output of the blend stage; returns the report and the summary.

    The unit of work is a face (its outputs share the source's embedding and the neutral
    baseline); a face whose outputs are all evaluated is skipped on a rerun.
    """
    config = config or EvaluateConfig()
    workdir = Path(config.workdir)
    labels_path = Path(config.labels or workdir / OUTPUT_DIR / LABELS_FILE)
    labels = TypedRows(labels_path, LABELS, run_first="augmentface blend")
    fits_path = find_upstream(labels.meta, labels_path, "fits")
    fits_meta = read_checked_meta(fits_path, FITS, run_first=FIT_FIRST)
    renderer, renders = None, None
    if "renders" in labels.meta.get("params", {}):
        renders_path = upstream_path(labels.meta, "renders", labels_path)
        read_checked_meta(renders_path, RENDERS, run_first="augmentface render")
        renders = ManifestIndex(renders_path, RENDERS, RENDERS.names)
    else:  # blended straight from the targets: render them again, as blend did
        targets_path = upstream_path(labels.meta, "targets", labels_path)
        inputs = RenderInputs.resolve(targets_path, labels.meta["params"].get("details"))
        renderer = inputs.renderer
        renders = ManifestIndex(targets_path, TARGETS, render_stage.TARGET_COLUMNS_USED)
    path = labels_path.with_name(EVALUATION_FILE)
    stage = Stage(
        name="evaluate",
        schema=EVALUATION,
        path=path,
        params={"labels": str(labels_path.resolve()), "labels_digest": file_digest(labels_path)},
        seed=labels.meta.get("seed"),
        face_model_id=labels.meta.get("face_model_id"),
        task=EvaluateTask(tuple(fits_meta["params"]["blendshape_names"]), renderer),
        image_of=lambda face: face["image_path"],
        resume_key=lambda face: (face["image_path"], face["face_index"]),
        failure_rows=_failure_rows,
        done_key=("image_path", "face_index"),
        every_n=1000,
    )
    # A face at a time: blend keeps a face's rows together (else RowGroups partitions them).
    faces = RowGroups(labels, FACE_KEY, OUTPUT_COLUMNS, where=_is_ok)
    items = _faces(faces, renders, fits_path)
    report = run_stage(stage, items, config.execution, config.quiet, total=len(faces))
    evaluation = TypedRows(path, EVALUATION, run_first="augmentface evaluate")
    write_csv(evaluation, path.with_suffix(".csv"))
    summary = _streamed_summary(evaluation, labels)
    atomic_write_text(path.with_name(SUMMARY_FILE), summary.to_csv(index=False))
    return report, summary
