"""Inspection figure of class models: frames per class, and each class's mean face as a mesh.

The VA figure follows Kollias et al. (2018), Fig. 3: on the left the 10 × 10 histogram of
member frames per class; on the right each class's mean deformation applied to a base face,
rendered as a shaded mesh at the class's place in the valence–arousal square (valence left to
right, arousal bottom to top). Classes realised from elsewhere are framed: orange for
``nearest:<idx>`` (with the donor's index), red for ``prior``. An emotion model gives one row
of faces captioned with their frame counts.

Rendering is CPU only: an orthographic front view, triangles rasterised with the project's
painter's-order triangle buffer (:mod:`augmentface.render.rasterize`), Lambert shading of
per-vertex normals interpolated across each triangle (Gouraud), supersampled 2× for smooth
edges; lips, eyes and brows are outlined so that small expressions stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from augmentface.expression.class_models import VA_GRID, ClassModelSet
from augmentface.face import topology as topo
from augmentface.imageio import write_image_atomic
from augmentface.render.rasterize import barycentric_at, triangle_id_buffer

_SKIN = np.array([222.0, 188.0, 165.0])
_LIPS = np.array([200.0, 110.0, 115.0])
_MOUTH = np.array([95.0, 35.0, 40.0])
_EYE = np.array([70.0, 70.0, 80.0])
_LIGHT = np.array([0.3, 0.45, 1.0]) / np.linalg.norm([0.3, 0.45, 1.0])
_OUTLINES = (
    (topo.LIPS_OUTER, (150, 60, 65)),
    (topo.LIPS_INNER, (120, 45, 50)),
    (topo.LEFT_EYE, (50, 50, 60)),
    (topo.RIGHT_EYE, (50, 50, 60)),
    (topo.LEFT_BROW_UPPER, (90, 70, 60)),
    (topo.RIGHT_BROW_UPPER, (90, 70, 60)),
)
_SOURCE_COLOURS = {"nearest": (235, 140, 20), "prior": (210, 30, 30)}
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SUPERSAMPLE = 2
_CAPTION_PX = 16


@dataclass(frozen=True)
class MeshFigureConfig:
    """Layout of the class-means figure.

    Attributes
    ----------
    tile_px : int
        Side of one rendered face, pixels.
    cell_px : int
        Side of one histogram cell, pixels.
    exaggeration : float
        Factor on every mean deformation before rendering (1 = as modelled); the title says
        when it is not 1.
    """

    tile_px: int = 120
    cell_px: int = 40
    exaggeration: float = 1.0


def _vertex_normals(verts: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted normals, oriented towards the viewer (+z)."""
    a, b, c = (verts[triangles[:, i]] for i in range(3))
    face_normals = np.cross(b - a, c - a)
    normals = np.zeros_like(verts)
    for i in range(3):
        np.add.at(normals, triangles[:, i], face_normals)
    if normals[:, 2].sum() < 0:  # the winding decides the sign; the face looks towards +z
        normals = -normals
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def _triangle_colours(triangles: np.ndarray) -> np.ndarray:
    """(T, 3) base RGB per triangle: skin, lips, mouth and eye openings."""
    colours = np.tile(_SKIN, (len(triangles), 1))
    mouth = topo.interior_triangles(triangles, topo.LIPS_INNER)
    # The lips are what the outer lip contour encloses around the mouth opening: the component
    # of the mesh (mouth opening removed, outer contour cut out) holding the inner contour.
    edges = np.concatenate([triangles[~mouth][:, [i, (i + 1) % 3]] for i in range(3)])
    edges = edges[~np.isin(edges, topo.LIPS_OUTER).any(axis=1)]
    n = int(triangles.max()) + 1
    graph = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    lips = np.isin(component, component[list(topo.LIPS_INNER)])
    lips[list(topo.LIPS_OUTER)] = True
    colours[lips[triangles].all(axis=1)] = _LIPS
    colours[mouth] = _MOUTH
    colours[topo.interior_triangles(triangles, topo.LEFT_EYE)] = _EYE
    colours[topo.interior_triangles(triangles, topo.RIGHT_EYE)] = _EYE
    return colours


