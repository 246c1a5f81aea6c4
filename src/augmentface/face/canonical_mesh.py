"""MediaPipe's canonical face mesh, read from the ``face_landmarker.task`` bundle.

The bundle (a zip) holds ``geometry_pipeline_metadata_landmarks.binarypb``, a serialized
``GeometryPipelineMetadata`` message (mediapipe/modules/face_geometry/protos): field 1 is the
canonical ``Mesh3d`` (vertex_type=1 enum, primitive_type=2 enum, vertex_buffer=3 repeated float,
index_buffer=4 repeated uint32); field 2 the Procrustes landmark basis (landmark_id=1,
weight=2). Vertices are VERTEX_PT: x, y, z in centimetres, then u, v texture coordinates.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augmentface.errors import ModelFileError
from augmentface.face.protobuf_wire import group_fields, repeated_floats, repeated_varints
from augmentface.frames import CM_TO_MM

GEOMETRY_ENTRY = "geometry_pipeline_metadata_landmarks.binarypb"
N_VERTICES = 468
N_TRIANGLES = 898
_VERTEX_PT_STRIDE = 5


@dataclass(frozen=True)
class CanonicalMesh:
    """The canonical mesh in the model frame (see :mod:`augmentface.frames`).

    Attributes
    ----------
    verts_model_mm : (468, 3) float64
        Vertex positions in millimetres; x to the subject's left, y up, z out of the face.
    uv : (468, 2) float64
        Texture coordinates in [0, 1].
    triangles : (898, 3) int32
        Vertex indices, counter-clockwise seen from the front.
    procrustes_ids : (K,) int32
        Vertices MediaPipe weights for its rigid Procrustes fit.
    procrustes_weights : (K,) float64
    """

    verts_model_mm: np.ndarray
    uv: np.ndarray
    triangles: np.ndarray
    procrustes_ids: np.ndarray
    procrustes_weights: np.ndarray


def parse_geometry_metadata(data: bytes) -> CanonicalMesh:
    """Decode a serialized ``GeometryPipelineMetadata`` message."""
    top = group_fields(data)
    if 1 not in top:
        raise ModelFileError("geometry metadata has no canonical mesh (field 1)")
    mesh = group_fields(bytes(top[1][0].value))
    floats = np.asarray(repeated_floats(mesh.get(3, [])), dtype=np.float64)
    indices = np.asarray(repeated_varints(mesh.get(4, [])), dtype=np.int32)
    if floats.size % _VERTEX_PT_STRIDE or indices.size % 3:
        raise ModelFileError(
            f"canonical mesh buffers have odd sizes ({floats.size} floats, {indices.size} indices)"
        )
    vertices = floats.reshape(-1, _VERTEX_PT_STRIDE)
    basis = [group_fields(bytes(f.value)) for f in top.get(2, [])]
    ids = [int(b[1][0].value) if 1 in b else 0 for b in basis]
    weights = [repeated_floats(b[2])[0] if 2 in b else 0.0 for b in basis]
    return CanonicalMesh(
        verts_model_mm=vertices[:, :3] * CM_TO_MM,
        uv=vertices[:, 3:5].copy(),
        triangles=indices.reshape(-1, 3),
        procrustes_ids=np.asarray(ids, dtype=np.int32),
        procrustes_weights=np.asarray(weights, dtype=np.float64),
    )


def load_canonical_mesh(task_path: str | Path) -> CanonicalMesh:
    """Read and check the canonical mesh inside a ``face_landmarker.task`` bundle."""
    try:
        with zipfile.ZipFile(task_path) as bundle:
            data = bundle.read(GEOMETRY_ENTRY)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{task_path}: cannot read {GEOMETRY_ENTRY} ({exc})") from exc
    mesh = parse_geometry_metadata(data)
    if len(mesh.verts_model_mm) != N_VERTICES or len(mesh.triangles) != N_TRIANGLES:
        raise ModelFileError(
            f"{task_path}: canonical mesh has {len(mesh.verts_model_mm)} vertices and "
            f"{len(mesh.triangles)} triangles, expected {N_VERTICES} and {N_TRIANGLES}"
        )
    return mesh
