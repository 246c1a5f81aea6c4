"""Where a manifest's inputs came from: the one place that resolves upstream manifests and the
face model a workdir's fits were made with.

A stage never guesses: the targets name their fits (``params["fits"]``), the renders their
targets, the labels their renders; and the fits name the landmarker bundle they were made
with (``params["landmarker"]`` and its sha256), from which the face model is rebuilt. So
``fit3dmm --landmarker X`` followed by any later stage uses X's model with no environment
variable, and a bundle that changed since is refused instead of silently mixing models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augmentface.errors import UsageError
from augmentface.face.landmarker_model import locate_landmarker
from augmentface.face.model import FaceModel, load_face_model
from augmentface.manifest import Manifest, read_meta

FIT_FIRST = "augmentface fit3dmm IMAGES (datasets: augmentface import)"


def upstream_path(meta: dict[str, Any], name: str, where: Path) -> Path:
    """The upstream manifest ``name`` (``"fits"``, ``"targets"``, ``"renders"``) that the
    manifest at ``where`` (with provenance ``meta``) was made from."""
    value = meta.get("params", {}).get(name)
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: its provenance names no {name} manifest; run it again")
    return Path(value)


#: Each manifest's parameters name the manifest it was made from, in this order downstream.
_CHAIN = ("renders", "targets", "fits")


def find_upstream(meta: dict[str, Any], where: Path, name: str) -> Path:
    """The upstream manifest ``name`` of the manifest at ``where``, following the chain of
    provenance (labels -> renders -> targets -> fits) as far as needed."""
    params = meta.get("params", {})
    if name in params:
        return upstream_path(meta, name, where)
    for step in _CHAIN[: _CHAIN.index(name)]:
        if step in params:
            path = upstream_path(meta, step, where)
            return find_upstream(read_meta(path), path, name)
    raise UsageError(f"{where}: its provenance names no {name} manifest; run it again")


def face_model_of(fits: Manifest | str | Path) -> FaceModel:
    """The face model the fits manifest ``fits`` was made with.

    Raises
    ------
    MissingManifestError
        No fits manifest there.
    UsageError
        Its landmarker bundle is gone or changed since (sha256 differs), or the model built
        on it is not the one the fits record.
    """
    if isinstance(fits, Manifest):
        path, meta = fits.path, fits.meta
    else:
        path, meta = Path(fits), read_meta(fits)
    params = meta.get("params", {})
    recorded = params.get("landmarker")
    # Fits of an earlier version name only the bundle's sha256: the installation's bundle.
    located = locate_landmarker(recorded) if recorded else locate_landmarker()
    if params.get("landmarker_sha256") not in (None, located.sha256):
        raise UsageError(
            f"{path}: fitted with a landmarker of sha256 {params['landmarker_sha256'][:12]}…, "
            f"but {located.path} now has {located.sha256[:12]}…; run fit3dmm again"
        )
    model = load_face_model(located)
    fitted_with = meta.get("face_model_id")
    if fitted_with != model.model_id:
        raise UsageError(
            f"{path}: fitted with face model {fitted_with}, but this installation builds "
            f"{model.model_id} from its landmarker; run fit3dmm again"
        )
    return model
