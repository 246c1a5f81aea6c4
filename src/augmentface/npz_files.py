"""Model files as ``.npz``: a JSON header (format, version, face model) beside plain arrays.

Never pickled (``allow_pickle=False``), so a file can only hold data; the header says what the
file is, and a reader refuses another format or version by name.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def header_array(header: dict) -> np.ndarray:
    """(n,) uint8: the header as JSON bytes, stored as the array ``header_json``."""
    return np.frombuffer(json.dumps(header, default=int).encode(), dtype=np.uint8)


def read_npz(
    path: str | Path,
    kind: str,
    file_format: str,
    version: int,
    error: type[Exception],
    arrays: Sequence[str] = (),
) -> tuple[dict, dict[str, np.ndarray]]:
    """The header and the named arrays of an ``.npz`` model file.

    Parameters
    ----------
    path : the file.
    kind : what the file should be, for messages ("class-model", "detail-maps").
    file_format, version : the ``format`` and ``version`` its header must hold.
    error : the exception raised, with one line naming the file and the reason.
    arrays : the arrays to read besides the header.

    Raises
    ------
    error
        The file is missing or unreadable, lacks an array, or is of another format or version.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(data["header_json"].tobytes())
            values = {name: data[name] for name in arrays}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise error(f"{path}: not a {kind} file ({exc})") from exc
    if header.get("format") != file_format or header.get("version") != version:
        raise error(
            f"{path}: format {header.get('format')!r} v{header.get('version')}, "
            f"expected {file_format!r} v{version}"
        )
    return header, values
