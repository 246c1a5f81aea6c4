"""The expression-detail layer: the wrinkles and folds an expression makes, as skin shading.

A mesh moved by the AU rig is smooth: it lacks what an expression does to the skin's surface,
the deepened nasolabial fold of a smile, the crow's feet, the glabellar lines of a frown
(Ekman, Friesen & Hager 2002, each AU's "appearance changes"). This layer adds them as shading
after the interiors (:mod:`augmentface.render.eyes`, :mod:`augmentface.render.mouth`).

Maps live in the canonical mesh's UV space (``model.mesh.uv``: ``u`` from the subject's right to
left, ``v`` from the forehead down, both in [0, 1], a frontal unwrap of the face). Texel ``(i,
j)`` of an ``S x S`` map covers ``u`` in ``[j, j + 1] / S``, ``v`` in ``[i, i + 1] / S``. A map
holds the natural log of the luminance ratio that its AU makes at intensity 5 (FACS E), so the
layer is multiplicative and linear in intensity::

    out = in · exp(Σ_k w_k · map_k(uv)),   w_k = (target intensity_k − source intensity_k) / 5

applied to R, G and B alike: the person's own skin colour and texture stay, only darkened in a
fold and lightened on its ridge. Ratios are of the image's coded values (what
:mod:`augmentface.render.warp` moves and what a learned map is measured on), not of linear
light. A negative weight lifts a map's darkening (and darkens its ridge): an expression the
photo shows and the target drops loses its folds too. A person's fold lies a few millimetres
from where a map puts it, so a lift is capped by the relief the photo shows at the pixel (its
log luminance less the local mean over ~3 mm): it flattens the person's own fold where the two
meet and leaves flat skin alone instead of drawing a light line on it. Weights under
:data:`MIN_WEIGHT` are skipped.

The layer's level of detail follows the face's size: the maps come with a pyramid (each level
half the size of the one before, Gaussian pre-filtered by ``cv2.pyrDown``), and a face samples
the level whose texels are closest to its pixels, so a fine wrinkle neither aliases on a 60 px
face nor is blurred on a 1000 px one. The weighted sum of the active maps at that level is
sampled bilinearly, as ``cv2.remap`` samples it (``INTER_LINEAR``, positions on a 1/32 texel
grid, 0 off the map), at the pixels of the target mesh's skin triangles; every other pixel keeps
its value exactly. The per-pixel work runs in compiled loops
(:mod:`augmentface.render.detail_kernels`).

Built-in maps are :func:`augmentface.render.detail_maps.builtin_detail_maps`; learned ones come
from :mod:`augmentface.stages.train_details`.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from augmentface.atomic import atomic_write_bytes
from augmentface.errors import UsageError
from augmentface.expression.source_residual import shown_intensities
from augmentface.face.model import FaceModel
from augmentface.npz_files import header_array, read_npz
from augmentface.render.blur import gaussian_blur
from augmentface.render.model_tables import per_model, read_only
from augmentface.render.rasterize import (
    _barycentric_affines,
    barycentric_at,
    signed_areas_px2,
    triangle_id_buffer,
)

FORMAT = "augmentface-detail-maps"
FORMAT_VERSION = 1
#: The pyramid stops above this size: a smaller level would have under a texel per feature.
MIN_LEVEL_TEXELS = 16
#: Points per row of the grids handed to ``cv2.remap`` (its maps must stay under 32767 a side).
_REMAP_ROW = 1024
#: Scale of the relief a negative weight may flatten, in UV units (about 3 mm): a fold is
#: darker than the skin this far around it.
RELIEF_SIGMA_UV = 0.015
#: Weights smaller than this (an intensity change under 0.05) are skipped: they would change
#: no pixel by as much as one level.
MIN_WEIGHT = 0.01
#: The rig's intensity scale: a map is the log ratio at this intensity (FACS E).
INTENSITY_E = 5.0


@dataclass(frozen=True, eq=False)
class DetailMaps:
    """Per-AU expression-detail maps in the canonical mesh's UV space.

    Attributes
    ----------
    au_numbers : tuple[int, ...]
        (K,) the AU of each map.
    log_ratio_uv : np.ndarray
        (K, S, S) float32, natural log of the luminance ratio at intensity 5, per texel
        (row = ``v``, column = ``u``); 0 where the AU changes nothing.
    face_model_id : str
        The face model whose UV layout the maps are drawn in.
    source : str
        Where the maps come from, e.g. ``"builtin"`` or ``"learned: fits.parquet"``.
    """

    au_numbers: tuple[int, ...]
    log_ratio_uv: np.ndarray
    face_model_id: str
    source: str

    def __post_init__(self) -> None:
        maps = self.log_ratio_uv
        if maps.ndim != 3 or maps.shape[1] != maps.shape[2] or maps.dtype != np.float32:
            raise UsageError(
                f"detail maps must be (K, S, S) float32, not {maps.shape} {maps.dtype}"
            )
        if len(self.au_numbers) != len(maps) or len(set(self.au_numbers)) != len(maps):
            raise UsageError(f"{len(maps)} detail maps for AUs {self.au_numbers}")
        if not np.isfinite(maps).all():
            raise UsageError("detail maps hold non-finite values")

    @property
    def size(self) -> int:
        """S, texels on a side."""
        return self.log_ratio_uv.shape[1]

    @cached_property
    def pyramid(self) -> tuple[np.ndarray, ...]:
        """Levels of detail: (K, S_l, S_l) float32 for S_l = S, S/2, … down to 16 texels.

        Each level is ``cv2.pyrDown`` of the one before, then cut to where level 0 is non-zero
        (its footprint at that level), so a map stays exactly 0 outside its region at every
        level.
        """
        levels = [self.log_ratio_uv]
        support = (self.log_ratio_uv != 0).astype(np.float32)
        while levels[-1].shape[1] // 2 >= MIN_LEVEL_TEXELS:
            size = (levels[-1].shape[1] + 1) // 2
            down = np.stack([cv2.pyrDown(m) for m in levels[-1]])
            footprint = np.stack(
                [cv2.resize(s, (size, size), interpolation=cv2.INTER_AREA) for s in support]
            )
            levels.append(np.where(footprint > 0, down, np.float32(0)))
        return tuple(levels)

    def digest(self) -> str:
        """sha256 of the AUs, the face model id and the maps: what a render depends on."""
        digest = hashlib.sha256(json.dumps([self.au_numbers, self.face_model_id]).encode())
        digest.update(np.ascontiguousarray(self.log_ratio_uv).tobytes())
        return digest.hexdigest()


@dataclass(frozen=True)
class DetailsInput:
    """What one render's detail layer applies: the maps and a weight per map.

    Attributes
    ----------
    maps : DetailMaps
    weights : np.ndarray
        (K,) float, one per map in ``maps.au_numbers`` order: intensity change / 5 (FACS
        units / 5; 1 adds a map in full, -1 removes it).
    """

    maps: DetailMaps
    weights: np.ndarray


def save_detail_maps(maps: DetailMaps, path: str | Path) -> Path:
    """Write ``maps`` as ``.npz`` (a JSON header and one float32 array; no pickle), atomically."""
    path = Path(path)
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "au_numbers": list(maps.au_numbers),
        "face_model_id": maps.face_model_id,
        "source": maps.source,
    }
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        header_json=header_array(header),
        log_ratio_uv=maps.log_ratio_uv,
    )
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_detail_maps(path: str | Path, model: FaceModel) -> DetailMaps:
    """Read maps written by :func:`save_detail_maps` for the face model in use.

    Raises
    ------
    UsageError
        The file is missing, unreadable, of another format, or made for another face model
        (its UV layout and AUs may differ).
    """
    path = Path(path)
    header, arrays = read_npz(
        path, "detail-maps", FORMAT, FORMAT_VERSION, UsageError, ("log_ratio_uv",)
    )
    if header["face_model_id"] != model.model_id:
        raise UsageError(
            f"{path}: made for face model {header['face_model_id']}, but this installation has "
            f"{model.model_id}; train the detail maps again (augmentface synth-au train-details)"
        )
    return DetailMaps(
        tuple(int(a) for a in header["au_numbers"]),
        arrays["log_ratio_uv"],
        header["face_model_id"],
        header["source"],
    )


def detail_weights(
    maps: DetailMaps,
    au_numbers: Sequence[int],
    target_intensities: np.ndarray,
    fitted_intensities: np.ndarray,
    identity_noise: np.ndarray,
) -> np.ndarray:
    """Per-map weights of one render: the intensity change from the photo to the target, / 5.

    What the photo already shows is the fit's signed estimate less the AU's identity noise
    (how much of a person's own shape the fit reads as that AU), clipped at 0
    (:func:`augmentface.expression.source_residual.shown_intensities`): only what the fit can
    tell from the person's own shape counts as expression whose detail to flatten.

    Parameters
    ----------
    maps : the maps the weights are for.
    au_numbers : (A,) the AU order of the intensity vectors (the rig's, ``model.rig.au_numbers``).
    target_intensities : (A,) FACS 0–5, the target's AUs.
    fitted_intensities : (A,) FACS units, the fit's signed estimate of the photo's AUs
        (``FaceFit.au_signed``).
    identity_noise : (A,) FACS units (``augmentface.face.model.identity_au_noise``).

    Returns
    -------
    (K,) float64 in [-1, 1], in ``maps.au_numbers`` order.
    """
    source = shown_intensities(fitted_intensities, identity_noise)
    change = (np.asarray(target_intensities, dtype=np.float64) - source) / INTENSITY_E
    index = {int(au): k for k, au in enumerate(au_numbers)}
    return np.array([change[index[au]] for au in maps.au_numbers])


def uv_texels(model: FaceModel, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which skin triangle of the UV layout each texel centre of an ``size``² map lies in.

    Returns
    -------
    rows, cols : (M,) intp, the texels covered by a skin triangle (eye and mouth openings
        excluded).
    tri : (M,) int, the triangle of each.
    bary : (M, 3) float64, barycentric weights of its corners at the texel centre.
    """
    uv_px = model.mesh.uv * size - 0.5  # texel centres at integer coordinates
    flat = np.zeros(len(model.triangles))  # a planar layout: no occlusion to resolve
    ids = triangle_id_buffer(uv_px, flat, model.triangles, (size, size))
    ids[(ids >= 0) & ~model.topology.skin_triangles[ids]] = -1
    return barycentric_at(ids, uv_px, model.triangles)


def apply_details(
    crop_rgb: np.ndarray,
    dst_verts_px: np.ndarray,
    roi: tuple[int, int, int, int],
    model: FaceModel,
    details: DetailsInput,
    triangle_ids: np.ndarray | None = None,
    barycentric_maps: np.ndarray | None = None,
) -> np.ndarray:
    """Shade the crop with the weighted detail maps over the target mesh's skin.

    Parameters
    ----------
    crop_rgb : (h, w, 3) uint8, the crop ``roi`` of the rendered photo; not modified.
    dst_verts_px : (468, 3) float, the target mesh in the image frame (x, y px; depth px,
        larger is farther).
    roi : (x0, y0, x1, y1) of ``crop_rgb`` in full-image pixels, half-open.
    model : the face model (triangles, UVs, skin triangles).
    details : the maps and their weights.
    triangle_ids : (h, w) int, the visible triangle per crop pixel when the caller has
        rasterised the target mesh already (the warp layer's buffer: indices below
        ``len(model.triangles)`` are the mesh's, others are ignored); None rasterises it here.
    barycentric_maps : (T', 3, 3) float, per triangle the map from a homogeneous crop pixel
        ``(x, y, 1)`` to its barycentric weights in the target mesh, when the caller has them
        (the warp layer's: its first ``len(model.triangles)`` rows are the mesh's); None
        computes them here.

    Returns
    -------
    (h, w, 3) uint8
        ``crop_rgb`` itself when every weight is 0, else a shaded copy; pixels off the mesh's
        skin, or where the weighted maps are 0, keep their values exactly.
    """
    maps = details.maps
    weights = np.asarray(details.weights, dtype=np.float32)
    weights = np.where(np.abs(weights) >= MIN_WEIGHT, weights, np.float32(0))
    if not weights.any():
        return crop_rgb
    local_px = np.asarray(dst_verts_px, dtype=np.float64)[:, :2] - roi[:2]
    triangles = model.triangles
    if triangle_ids is None:
        triangle_ids = triangle_id_buffer(
            local_px, dst_verts_px[:, 2], triangles, crop_rgb.shape[:2]
        )
    from augmentface.render.detail_kernels import map_sums, shade_details, shade_lifted
    from augmentface.render.kernels import corner_affines  # both compile on first use

    tables = _tables(model)
    px_per_uv = _px_per_uv(local_px, model)
    level = min(max(round(math.log2(maps.size / px_per_uv)), 0), len(maps.pyramid) - 1)
    layer = maps.pyramid[level]
    # Each triangle's pixel -> texel map is affine: its barycentric map composed with its
    # corners' texel coordinates (texel centres at integers).
    corners = tables.texel_corners(layer.shape[1])  # (T, 3, 2)
    if barycentric_maps is None:
        barycentric_maps = _barycentric_affines(local_px, triangles)
    bary_maps = np.ascontiguousarray(barycentric_maps[: len(triangles)], dtype=np.float64)
    to_texel = corner_affines(corners, bary_maps)  # (T, 2, 3)
    # The skin triangles that may sample a non-zero texel of a weighted map.
    box = tables.texel_box(layer.shape[1])
    shading = tables.skin & _reaches_maps(maps, level, np.flatnonzero(weights), box, to_texel)
    # One compiled pass shades the pixels the maps only deepen and sets aside the ones a
    # negative weight lifts: their cap, the relief, is filtered over the box they span.
    out = crop_rgb.copy()
    crop_rgb = np.ascontiguousarray(crop_rgb)
    deepen, lift, lifted = shade_details(
        np.ascontiguousarray(triangle_ids, dtype=np.int32),
        shading,
        to_texel,
        map_sums(layer, weights),
        crop_rgb,
        out,
    )
    if lifted[2] > lifted[0]:
        # Flattening removes at most the relief the photo shows there: a person's fold lies a
        # few mm from the map's, and lifting the map's where the skin is flat would draw a
        # light line instead of removing a dark one.
        relief, (y0, x0) = _relief(crop_rgb, tuple(lifted), RELIEF_SIGMA_UV * px_per_uv)
        shade_lifted(crop_rgb, deepen, lift, lifted, relief, y0, x0, out)
    return out


def _reaches_maps(
    maps: DetailMaps,
    level: int,
    chosen: np.ndarray,
    box: tuple[np.ndarray, np.ndarray],
    to_texel: np.ndarray,
) -> np.ndarray:
    """(T,) bool: the triangles whose pixels may sample a non-zero texel of a ``chosen`` map.

    A pixel of triangle t samples the level's maps at ``to_texel[t] @ (x, y, 1)``, bilinearly
    (the 2x2 texels around it). The rasteriser gives a triangle the pixels inside it and ones
    its edges touch, less than a pixel outside; so its pixels sample within its corners' texel
    ``box`` (lowest and highest (T, 2) texel coordinates) grown by 1.5 px through its
    pixel-to-texel map, plus 2 texels. A triangle whose grown
    box holds no non-zero texel of any chosen map shades none of its pixels: leaving its pixels
    out changes no output, and saves the layer most of its per-pixel work (a smile's maps
    reach about 40 % of the skin). Boxes are counted on summed-area tables of each map's
    non-zero texels (:func:`_nonzero_counts`), in a compiled loop
    (:func:`.detail_kernels.boxes_reach_maps`).
    """
    from augmentface.render.detail_kernels import boxes_reach_maps  # compiles on first use

    box_low, box_high = box
    counts = _nonzero_counts(maps, level)
    return boxes_reach_maps(counts, chosen.astype(np.intp), box_low, box_high, to_texel)


def _nonzero_counts(maps: DetailMaps, level: int) -> np.ndarray:
    """(K, S + 1, S + 1) int32: ``[k, i, j]`` counts the non-zero texels of map k at ``level``
    in rows < i and columns < j (a summed-area table), made once per maps and level."""

    def build() -> np.ndarray:
        layer = maps.pyramid[level]
        counts = np.zeros((len(layer), layer.shape[1] + 1, layer.shape[2] + 1), np.int32)
        counts[:, 1:, 1:] = (layer != 0).cumsum(axis=1, dtype=np.int32).cumsum(axis=2)
        return read_only(counts)

    return per_model(maps, ("non-zero texel counts", level), build)


@dataclass(frozen=True, eq=False)
class _ModelTables:
    """What the layer derives from the face model alone, made once per model (:func:`_tables`).

    ``skin`` (T,) bool: whether a triangle is a skin triangle; ``skin_triangles`` (S, 3) the
    skin triangles and ``skin_area_uv`` (S,) their signed UV areas.
    """

    uv: np.ndarray
    triangles: np.ndarray
    skin: np.ndarray
    skin_triangles: np.ndarray
    skin_area_uv: np.ndarray

    def texel_corners(self, size: int) -> np.ndarray:
        """(T, 3, 2) float64 texel coordinates of every triangle's corners in a size² map."""
        return per_model(self, ("texel corners", size), lambda: self._texel_corners(size))

    def _texel_corners(self, size: int) -> np.ndarray:
        return read_only(self.uv[self.triangles] * size - 0.5)

    def texel_box(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The lowest and the highest (T, 2) texel coordinates of every triangle's corners."""

        def build() -> tuple[np.ndarray, np.ndarray]:
            corners = self.texel_corners(size)
            return read_only(corners.min(axis=1), corners.max(axis=1))

        return per_model(self, ("texel box", size), build)


def _tables(model: FaceModel) -> _ModelTables:
    def build() -> _ModelTables:
        skin = model.topology.skin_triangles
        skin_triangles = model.triangles[skin]
        return _ModelTables(
            uv=model.mesh.uv,
            triangles=model.triangles,
            skin=read_only(skin.copy()),
            skin_triangles=read_only(skin_triangles),
            skin_area_uv=read_only(signed_areas_px2(model.mesh.uv, skin_triangles)),
        )

    return per_model(model, "detail tables", build)


def _px_per_uv(local_px: np.ndarray, model: FaceModel) -> float:
    """Pixels per unit of UV on this face: the square root of the skin's area in pixels over
    its area in UV, over the triangles that face the camera."""
    tables = _tables(model)
    area_px = signed_areas_px2(local_px, tables.skin_triangles)
    area_uv = tables.skin_area_uv
    # The UV layout and the image both have y down: a front-facing triangle keeps its sign.
    facing = (area_px * area_uv) > 0
    if not facing.any():
        return 1.0
    return float(np.sqrt(np.abs(area_px[facing]).sum() / np.abs(area_uv[facing]).sum()))


def _relief(
    crop_rgb: np.ndarray, box: tuple[int, int, int, int], sigma_px: float
) -> tuple[np.ndarray, tuple[int, int]]:
    """Log luminance less its local mean (Gaussian, ``sigma_px``) around the pixels of ``box``
    (``(y0, x0, y1, x1)``, half-open): negative in a fold or a pore, positive on a ridge.

    Only the box and the blur's reach around it are filtered.

    Returns
    -------
    relief : (h', w') float32, the filtered region.
    origin : ``(y, x)`` of its first pixel in the crop.
    """
    sigma_px = max(sigma_px, 0.5)
    reach = int(np.ceil(4 * sigma_px))
    y0, x0 = max(box[0] - reach, 0), max(box[1] - reach, 0)
    y1, x1 = box[2] + reach, box[3] + reach
    luma = cv2.cvtColor(crop_rgb[y0:y1, x0:x1].astype(np.float32), cv2.COLOR_RGB2GRAY)
    log_luma = np.log1p(luma)
    if sigma_px < _COARSE_RELIEF_SIGMA_PX:
        local_mean = cv2.GaussianBlur(log_luma, (0, 0), sigma_px)
    else:  # a big face: the same Gaussian on a coarser grid (render.blur.gaussian_blur)
        local_mean = gaussian_blur(log_luma, sigma_px, step=int(sigma_px // 3))
    return log_luma - local_mean, (y0, x0)


#: The relief's local mean is blurred on a coarser grid from this sigma on (faces of ~400 px
#: and more; the 4-sigma kernel would cost ~20 ms on a 1000 px face).
_COARSE_RELIEF_SIGMA_PX = 6.0


def sample_points(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(M,) bilinear samples of a float32 (H, W) image at (M, 2) float32 ``(x, y)`` pixel
    positions (pixel centres at integers), 0 off the image.

    ``cv2.remap`` takes maps under 32767 on a side, so the points go in as rows of 1024.
    """
    n = len(points)
    padded = np.full((-(-n // _REMAP_ROW) * _REMAP_ROW, 2), -2.0, np.float32)
    padded[:n] = points
    grid = padded.reshape(-1, _REMAP_ROW, 2)
    samples = cv2.remap(
        image, grid, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    return samples.ravel()[:n]
