"""Re-render a fitted face with a new expression, using the photo's own texture.

The render is a short sequence of layers, each a module with one entry function, applied in
this order to one crop of the photo:

1. warp (:func:`augmentface.render.warp.warp_face`): the fitted mesh (MediaPipe's 468
   landmarks) is moved by the expression change, posed into the image, and re-rendered with
   the photo's texture inside a fixed anchor ring, which also gives the feathered mask;
2. interiors, which paint what an opening shows behind it: the eyes
   (:func:`augmentface.render.eyes.paint_eyes`: sclera and iris where an eye widens), then the
   mouth (:func:`augmentface.render.mouth.paint_mouth`: a mouth interior where the lips part);
3. details, after the interiors (:func:`augmentface.render.details.apply_details`): the
   wrinkles and folds of the expression change, as shading of the skin over the target mesh,
   when :func:`render_expression` is given maps and weights.

This module only orchestrates: every decision about an opening belongs to its layer. The one
the warp needs in advance, which interiors stay still while their rims slide over them, comes
from the layers too: the eyeballs always (the eye layer paints what widening reveals), the
teeth when :func:`augmentface.render.mouth.keeps_teeth_still` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from augmentface.errors import RenderError
from augmentface.face import topology as topo
from augmentface.face.model import N_MESH_VERTICES, FaceModel
from augmentface.render.details import DetailsInput, apply_details
from augmentface.render.eyes import paint_eyes
from augmentface.render.mouth import keeps_teeth_still, lip_openings_px, paint_mouth
from augmentface.render.warp import warp_face


@dataclass(frozen=True)
class RenderedFace:
    """One rendered face: a crop of the image plus where it goes.

    Attributes
    ----------
    image_rgb : (h, w, 3) uint8, the crop ``roi`` of the re-rendered photo.
    alpha : (h, w) uint8, 255 inside the face and anchor band, feathered to 0 at the ring.
    roi : (x0, y0, x1, y1) in full-image pixels, half-open.
    target_verts_px : (468, 3) float, the deformed mesh in image pixels.
    mouth_painted : whether a procedural mouth interior was painted.
    """

    image_rgb: np.ndarray
    alpha: np.ndarray
    roi: tuple[int, int, int, int]
    target_verts_px: np.ndarray
    mouth_painted: bool


def render_expression(
    image_rgb: np.ndarray,
    landmarks_px: np.ndarray,
    delta_verts_px: np.ndarray,
    model: FaceModel,
    *,
    interiors: bool = True,
    details: DetailsInput | None = None,
) -> RenderedFace:
    """Deform the face in ``image_rgb`` by ``delta_verts_px`` and re-render it.

    Parameters
    ----------
    image_rgb : (H, W, 3) uint8 source photo.
    landmarks_px : (478 or 468, 3) MediaPipe landmarks of the face, image frame (px).
    delta_verts_px : (468, 3) displacement of every mesh vertex in the image frame (px), i.e.
        the expression change posed into the image
        (:func:`augmentface.frames.offsets_model_to_image`).
    model : the face model (topology and triangles).
    interiors : True (the default) treats the openings as what lies behind them: still
        eyeballs and closing teeth, sclera painted where an eye widens, a mouth interior where
        the lips part (the interior layers). False gives the plain mesh warp, which stretches
        the openings' pixels like skin: the naive baseline, for comparisons only (no layer
        after the warp, details included).
    details : detail maps and per-AU weights (intensity change / 5) for the detail layer;
        None (the default) leaves it out.

    Raises
    ------
    RenderError
        On non-finite vertices, or a face region under 4 px on a side inside the image.
    """
    landmarks_px = np.asarray(landmarks_px, dtype=np.float64)
    src = landmarks_px[:N_MESH_VERTICES]
    dst = src + delta_verts_px
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise RenderError("non-finite vertices")
    if not interiors:
        warp = warp_face(image_rgb, src, dst, model)
        return RenderedFace(warp.image_rgb, warp.alpha, warp.roi, dst, False)
    static = (topo.LEFT_EYE, topo.RIGHT_EYE)
    openings = lip_openings_px(src, dst)
    if keeps_teeth_still(src, dst, openings_px=openings):
        static += (topo.LIPS_INNER,)
    warp = warp_face(image_rgb, src, dst, model, static_loops=static)
    crop = paint_eyes(warp.image_rgb, image_rgb, landmarks_px, dst, warp.roi)
    crop, painted = paint_mouth(crop, image_rgb, src, dst, warp.roi, openings_px=openings)
    if details is not None:
        crop = apply_details(
            crop, dst, warp.roi, model, details, warp.triangle_ids, warp.barycentric_maps
        )
    return RenderedFace(crop, warp.alpha, warp.roi, dst, painted)
