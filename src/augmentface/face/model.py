"""The embedded morphable face model: canonical mesh + per-face identity + FACS expression rig.

``verts_model_mm = mean_verts_model_mm + identity_offsets_model_mm + expression_offsets_model_mm``

The mean shape and topology are MediaPipe's canonical face mesh (read from the landmarker
bundle); the identity part is a free per-face offset field fitted from the photo; the expression
part is the project's FACS Action Unit rig (:mod:`augmentface.expression.au_rig`). Every
expression source (the rig, the VA prior, learned models later) produces the same thing: an
``expression_offsets_model_mm`` array of shape (468, 3).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augmentface.atomic import atomic_write_bytes
from augmentface.expression.au_rig import AURig, build_au_rig
from augmentface.face import topology as topo
from augmentface.face.canonical_mesh import CanonicalMesh, load_canonical_mesh
from augmentface.face.landmarker_model import LandmarkerModel, locate_landmarker
from augmentface.face.topology import MeshTopology

#: Bumped whenever the rig's fields change, so manifests from another rig are recognised.
RIG_VERSION = 1
N_MESH_VERTICES = 468


@dataclass(frozen=True)
class FaceModel:
    """Mean shape, topology and expression rig, identified by ``model_id``."""

    model_id: str
    mesh: CanonicalMesh
    topology: MeshTopology
    rig: AURig
    neutral_verts_model_mm: np.ndarray

    @property
    def mean_verts_model_mm(self) -> np.ndarray:
        """(468, 3) neutral mean shape: the canonical mesh with its lips closed."""
        return self.neutral_verts_model_mm

    @property
    def triangles(self) -> np.ndarray:
        return self.mesh.triangles

    def verts_model_mm(
        self, identity_offsets_model_mm: np.ndarray, expression_offsets_model_mm: np.ndarray
    ) -> np.ndarray:
        """(468, 3) vertex positions in mm for one face with one expression."""
        return self.mean_verts_model_mm + identity_offsets_model_mm + expression_offsets_model_mm

    def export_mesh(self, path: str | Path, verts_model_mm: np.ndarray) -> Path:
        """Write a mesh as OBJ or PLY (by suffix) with trimesh, atomically; returns the path."""
        import trimesh  # imported here: only mesh export needs it

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".obj", ".ply"):
            raise ValueError(f"{path}: mesh export supports .obj and .ply, not {path.suffix!r}")
        mesh = trimesh.Trimesh(
            vertices=np.asarray(verts_model_mm, dtype=np.float64),
            faces=self.triangles,
            visual=trimesh.visual.TextureVisuals(uv=self.mesh.uv),
            process=False,
        )
        data = mesh.export(file_type=suffix[1:])
        atomic_write_bytes(path, data if isinstance(data, bytes) else data.encode())
        return path


def close_lips(verts_model_mm: np.ndarray) -> np.ndarray:
    """The canonical mesh with the inner lip contours meeting, as in a relaxed closed mouth.

    MediaPipe's canonical mesh holds the inner lips about 6 mm apart, while on real closed
    mouths its landmarker puts them under 1 mm apart; fitting against the open canonical mouth
    would read every closed mouth as a pressed one (AU24) and bias the other lip AUs.
    """
    out = verts_model_mm.copy()
    upper = topo.LIPS_INNER[1 : topo.LIPS_INNER_UPPER_COUNT - 1]
    lower = topo.LIPS_INNER[: topo.LIPS_INNER_UPPER_COUNT - 1 : -1]
    for u, low in zip(upper, lower, strict=True):
        middle = 0.5 * (verts_model_mm[u, 1:] + verts_model_mm[low, 1:])
        out[u, 1:] = out[low, 1:] = middle
    return out


@functools.cache
def _load(path: str, sha256: str) -> FaceModel:
    mesh = load_canonical_mesh(path)
    rig = build_au_rig(mesh.verts_model_mm, mesh.triangles)
    model_id = f"mediapipe468-facs{RIG_VERSION}@{sha256[:12]}"
    topology = MeshTopology(mesh.verts_model_mm, mesh.triangles)
    return FaceModel(model_id, mesh, topology, rig, close_lips(mesh.verts_model_mm))


def load_face_model(landmarker: LandmarkerModel | str | Path | None = None) -> FaceModel:
    """The face model built on a landmarker bundle (located as in :func:`locate_landmarker`)."""
    if not isinstance(landmarker, LandmarkerModel):
        landmarker = locate_landmarker(landmarker)
    return _load(str(landmarker.path), landmarker.sha256)
