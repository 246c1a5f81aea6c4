"""A self-contained HTML report of a work directory, and a worst-first contact sheet.

The page answers "can I trust these outputs?" at a glance: counts and headline metrics, the
per-target summary, how each requested AU moved MediaPipe's blendshapes, then every output
beside its source, worst first, so the failures are what a reviewer sees before tiring.
Everything is embedded (base64 images, inline CSS, no scripts), so the file can be mailed or
archived and opened offline. Without ``augmentface evaluate`` the page shows the labels only.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from augmentface.atomic import atomic_write_text
from augmentface.contact_sheet import CAPTION_PX, TILE_PX, _crop, _tile, caption
from augmentface.datasets.frames import read_frame
from augmentface.errors import RowError
from augmentface.imageio import encode_image, write_image_atomic
from augmentface.manifest import STATUS_OK, read_manifest
from augmentface.stages.common import FITS_FILE, LABELS_FILE, OUTPUT_DIR
from augmentface.stages.evaluate import (
    EVALUATION_FILE,
    SUMMARY_FILE,
    au_correlations,
    summarise,
)
from augmentface.stages.schemas import AU_NAMES, EVALUATION, FITS, LABELS

REPORT_FILE = "report.html"
SHEET_FILE = "report_sheet.png"
# Two thumbnails per gallery entry (source and output); 300 keeps the page at a few MB.
MAX_THUMBNAILS = 300
GALLERY_MAX = MAX_THUMBNAILS // 2
SHEET_ROWS = 15
SHEET_PAIRS_PER_ROW = 3
JPEG_QUALITY = 80
# Plots show at least ±0.05 of blendshape response, a few hundredths being MediaPipe's noise.
MIN_RESPONSE_RANGE = 0.05
EVALUATE_HINT = "run `augmentface evaluate` for metrics"
ORDER_TEXT = (
    "Worst first: outputs where the face was not re-detected (or whose evaluation failed), "
    "then by identity distance, then by dlib NME, both descending."
)
METRICS = ("identity_distance", "nme_dlib68", "nme_mediapipe", "seam_ratio")
_KEY = list(EVALUATION.key)
_CSS = """
body{font:14px/1.4 sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#eee}
.gallery{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;padding:4px;border:2px solid #ccc;width:332px}
figure.bad{border-color:#c00}
figure img{width:164px;height:164px}
figcaption{font-size:12px;white-space:pre-line}
.hint{background:#ffd;padding:.5em;border:1px solid #cc9}
"""


@dataclass
class _Workdir:
    """What the report reads: ok outputs with their face boxes, and evaluation when present."""

    labels: pd.DataFrame  # status == ok rows only
    n_failed: int  # blend rows not ok
    boxes: dict[tuple[str, int], np.ndarray]
    evaluation: pd.DataFrame | None
    summary: pd.DataFrame | None


def write_report(workdir: Path, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write the HTML report and the worst-first contact sheet of a work directory.

    Parameters
    ----------
    workdir : Path
        Work directory after ``augmentface blend`` (and, for metrics, ``augmentface
        evaluate``): ``fits.parquet`` and ``output/labels.parquet`` are required,
        ``output/evaluation.parquet`` and ``output/evaluation_summary.csv`` are optional.
    out_dir : Path, optional
        Where to write; default ``<workdir>/output``.

    Returns
    -------
    html_path, sheet_path : tuple of Path
        ``report.html`` (self-contained) and ``report_sheet.png``.

    Raises
    ------
    MissingManifestError
        ``fits.parquet`` or ``output/labels.parquet`` is missing.
    """
    workdir = Path(workdir)
    out_dir = Path(out_dir) if out_dir is not None else workdir / OUTPUT_DIR
    data = _load(workdir)
    ranked = _rank(data.labels, data.evaluation)
    shown = ranked.head(max(GALLERY_MAX, SHEET_ROWS * SHEET_PAIRS_PER_ROW))
    crops = _crops(shown, data.boxes)
    html_path, sheet_path = out_dir / REPORT_FILE, out_dir / SHEET_FILE
    atomic_write_text(html_path, _page(data, ranked, crops[:GALLERY_MAX]))
    write_image_atomic(sheet_path, _sheet(shown, crops))
    return html_path, sheet_path


def _load(workdir: Path) -> _Workdir:
    """Read the manifests; evaluation stays None when ``augmentface evaluate`` has not run."""
    output = workdir / OUTPUT_DIR
    labels = read_manifest(output / LABELS_FILE, LABELS, run_first="augmentface blend").df
    fits = read_manifest(workdir / FITS_FILE, FITS, run_first="augmentface fit3dmm").df
    boxes = {(r.image_path, int(r.face_index)): r.bbox_px for r in fits.itertuples()}
    ok = labels[labels["status"] == STATUS_OK]
    evaluation = summary = None
    if (output / EVALUATION_FILE).exists():
        evaluation = read_manifest(
            output / EVALUATION_FILE, EVALUATION, run_first="augmentface evaluate"
        ).df
        summary_path = output / SUMMARY_FILE
        # The CSV is the documented artifact; recomputing it covers a deleted CSV only.
        summary = pd.read_csv(summary_path) if summary_path.is_file() else summarise(evaluation, ok)
    return _Workdir(ok, len(labels) - len(ok), boxes, evaluation, summary)


def _rank(labels: pd.DataFrame, evaluation: pd.DataFrame | None) -> pd.DataFrame:
    """Labels joined with their metrics, worst first (see ``ORDER_TEXT``)."""
    extra = ["redetected", "same_person", *METRICS]
    df = labels.sort_values(_KEY)
    if evaluation is None:
        df = df.reindex(columns=[*df.columns, *extra, "eval_status", "eval_error"])
    else:
        metrics = evaluation[[*_KEY, *extra, "status", "error"]].rename(
            columns={"status": "eval_status", "error": "eval_error"}
        )
        df = df.merge(metrics, on=_KEY, how="left")
    for name in METRICS:
        df[name] = df[name].astype(float)  # None in failed or missing rows becomes NaN
    # An evaluation that failed or is missing is as suspect as a face that was not found.
    df["missing_face"] = df["redetected"].ne(True)
    order = ["missing_face", "identity_distance", "nme_dlib68"]
    # Multi-column sorts are stable, so ties keep the key order above.
    return df.sort_values(order, ascending=False, na_position="first").reset_index(drop=True)


def _crops(rows: pd.DataFrame, boxes: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """(source crop, output crop) per row; each source photo is read once."""
    sources: dict[tuple[str, int], np.ndarray] = {}
    out = []
    for row in rows.itertuples():
        face = (row.image_path, int(row.face_index))
        if face not in sources:
            sources[face] = _face_crop(row.image_path, boxes[face])
        out.append((sources[face], _face_crop(row.output_path, boxes[face])))
    return out


def _face_crop(path: str, bbox: np.ndarray) -> np.ndarray:
    """The face crop of an image; a grey tile when the file cannot be read (moved, deleted)."""
    try:
        return _crop(read_frame(path), bbox)
    except RowError:
        return np.full((TILE_PX, TILE_PX, 3), 128, np.uint8)


# ---------------------------------------------------------------- HTML


def _page(data: _Workdir, ranked: pd.DataFrame, crops: list) -> str:
    """The whole HTML document."""
    parts = ["<h1>augmentface report</h1>", _header(data)]
    if data.evaluation is None:
        parts.append(f'<p class="hint">No evaluation found: {html.escape(EVALUATE_HINT)}.</p>')
    else:
        parts += _metric_sections(data)
    parts.append(_gallery(ranked, crops, data.evaluation is not None))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>augmentface report</title><style>{_CSS}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )


def _header(data: _Workdir) -> str:
    """Counts and headline metrics as a two-column table."""
    items = {"outputs": str(len(data.labels)), "failed in blend": str(data.n_failed)}
    if data.evaluation is not None:
        ok = data.evaluation[data.evaluation["status"] == STATUS_OK]
        items |= {
            "evaluated": str(len(ok)),
            "not re-detected": str(int((~ok["redetected"].astype(bool)).sum())),
            "same-person share": _fmt(ok["same_person"].astype(float).mean()),
            "median identity distance": _fmt(ok["identity_distance"].median()),
            "mean dlib NME": _fmt(ok["nme_dlib68"].mean()),
            "median seam ratio": _fmt(ok["seam_ratio"].median()),
        }
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in items.items()
    )
    return f"<table>{rows}</table>"


def _metric_sections(data: _Workdir) -> list[str]:
    """Per-target summary, per-AU correlation table and the response plots."""
    correlations = au_correlations(data.evaluation, data.labels)
    return [
        "<h2>Per target</h2>",
        _table(data.summary),
        "<h2>Requested AU vs blendshape response</h2>",
        "<p>Pearson r of requested intensity with the MediaPipe blendshape response "
        "(output minus source), and the sign of the intensity-weighted mean response.</p>",
        _table(correlations),
        _plots(data.evaluation, data.labels, correlations),
    ]


def _table(df: pd.DataFrame) -> str:
    """An HTML table of a data frame, every cell escaped."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in df.itertuples(index=False)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: object) -> str:
    """Short text for a table cell: 3 significant decimals for floats, blank for missing."""
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else f"{value:.3g}"
    return "" if value is None else str(value)


def _plots(evaluation: pd.DataFrame, labels: pd.DataFrame, correlations: pd.DataFrame) -> str:
    """Scatter plots, one per AU requested at least once, embedded as one PNG."""
    ok = evaluation[evaluation["status"] == STATUS_OK].merge(
        labels[[*_KEY, *AU_NAMES]], on=_KEY, how="left"
    )
    requested = [n for n in AU_NAMES if ok[n].fillna(0).gt(0).any()]
    if not requested:
        return "<p>No AU was requested in the evaluated outputs.</p>"
    r_by_au = dict(zip(correlations["au"], correlations["pearson_r"], strict=True))
    ncols = min(4, len(requested))
    nrows = math.ceil(len(requested) / ncols)
    figure = Figure(figsize=(3 * ncols, 2.6 * nrows), layout="constrained")
    FigureCanvasAgg(figure)  # Agg: no display, no global pyplot state
    for i, name in enumerate(requested):
        axes = figure.add_subplot(nrows, ncols, i + 1)
        axes.scatter(ok[name].fillna(0), ok[f"response_{name}"], s=14, alpha=0.7)
        axes.axhline(0, color="0.6", linewidth=0.8)
        # Fixed axes: noise-level responses (1e-6) would otherwise be stretched into a "trend".
        low, high = axes.get_ylim()
        axes.set_ylim(min(low, -MIN_RESPONSE_RANGE), max(high, MIN_RESPONSE_RANGE))
        axes.set_xlim(-0.25, 5.25)
        axes.set_title(f"{name}  r = {_fmt(r_by_au[name]) or 'n/a'}", fontsize=10)
        axes.set_xlabel("requested (FACS 0–5)", fontsize=8)
        axes.set_ylabel("response", fontsize=8)
        axes.tick_params(labelsize=7)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return f'<img alt="AU response plots" src="{_data_uri(buffer.getvalue(), "png")}">'


def _gallery(ranked: pd.DataFrame, crops: list, evaluated: bool) -> str:
    """Source beside output for the first ``GALLERY_MAX`` rows of ``ranked``."""
    intro = ORDER_TEXT if evaluated else f"In key order ({EVALUATE_HINT})."
    if len(ranked) > len(crops):
        intro += f" Showing {len(crops)} of {len(ranked)} outputs (capped at "
        intro += f"{MAX_THUMBNAILS} thumbnails to keep the page small)."
    rows = ranked.head(len(crops)).to_dict("records")
    figures = "".join(_figure(row, pair) for row, pair in zip(rows, crops, strict=True))
    return f'<h2>Gallery</h2><p>{html.escape(intro)}</p><div class="gallery">{figures}</div>'


def _figure(row: dict, pair: tuple[np.ndarray, np.ndarray]) -> str:
    """One gallery entry: two thumbnails and the labels and metrics as caption."""
    source, output = (
        _data_uri(encode_image(c, ".jpg", jpeg_quality=JPEG_QUALITY), "jpeg") for c in pair
    )
    lines = [
        f"{row['target_id']} (sample {row['sample']})",
        " ".join(caption(row)),
        f"{Path(row['image_path']).name}, face {row['face_index']}",
        *_metric_lines(row),
    ]
    text = html.escape("\n".join(lines))
    return (
        f'<figure class="{"bad" if _is_bad(row) else ""}"><img alt="source" src="{source}">'
        f'<img alt="output" src="{output}"><figcaption>{text}</figcaption></figure>'
    )


def _is_bad(row: dict) -> bool:
    """Evaluated and failed: evaluation error, face lost or identity lost (framed in red)."""
    return isinstance(row["eval_status"], str) and (
        row["eval_status"] != STATUS_OK or not row["redetected"] or not row["same_person"]
    )


def _metric_lines(row: dict) -> list[str]:
    """Caption lines with the evaluation of one output, or why there is none."""
    if not isinstance(row["eval_status"], str):
        return []
    if row["eval_status"] != STATUS_OK:
        return [f"evaluation failed: {row['eval_status']}", str(row["eval_error"])]
    same = "same person" if row["same_person"] else "NOT the same person"
    return [
        "re-detected" if row["redetected"] else "NOT re-detected",
        f"identity distance {_fmt(row['identity_distance'])} ({same})",
        f"NME dlib {_fmt(row['nme_dlib68'])}, MediaPipe {_fmt(row['nme_mediapipe']) or 'n/a'}",
        f"seam ratio {_fmt(row['seam_ratio'])}",
    ]


def _data_uri(data: bytes, subtype: str) -> str:
    return f"data:image/{subtype};base64,{base64.b64encode(data).decode('ascii')}"


# ---------------------------------------------------------------- contact sheet


def _sheet(rows: pd.DataFrame, crops: list) -> np.ndarray:
    """Source|output pairs, worst first: ``SHEET_PAIRS_PER_ROW`` a row, ``SHEET_ROWS`` rows.

    The row cap keeps the PNG at a few MB.

    The source tile carries the requested labels, the output tile the metrics: the contact
    sheet's tiles have room for two caption lines each.
    """
    n = min(len(crops), SHEET_ROWS * SHEET_PAIRS_PER_ROW)
    if n == 0:
        return _tile(np.full((TILE_PX, TILE_PX, 3), 255, np.uint8), ["no outputs"])
    pairs = [
        np.hstack(
            [
                _tile(source, caption(row)),
                _tile(output, _sheet_metrics(row)),
                np.full((TILE_PX + CAPTION_PX, 8, 3), 255, np.uint8),
            ]
        )  # gap between pairs
        for row, (source, output) in zip(rows.head(n).to_dict("records"), crops[:n], strict=True)
    ]
    blank = np.full_like(pairs[0], 255)
    pairs += [blank] * (-n % SHEET_PAIRS_PER_ROW)
    lines = [
        np.hstack(pairs[i : i + SHEET_PAIRS_PER_ROW])
        for i in range(0, len(pairs), SHEET_PAIRS_PER_ROW)
    ]
    return np.vstack(lines)


def _sheet_metrics(row: dict) -> list[str]:
    """Two short caption lines (24 characters fit a tile) with an output's metrics."""
    if not isinstance(row["eval_status"], str):
        return ["not evaluated", f"#{row['sample']} {row['target_id']}"[:24]]
    if row["eval_status"] != STATUS_OK:
        return ["evaluation failed", row["eval_status"][:24]]
    face = "" if row["redetected"] else " NO FACE"
    same = "same" if row["same_person"] else "OTHER"
    return [
        f"id {row['identity_distance']:.2f} {same}{face}",
        f"nme {row['nme_dlib68']:.3f} seam {row['seam_ratio']:.2f}",
    ]
