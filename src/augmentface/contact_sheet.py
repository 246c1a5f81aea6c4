"""A contact sheet: each source face beside its augmented versions, captioned with labels.

What a researcher looks at first: one row per source face, the source crop first, then every
output of that face, each captioned with its target label. Outputs that blend rejected but
kept (``--keep-rejected``) are shown too, framed in red, with what was rejected: the picture
says why they will not ship.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import cv2
import numpy as np

from augmentface.datasets.frames import read_frame
from augmentface.imageio import read_image, write_image_atomic
from augmentface.manifest import read_manifest
from augmentface.stages.common import FITS_FILE, LABELS_FILE, OUTPUT_DIR
from augmentface.stages.schemas import AU_NAMES, FITS, LABELS

TILE_PX = 220
CAPTION_PX = 34


def caption(row: dict) -> list[str]:
    """Two short caption lines for one output row."""
    if row["kind"] == "va":
        return [f"V {row['valence']:+.2f}  A {row['arousal']:+.2f}", f"class {row['va_class']}"]
    aus = [f"{n}={row[n]:g}" for n in AU_NAMES if row[n] and not math.isnan(row[n])]
    line, lines = "", []
    for item in aus:
        if len(line) + len(item) > 24:
            lines.append(line.strip())
            line = ""
        line += item + " "
    lines.append(line.strip())
    return lines[:2]


def _crop(image: np.ndarray, bbox: np.ndarray) -> np.ndarray:
    """Square crop around a face box with 35 % margin, resized to the tile size."""
    x0, y0, x1, y1 = bbox
    side = 1.35 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    size = max(round(side), 1)
    pad = max(0, -left, -top, left + size - image.shape[1], top + size - image.shape[0])
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    crop = padded[top + pad: top + pad + size, left + pad: left + pad + size]
    return cv2.resize(crop, (TILE_PX, TILE_PX), interpolation=cv2.INTER_AREA)


def rejection_caption(error: str) -> str:
    """A short caption line for a rejected output: the first AU its reason names."""
    found = re.search(r"AU(\d+)\D+?(\d+\.\d)", error or "")
    return f"REJECTED: own AU{found[1]} {found[2]} left" if found else "REJECTED"


def _tile(image: np.ndarray, lines: list[str], rejected: bool = False) -> np.ndarray:
    tile = np.full((TILE_PX + CAPTION_PX, TILE_PX, 3), 255, np.uint8)
    tile[:TILE_PX] = image
    if rejected:
        cv2.rectangle(tile, (1, 1), (TILE_PX - 2, TILE_PX - 2), (220, 30, 30), 3)
    for i, text in enumerate(lines):
        cv2.putText(tile, text, (4, TILE_PX + 14 + 15 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                    (20, 20, 20), 1, cv2.LINE_AA)
    return tile


def write_contact_sheet(workdir: Path, path: Path, max_columns: int = 9) -> Path:
    """Write the contact sheet of ``workdir``'s outputs as a PNG; returns its path."""
    fits = read_manifest(Path(workdir) / FITS_FILE, FITS, run_first="augmentface fit3dmm").df
    labels = read_manifest(Path(workdir) / OUTPUT_DIR / LABELS_FILE, LABELS,
                           run_first="augmentface blend").df
    shown = (labels["status"] == "ok") | (
        (labels["status"] == "rejected") & labels["output_path"].notna()
    )
    labels = labels[shown]
    rows = []
    for (image_path, face), group in labels.groupby(["image_path", "face_index"], sort=True):
        fit = fits[(fits.image_path == image_path) & (fits.face_index == face)].iloc[0]
        source = read_frame(image_path)
        tiles = [_tile(_crop(source, fit.bbox_px), ["source", Path(image_path).name[:24]])]
        for row in group.sort_values(["target_id", "sample"]).to_dict("records")[:max_columns]:
            rejected = row["status"] == "rejected"
            lines = caption(row)
            if rejected:
                lines = [lines[0], rejection_caption(row["error"])]
            image = _crop(read_image(row["output_path"]), fit.bbox_px)
            tiles.append(_tile(image, lines, rejected))
        rows.append(np.hstack(tiles))
    if not rows:
        sheet = _tile(np.full((TILE_PX, TILE_PX, 3), 255, np.uint8), ["no outputs"])
    else:
        width = max(r.shape[1] for r in rows)
        sheet = np.vstack([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)),
                                  constant_values=255) for r in rows])
    write_image_atomic(path, sheet)
    return path