def render_mesh(
    verts_model_mm: np.ndarray,
    triangles: np.ndarray,
    size_px: int,
    extent_mm: tuple[float, float, float, float],
) -> np.ndarray:
    """Front view of a face mesh, shaded, on white.

    Parameters
    ----------
    verts_model_mm : np.ndarray
        (468, 3) vertices, mm, model frame (x = subject's left, y up, z towards the viewer).
    triangles : np.ndarray
        (T, 3) int.
    size_px : int
        Side of the square image.
    extent_mm : tuple
        ``(x_min, x_max, y_min, y_max)`` mapped onto the image, the same for every tile so that
        tiles compare.

    Returns
    -------
    np.ndarray
        (size_px, size_px, 3) uint8 RGB.
    """
    big = size_px * _SUPERSAMPLE
    x0, x1, y0, y1 = extent_mm
    scale = big / max(x1 - x0, y1 - y0)
    # The subject's left (+x) appears on the viewer's right, as in a frontal photo.
    px = np.column_stack([(verts_model_mm[:, 0] - x0) * scale, (y1 - verts_model_mm[:, 1]) * scale])
    ids = triangle_id_buffer(px, -verts_model_mm[:, 2], triangles, (big, big))
    rows, cols, tri, bary = barycentric_at(ids, px, triangles)
    shade = 0.3 + 0.7 * np.clip(_vertex_normals(verts_model_mm, triangles) @ _LIGHT, 0.0, 1.0)
    pixel_shade = (bary * shade[triangles[tri]]).sum(axis=1)
    image = np.full((big, big, 3), 255.0)
    image[rows, cols] = _triangle_colours(triangles)[tri] * pixel_shade[:, None]
    image = image.clip(0, 255).astype(np.uint8)
    for loop, colour in _OUTLINES:
        points = np.round(px[list(loop)] * 16).astype(np.int32)  # 4 fractional bits
        closed = len(loop) > 5  # brows are open polylines, lips and eyes closed loops
        cv2.polylines(image, [points], closed, colour, _SUPERSAMPLE, cv2.LINE_AA, shift=4)
    return cv2.resize(image, (size_px, size_px), interpolation=cv2.INTER_AREA)


def _text(
    image: np.ndarray,
    text: str,
    org: tuple[int, int],
    scale: float = 0.4,
    colour: tuple[int, int, int] = (20, 20, 20),
) -> None:
    cv2.putText(image, text, org, _FONT, scale, colour, 1, cv2.LINE_AA)


def _framed_tile(tile: np.ndarray, source: str, caption: str) -> np.ndarray:
    """A rendered face over its caption; fallback classes framed and captioned in colour."""
    kind, _, donor = source.partition(":")
    colour = _SOURCE_COLOURS.get(kind)
    out = np.full((tile.shape[0] + _CAPTION_PX, tile.shape[1], 3), 255, np.uint8)
    out[: tile.shape[0]] = tile
    if colour is not None:
        caption = f"{caption} <{donor}" if donor else f"{caption} prior"
        cv2.rectangle(out, (1, 1), (out.shape[1] - 2, out.shape[0] - 2), colour, 3)
    else:
        cv2.rectangle(out, (0, 0), (out.shape[1] - 1, out.shape[0] - 1), (200, 200, 200), 1)
    _text(out, caption, (5, out.shape[0] - 6), 0.36, colour or (20, 20, 20))
    return out


