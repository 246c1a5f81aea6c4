"""Named vertex sets of MediaPipe's 468-vertex face mesh, and what follows from them.

The index lists are facts about the mesh topology, the same as MediaPipe's published contour
connections (``FaceLandmarksConnections``; a test checks they agree). "Left" and "right" are the
subject's own: the subject's left eye is on the viewer's right in a frontal photo.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve
from scipy.spatial import cKDTree

# Closed loops, each starting at a corner and running along the upper arc first.
LIPS_INNER = (
    78,
    191,
    80,
    81,
    82,
    13,
    312,
    311,
    310,
    415,
    308,
    324,
    318,
    402,
    317,
    14,
    87,
    178,
    88,
    95,
)
LIPS_INNER_UPPER_COUNT = 11  # 78 … 308: the upper arc, corner to corner
LIPS_OUTER = (
    61,
    185,
    40,
    39,
    37,
    0,
    267,
    269,
    270,
    409,
    291,
    375,
    321,
    405,
    314,
    17,
    84,
    181,
    91,
    146,
)
LIPS_OUTER_UPPER_COUNT = 11
LEFT_EYE = (362, 398, 384, 385, 386, 387, 388, 466, 263, 249, 390, 373, 374, 380, 381, 382)
RIGHT_EYE = (133, 173, 157, 158, 159, 160, 161, 246, 33, 7, 163, 144, 145, 153, 154, 155)
EYE_UPPER_COUNT = 9  # inner corner … outer corner along the upper lid
LEFT_BROW_UPPER = (336, 296, 334, 293, 300)  # inner → outer
LEFT_BROW_LOWER = (285, 295, 282, 283, 276)
RIGHT_BROW_UPPER = (107, 66, 105, 63, 70)
RIGHT_BROW_LOWER = (55, 65, 52, 53, 46)
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip

#: The 68 iBUG-300W points as mesh vertices (jaw 0–16, brows 17–26, nose 27–35, eyes 36–47,
#: outer lips 48–59, inner lips 60–67), chosen by position. The jaw points are the vertices
#: nearest to dlib's 68-point predictor over the 64 shared photos (median), made symmetric:
#: iBUG's jaw starts higher than MediaPipe's outline suggests, at the ear.
IBUG68 = (
    127, 234, 93, 215, 138, 136, 149, 176, 152, 400, 378, 365, 367, 435, 323, 454, 356,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
)  # fmt: skip

#: Iris centres in MediaPipe's 478-point output (after the 468 mesh vertices).
LEFT_IRIS_CENTER, RIGHT_IRIS_CENTER = 473, 468


def interior_triangles(triangles: np.ndarray, loop: tuple[int, ...]) -> np.ndarray:
    """Boolean mask of triangles whose three vertices all lie on ``loop``.

    The canonical mesh is one disk: it spans the mouth and eye openings with triangles between
    the upper and lower contours. Those triangles are the openings' interiors, not skin.
    """
    on_loop = np.zeros(int(triangles.max()) + 1, dtype=bool)
    on_loop[list(loop)] = True
    return on_loop[triangles].all(axis=1)


@dataclass(frozen=True)
class MeshTopology:
    """Derived structure of the canonical mesh: symmetry, openings, and the skin graph."""

    verts_model_mm: np.ndarray
    triangles: np.ndarray

    @cached_property
    def mirror(self) -> np.ndarray:
        """(N,) index of each vertex's mirror image across the mid-sagittal plane (x = 0)."""
        mirrored = self.verts_model_mm * np.array([-1.0, 1.0, 1.0])
        _, index = cKDTree(self.verts_model_mm).query(mirrored)
        return index.astype(np.int32)

    @cached_property
    def mouth_interior(self) -> np.ndarray:
        """(T,) bool: triangles spanning the mouth opening."""
        return interior_triangles(self.triangles, LIPS_INNER)

    @cached_property
    def eye_interior(self) -> np.ndarray:
        """(T,) bool: triangles spanning either eye opening (the eyeball)."""
        return interior_triangles(self.triangles, LEFT_EYE) | interior_triangles(
            self.triangles, RIGHT_EYE
        )

    @cached_property
    def skin_triangles(self) -> np.ndarray:
        """(T,) bool: every triangle that is skin, i.e. neither mouth nor eye interior."""
        return ~(self.mouth_interior | self.eye_interior)

    @cached_property
    def skin_laplacian(self) -> sparse.csr_matrix:
        """(N, N) graph Laplacian over skin edges, weighted by inverse edge length.

        Built without the openings' triangles so that smooth fields never leak from the upper
        lip to the lower lip, or from the upper eyelid to the lower one.
        """
        tris = self.triangles[self.skin_triangles]
        edges = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
        edges = np.unique(np.sort(edges, axis=1), axis=0)
        lengths = np.linalg.norm(
            self.verts_model_mm[edges[:, 0]] - self.verts_model_mm[edges[:, 1]], axis=1
        )
        weights = 1.0 / np.maximum(lengths, 1e-6)
        n = len(self.verts_model_mm)
        adjacency = sparse.coo_matrix(
            (
                np.concatenate([weights, weights]),
                (np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]]),
            ),
            shape=(n, n),
        ).tocsr()
        degree = sparse.diags(np.asarray(adjacency.sum(axis=1)).ravel())
        return (degree - adjacency).tocsr()

    def harmonic_field(self, values: Mapping[int, np.ndarray]) -> np.ndarray:
        """(N, 3) vector field equal to ``values`` on their vertices and harmonic elsewhere
        over the skin graph: the smoothest field that meets them (skin stretches, it does not
        tear), never leaking across an opening."""
        n = len(self.verts_model_mm)
        known = np.fromiter(values.keys(), dtype=np.int64)
        unknown = np.setdiff1d(np.arange(n), known)
        x = np.zeros((n, 3))
        x[known] = np.array([values[k] for k in known])
        if unknown.size:
            lap = self.skin_laplacian
            rhs = -(lap[unknown][:, known] @ x[known])
            x[unknown] = spsolve(lap[unknown][:, unknown].tocsc(), rhs).reshape(len(unknown), 3)
        return x
