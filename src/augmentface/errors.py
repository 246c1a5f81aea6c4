"""Typed errors.

Every error that can end one row of a stage (one image, one face, one sample) is a subclass of
:class:`RowError` and carries a short machine-readable ``status`` that lands in the manifest's
``status`` column; ``str(error)`` lands in its ``error`` column. Errors that stop a whole command
(bad arguments, a missing upstream manifest, a model file that fails its checksum) are
:class:`UsageError` subclasses and are printed as one line by the CLI.
"""

from __future__ import annotations

from typing import ClassVar


class AugmentfaceError(Exception):
    """Base class of every error raised on purpose by augmentface."""


class RowError(AugmentfaceError):
    """A failure confined to one manifest row; the run records it and goes on."""

    status: ClassVar[str] = "failed"


class ImageReadError(RowError):
    """The file exists but cannot be decoded as an image (non-image, truncated, zero bytes)."""

    status = "unreadable"


class ImageMissingError(RowError):
    """The input path does not exist or is not a regular file."""

    status = "missing"


class ImageTooLargeError(RowError):
    """The header declares more pixels than the configured limit (decompression-bomb guard)."""

    status = "too_large"


class NoFaceError(RowError):
    """No face was found in the image."""

    status = "no_face"


class FitError(RowError):
    """A face was found but the model could not be fitted to it."""

    status = "fit_failed"


class RenderError(RowError):
    """The target expression could not be rendered into the photo."""

    status = "render_failed"


class OutsideRootError(RowError):
    """An image or label path that resolves outside the dataset root (symlinks followed)."""

    status = "outside_root"


class SearchTimeoutError(RowError):
    """An image's face search outlasted its time budget (``DetectConfig.time_budget_s``)."""

    status = "timeout"


class SourceChangedError(RowError):
    """The source file is not the one that was fitted (its size or content differ)."""

    status = "source_changed"


class UpstreamRowError(RowError):
    """The row this one depends on did not finish with status ``ok``."""

    status = "upstream_failed"


class UsageError(AugmentfaceError, ValueError):
    """Bad arguments or configuration: the whole command stops with one clear line."""


class MissingManifestError(UsageError):
    """A stage's input manifest does not exist; the message names the command to run first."""


class ManifestBusyError(UsageError):
    """Another run is writing the manifest a stage would write (one workdir, two runs)."""


class ModelFileError(UsageError):
    """A model file (e.g. ``face_landmarker.task``) is missing or fails its checksum."""


class DatasetLayoutError(UsageError):
    """A dataset root lacks a file or folder its layout requires; the message names it."""


class LabelError(RowError):
    """A frame's label is invalid (a dataset's invalid marker, out of range, unparsable)."""

    status = "invalid_label"


class LabelMismatchError(LabelError):
    """A clip's label file covers a different number of frames than its video has."""

    status = "label_mismatch"


class MissingLabelError(LabelError):
    """A dataset that labels every frame has no label for this one."""

    status = "missing_label"