def _histogram(counts: np.ndarray, sources: tuple[str, ...], cell: int) -> np.ndarray:
    """10 × 10 cells coloured by log frame count (arousal up), each with its count.

    Fallback classes get a border in their source's colour, as their faces do.
    """
    grid = counts.reshape(VA_GRID, VA_GRID)[::-1]  # row 0 = highest arousal bin
    level = np.log1p(grid) / max(np.log1p(grid.max()), 1e-9)
    colours = cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    image = np.full((VA_GRID * cell, VA_GRID * cell, 3), 255, np.uint8)
    for r in range(VA_GRID):
        for c in range(VA_GRID):
            index = VA_GRID * (VA_GRID - 1 - r) + c
            rgb = tuple(int(x) for x in colours[r, c, ::-1])
            x0, y0 = c * cell, r * cell
            cv2.rectangle(image, (x0, y0), (x0 + cell - 1, y0 + cell - 1), rgb, -1)
            frame = _SOURCE_COLOURS.get(sources[index].partition(":")[0])
            if frame is not None:
                cv2.rectangle(image, (x0 + 1, y0 + 1), (x0 + cell - 2, y0 + cell - 2), frame, 2)
            ink = (0, 0, 0) if sum(rgb) > 3 * 140 else (255, 255, 255)
            _text(image, str(int(counts[index])), (x0 + 5, y0 + cell // 2 + 4), 0.36, ink)
    return image


def _va_axes(panel: np.ndarray, title: str) -> np.ndarray:
    """The panel with a title, valence ticks below and arousal ticks to the left."""
    left, top, bottom = 40, 48, 44
    h, w = panel.shape[:2]
    out = np.full((h + top + bottom, w + left + 10, 3), 255, np.uint8)
    out[top : top + h, left : left + w] = panel
    _text(out, title, (left + w // 2 - 4 * len(title), 18), 0.5)
    _text(out, "arousal", (2, top - 22), 0.42)
    for value, frac in ((-1, 0.0), (0, 0.5), (1, 1.0)):
        label = f"{value:+d}" if value else "0"
        _text(out, label, (left + int(frac * w) - 8, top + h + 16))
        _text(out, label, (8, top + int((1 - frac) * h) + 4))
    _text(out, "valence", (left + w // 2 - 25, top + h + 34), 0.42)
    return out


def class_means_figure(
    model_set: ClassModelSet,
    base_verts_model_mm: np.ndarray,
    triangles: np.ndarray,
    out_png: str | Path,
    config: MeshFigureConfig | None = None,
) -> Path:
    """Write the class-means figure of ``model_set`` as a PNG (atomically); returns its path.

    Parameters
    ----------
    model_set : ClassModelSet
        VA (10 × 10 grid) or emotion (one row) class models.
    base_verts_model_mm : np.ndarray
        (468, 3) the face the means are applied to, mm (e.g. ``FaceModel.mean_verts_model_mm``).
    triangles : np.ndarray
        (T, 3) int mesh triangles.
    out_png : str or Path
        Destination ``.png``.
    config : MeshFigureConfig, optional
        Layout; defaults when omitted.
    """
    config = config or MeshFigureConfig()
    base = np.asarray(base_verts_model_mm, dtype=np.float64)
    pad = 0.06 * np.ptp(base[:, :2], axis=0).max()
    extent = (
        base[:, 0].min() - pad,
        base[:, 0].max() + pad,
        base[:, 1].min() - pad,
        base[:, 1].max() + pad,
    )
    tiles = []
    for index, source in enumerate(model_set.sources):
        verts = base + config.exaggeration * model_set.means_model_mm[index]
        caption = f"{model_set.class_names[index]} n={int(model_set.counts[index])}"
        tiles.append(
            _framed_tile(render_mesh(verts, triangles, config.tile_px, extent), source, caption)
        )
    note = "" if config.exaggeration == 1 else f" (deformations x{config.exaggeration:g})"
    if model_set.kind == "va":
        rows = [np.hstack(tiles[VA_GRID * a : VA_GRID * (a + 1)]) for a in range(VA_GRID)]
        faces = _va_axes(np.vstack(rows[::-1]), "mean face per class" + note)
        hist = _va_axes(
            _histogram(model_set.counts, model_set.sources, config.cell_px), "frames per class"
        )
        canvas = np.full((faces.shape[0], hist.shape[1] + faces.shape[1], 3), 255, np.uint8)
        top = (faces.shape[0] - hist.shape[0]) // 2
        canvas[top : top + hist.shape[0], : hist.shape[1]] = hist
        canvas[:, hist.shape[1] :] = faces
    else:
        strip = np.hstack(tiles)
        canvas = np.full((strip.shape[0] + 40, strip.shape[1] + 20, 3), 255, np.uint8)
        canvas[30 : 30 + strip.shape[0], 10 : 10 + strip.shape[1]] = strip
        _text(canvas, "mean face per emotion" + note, (10, 20), 0.5)
    legend = np.full((28, canvas.shape[1], 3), 255, np.uint8)
    _text(
        legend,
        "framed: orange = nearest populated class (<donor), red = built-in prior;"
        f" fewer than {model_set.config.min_frames} frames = fallback",
        (10, 18),
        0.42,
    )
    out_png = Path(out_png)
    write_image_atomic(out_png, np.vstack([canvas, legend]))
    return out_png
