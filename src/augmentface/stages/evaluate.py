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

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from augmentface.atomic import atomic_write_text
from augmentface.face.detect import DetectConfig, FaceLandmarker
from augmentface.imageio import read_image
from augmentface.manifest import ManifestWriter, read_manifest
from augmentface.metrics.blendshapes_facs import response_summary
from augmentface.metrics.measure import OutputMeasurer
from augmentface.render.crop_file import read_crop
from augmentface.stages.common import (
    DEFAULT_WORKDIR,
    LABELS_FILE,
    OUTPUT_DIR,
    StageReport,
    progress,
    row_failure,
    upstream,
)
from augmentface.stages.lineage import FIT_FIRST, find_upstream, upstream_path
from augmentface.stages.schemas import (
    AU_NAMES,
    EVALUATION,
    FITS,
    GEOMETRY_AU_NAMES,
    LABELS,
    RENDERS,
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


def is_neutral(row: dict) -> bool:
    """Whether a labels row asks for no AU at all: the face at rest."""
    return all(not row.get(name) for name in AU_NAMES)


def _evaluate_row(row: dict, fit: dict, render: dict, measurer: OutputMeasurer) -> dict:
    output = read_image(row["output_path"])
    alpha = read_crop(render["render_path"])[1]
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
        rows.append(
            {
                "target_id": target_id,
                "n": len(group),
                "redetected": group["redetected"].mean(),
                "same_person": group["same_person"].mean(),
                "identity_distance_median": group["identity_distance"].median(),
                "nme_dlib68_mean": group["nme_dlib68"].mean(),
                "nme_mediapipe_mean": group["nme_mediapipe"].mean(),
                "seam_ratio_median": group["seam_ratio"].median(),
                "response_of_requested_aus": np.nanmean(
                    [group[f"response_{n}"].mean() for n in requested]
                )
                if requested
                else np.nan,
            }
        )
    return pd.DataFrame(rows)


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


def run_evaluate(config: EvaluateConfig | None = None) -> tuple[StageReport, pd.DataFrame]:
    """Evaluate every ``ok`` output of the blend stage; returns the report and the summary."""
    config = config or EvaluateConfig()
    workdir = Path(config.workdir)
    labels_path = Path(config.labels or workdir / OUTPUT_DIR / LABELS_FILE)
    labels = upstream(labels_path, LABELS, "augmentface blend")
    renders_path = upstream_path(labels.meta, "renders", labels_path)
    renders = read_manifest(renders_path, RENDERS, run_first="augmentface render")
    fits = upstream(find_upstream(labels.meta, labels_path, "fits"), FITS, FIT_FIRST)
    fit_rows = {(r["image_path"], int(r["face_index"])): r for r in fits.df.to_dict("records")}
    render_rows = {tuple(r[k] for k in RENDERS.key): r for r in renders.df.to_dict("records")}
    names = tuple(fits.meta["params"]["blendshape_names"])
    path = labels_path.with_name(EVALUATION_FILE)
    report = StageReport("evaluate", path)
    # Each face's neutral output first: it is the baseline of the face's geometric responses.
    todo = sorted(
        (r for r in labels.df.to_dict("records") if r["status"] == "ok"),
        key=lambda r: (r["image_path"], int(r["face_index"]), not is_neutral(r)),
    )
    with (
        FaceLandmarker(DetectConfig(max_faces=4)) as landmarker,
        ManifestWriter(
            path,
            EVALUATION,
            False,
            params={"labels": str(labels_path.resolve())},
            seed=labels.meta.get("seed"),
            face_model_id=labels.meta.get("face_model_id"),
            every_n=1000,
        ) as writer,
    ):
        measurer = OutputMeasurer(landmarker, names)
        for row in progress(todo, "evaluate", len(todo), config.quiet):
            key = {k: row[k] for k in EVALUATION.key}
            try:
                fit = fit_rows[(row["image_path"], int(row["face_index"]))]
                render = render_rows[tuple(key.values())]
                values = _evaluate_row(row, fit, render, measurer)
            except Exception as exc:  # the row gets a status; the run goes on
                status, message = row_failure(exc, row["output_path"])
                writer.add({**key, "status": status, "error": message})
                report.fail(status, message)
                continue
            writer.add({**key, **values, "status": "ok", "error": None})
            report.ok()
    evaluation = read_manifest(path, EVALUATION, run_first="augmentface evaluate").df
    atomic_write_text(path.with_suffix(".csv"), evaluation.to_csv(index=False))
    summary = summarise(evaluation, labels.df)
    atomic_write_text(path.with_name(SUMMARY_FILE), summary.to_csv(index=False))
    return report, summary
